"""Real processes and real clients for the tier-2 tests: redis-server, daphne, nginx, HTTP
and WebSockets, one module each.

Everything here talks to 127.0.0.1 over real sockets. Every wait is bounded, so a server that
hangs or dies makes a test fail with its output attached instead of stalling the suite.
"""
