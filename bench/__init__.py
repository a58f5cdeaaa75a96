"""The benchmark: the chat against its peers, measured from outside on one machine.

`make bench` runs `python -m bench.compare` (bench/compare.py), which writes
docs/benchmarks.md and docs/benchmarks-latency.svg. The servers are in bench/targets.py
(the project) and bench/peers/ (the Channels tutorial chat, the bare websockets relay); the
loads in bench/fanout.py, latency.py, connections.py and memory.py; the client they share
in bench/client.py; the numbers in report.py, document.py and chart.py.
"""
