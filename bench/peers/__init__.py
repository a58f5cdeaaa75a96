"""Servers that exist only to be measured beside the project: the peers of docs/benchmarks.md.

tutorial/ is the chat of the Channels tutorial as its docs write it (one Django project, one
consumer), run by `python -m daphne` on either channels-redis layer; relay.py is a bare
`websockets` broadcast server, the floor any Python server on this machine stands on.
"""
