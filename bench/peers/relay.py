"""The floor: a bare `websockets` relay, no framework, no layer, no auth, no parsing.

    python -m bench.peers.relay --port 8200

A socket's URL path names its room; every text a socket sends is written, as received, to
every socket of the room, the sender included (the chat echoes a message to its author
too). Clients send `{"message": <text>}`, so what they receive is shaped like the tutorial's
frames. Whatever a Python WebSocket server does per delivery on top of this is overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections import defaultdict

from websockets.asyncio.server import ServerConnection, broadcast, serve

rooms: defaultdict[str, set[ServerConnection]] = defaultdict(set)


async def relay(ws: ServerConnection) -> None:
    room = rooms[ws.request.path]
    room.add(ws)
    try:
        async for text in ws:
            # broadcast() frames the message once and writes it to every transport
            # without awaiting any of them.
            broadcast(room, text)
    finally:
        room.discard(ws)


async def main(host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    # compression=None: the benchmark clients never offer permessage-deflate either; the
    # floor is the protocol itself, not zlib.
    async with serve(relay, host, port, compression=None):
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port))
