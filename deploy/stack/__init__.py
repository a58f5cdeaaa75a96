"""The production topology on this machine: `make stack` (or `python -m deploy.stack`).

PostgreSQL, redis-server, two daphne processes (`manage.py serve --proxy-headers`, production
settings) and nginx in front of them with the shipped deploy/nginx/ configuration, terminating
TLS with a self-signed certificate, all bound to 127.0.0.1 and run in the foreground until
Ctrl-C (or SIGTERM), which stops them in order: nginx, daphne, redis, PostgreSQL.

`deploy.stack.nginx` renders deploy/nginx/chat.conf for local ports and paths; the tests in
tests/services/ render it with the same code.
"""
