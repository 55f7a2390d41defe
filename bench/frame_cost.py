"""What permessage-deflate costs per socket, beside plain framing and the shared bytes of
realtime/wire.py: the figures behind RT_WS_DEFLATE's default (off).

    .venv/bin/python -m bench.frame_cost [--messages 20000] [--sockets 2000]

Per socket and frame: the time websockets takes to frame a typical `message` frame plain
and compressed (uvicorn's settings: 12-bit windows, memLevel 5), with different messages
so that compression cannot just repeat itself; and the memory a compression context keeps
per socket once it has compressed one frame (RSS of the process, so zlib's own buffers
count).
"""

from __future__ import annotations

import argparse
import json
import time

from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode


def texts(count: int) -> list[bytes]:
    return [
        json.dumps({"type": "message", "stream": "live:match-1", "seq": n, "epoch": "a1b2c3d4", "ts": 1764800000000 + n,
                    "data": {"home": n % 5, "away": n % 3, "minute": n % 90, "event": "goal", "player": f"Player {n}"},
                    "sender": None}, separators=(",", ":")).encode()
        for n in range(count)
    ]


def per_frame_us(messages: list[bytes], extensions: list[PerMessageDeflate]) -> float:
    started = time.perf_counter()
    for data in messages:
        Frame(Opcode.TEXT, data).serialize(mask=False, extensions=extensions)
    return (time.perf_counter() - started) / len(messages) * 1e6


def rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4


def context_kib(sockets: int, sample: bytes) -> float:
    before = rss_kib()
    kept = []
    for _ in range(sockets):
        deflate = PerMessageDeflate(False, False, 12, 12, {"memLevel": 5})
        Frame(Opcode.TEXT, sample).serialize(mask=False, extensions=[deflate])
        kept.append(deflate)
    return (rss_kib() - before) / sockets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--sockets", type=int, default=2000)
    args = parser.parse_args()
    messages = texts(args.messages)
    plain = per_frame_us(messages, [])
    deflated = per_frame_us(messages, [PerMessageDeflate(False, False, 12, 12, {"memLevel": 5})])
    print(f"a {len(messages[0])}-byte message frame, per socket: plain framing {plain:.2f} us, "
          f"permessage-deflate {deflated:.2f} us ({deflated / plain:.1f}x); shared bytes: built once per process")
    print(f"a compression context per socket, after one frame: {context_kib(args.sockets, messages[0]):.1f} KiB RSS")


if __name__ == "__main__":
    main()
