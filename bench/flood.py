"""The flooder of bench/noisy_neighbour.py, in a process of its own.

    python -m bench.flood BASE_URL SESSION_KEY SECONDS

Sends small valid frames on one customer socket as fast as the connection
takes them, never reading, and opens a new socket when the server closes
one. Prints "frames sockets close-codes" (codes joined by commas, "-" for
none) when the time is up.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import websockets

FRAME = json.dumps({"type": "ping"})


async def flood(base_url: str, session_key: str, seconds: float) -> tuple[int, int, list[int]]:
    url = base_url.replace("http://", "ws://") + "/ws/customer/"
    headers = {"Cookie": f"sessionid={session_key}", "Origin": base_url}
    ends = time.monotonic() + seconds
    frames = sockets = 0
    closes: list[int] = []
    while time.monotonic() < ends:
        try:
            async with websockets.connect(url, additional_headers=headers, max_queue=None, ping_interval=None) as socket:
                sockets += 1
                while time.monotonic() < ends:
                    await socket.send(FRAME)
                    frames += 1
                    await asyncio.sleep(0)  # its reader runs too, as a browser's would
        except websockets.ConnectionClosed as closed:
            closes.append(closed.rcvd.code if closed.rcvd else 1006)
        except OSError:
            await asyncio.sleep(0.05)
    return frames, sockets, closes


def main() -> None:
    base_url, session_key, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    frames, sockets, closes = asyncio.run(flood(base_url, session_key, seconds))
    print(frames, sockets, ",".join(str(code) for code in sorted(set(closes))) or "-")


if __name__ == "__main__":
    main()
