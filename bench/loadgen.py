"""The load generator of figure 2: lean CWMP clients replaying real envelopes over loopback.

One process runs ``--concurrency`` clients on asyncio; each takes the next phone of its
serial range, opens a TCP connection (one per session, as the phones do), and runs a session:

- ``periodic``: Inform (2 PERIODIC) -> 200 InformResponse; empty POST -> 204.
- ``push``: Inform -> 200; empty POST -> 200 SetParameterValues; SetParameterValuesResponse
  (status 0, same cwmp:ID) -> 204. A session the ACS ends after the empty POST counts as a
  session without a push.
- ``converge``: Inform -> 200; empty POST; then every SetParameterValues or
  SetParameterAttributes of the ACS is answered with its response until 204 (an assigned
  phone's first session, bench/desired.py); the last ParameterKey set is counted per key.

``--parameter-key`` puts a ParameterKey in the Informs (what a phone reports after the ACS's
last successful SetParameterValues, TR-069 A.3.2.1).

The same client, bytes and session script hit the bare baseline server (``bench.bare``), so
the two servers differ only in what they do with a request. It spends no CPU on parsing
what it only echoes (a regex finds the cwmp:ID), so that it leaves the machine's second core
to the server. Prints one JSON line: sessions, exchanges, failures, latency percentiles.

``python -m bench.loadgen --url http://127.0.0.1:7547/ --mode periodic --first 0 --count 1000``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from bench.envelopes import cwmp_id_of, inform_bytes, spa_response_bytes, spv_response_bytes

__all__ = ["serial_of", "run_load", "main"]


def serial_of(index: int) -> str:
    return f"BENCH{index:08d}"


class HttpError(Exception):
    """The server answered something the session script does not expect."""


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str,
                    path: str, body: bytes, cookie: bytes | None) -> tuple[int, bytes, bytes | None]:
    """One HTTP/1.1 POST on the open connection: (status, body, cookie set by the server)."""
    head = [b"POST ", path.encode(), b" HTTP/1.1\r\nHost: ", host.encode(),
            b"\r\nContent-Type: text/xml; charset=\"utf-8\"\r\nSOAPAction: \r\n",
            b"Content-Length: ", str(len(body)).encode(), b"\r\n"]
    if cookie is not None:
        head += [b"Cookie: ", cookie, b"\r\n"]
    head.append(b"\r\n")
    writer.write(b"".join(head) + body)
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    chunked = False
    set_cookie = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"set-cookie":
            set_cookie = value.strip().split(b";", 1)[0]
    if chunked:
        parts = []
        while True:
            size = int((await reader.readline()).split(b";", 1)[0], 16)
            if size == 0:
                await reader.readline()
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        data = b"".join(parts)
    elif length:
        data = await reader.readexactly(length)
    else:
        data = b""
    return status, data, set_cookie


async def _session(host: str, port: int, path: str, inform: bytes, mode: str,
                   stats: dict[str, Any]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        hostport = f"{host}:{port}"
        status, _, cookie = await _exchange(reader, writer, hostport, path, inform, None)
        stats["exchanges"] += 1
        if status != 200:
            raise HttpError(f"Inform answered {status}")
        status, data, _ = await _exchange(reader, writer, hostport, path, b"", cookie)
        stats["exchanges"] += 1
        if mode == "converge":
            await _converge(reader, writer, hostport, path, cookie, status, data, stats)
            return
        if status == 204:
            if mode == "push":
                stats["no_push"] += 1
            return
        if status != 200 or b"SetParameterValues>" not in data:
            raise HttpError(f"empty POST answered {status}")
        cwmp_id = cwmp_id_of(data) or ""
        status, _, _ = await _exchange(reader, writer, hostport, path,
                                       spv_response_bytes(cwmp_id), cookie)
        stats["exchanges"] += 1
        if status != 204:
            raise HttpError(f"SetParameterValuesResponse answered {status}")
        stats["pushed"] += 1
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


_KEY = re.compile(rb"<ParameterKey>([^<]*)</ParameterKey>")


async def _converge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hostport: str, path: str,
                    cookie: bytes | None, status: int, data: bytes, stats: dict[str, Any]) -> None:
    """Answer every SetParameterValues/SetParameterAttributes until the ACS ends the session."""
    key = None
    while status == 200:
        cwmp_id = cwmp_id_of(data) or ""
        if b"SetParameterValues>" in data:
            found = _KEY.search(data)
            key = found.group(1).decode() if found else ""
            body = spv_response_bytes(cwmp_id)
            stats["pushed"] += 1
        elif b"SetParameterAttributes>" in data:
            body = spa_response_bytes(cwmp_id)
        else:
            raise HttpError(f"unexpected request in converge mode: {data[:200]!r}")
        status, data, _ = await _exchange(reader, writer, hostport, path, body, cookie)
        stats["exchanges"] += 1
    if status != 204:
        raise HttpError(f"converge session ended with {status}")
    if key is not None:
        stats["keys"][key] = stats["keys"].get(key, 0) + 1
    else:
        stats["no_push"] += 1


async def run_load(url: str, mode: str, first: int, count: int, concurrency: int,
                   timeout: float, parameter_key: str = "") -> dict[str, Any]:
    """Run ``count`` sessions (phones first .. first+count-1); returns the counters."""
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
    event = "2 PERIODIC" if mode == "periodic" else "6 CONNECTION REQUEST"
    informs = [inform_bytes(serial_of(i), event=event, parameter_key=parameter_key)
               for i in range(first, first + count)]
    stats: dict[str, Any] = {"sessions": 0, "exchanges": 0, "failed": 0, "pushed": 0,
                             "no_push": 0, "errors": {}, "keys": {}}
    latencies: list[float] = []
    queue = iter(informs)
    deadline = time.monotonic() + timeout

    async def client() -> None:
        for inform in queue:
            if time.monotonic() > deadline:
                return
            start = time.perf_counter()
            try:
                await asyncio.wait_for(_session(host, port, path, inform, mode, stats), 30)
                stats["sessions"] += 1
                latencies.append(time.perf_counter() - start)
            except (TimeoutError, OSError, HttpError, asyncio.IncompleteReadError, ValueError) as exc:
                stats["failed"] += 1
                key = f"{type(exc).__name__}: {exc}"[:80]
                stats["errors"][key] = stats["errors"].get(key, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    stats["wall_s"] = round(time.perf_counter() - start, 3)
    latencies.sort()
    if latencies:
        stats["p50_ms"] = round(latencies[len(latencies) // 2] * 1000, 2)
        stats["p99_ms"] = round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
                                * 1000, 2)
    return stats


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--mode", choices=("periodic", "push", "converge"), default="periodic")
    p.add_argument("--parameter-key", default="", help="the ParameterKey the Informs report")
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--timeout", type=float, default=300.0, help="stop starting sessions after S")
    args = p.parse_args(argv)
    stats = asyncio.run(run_load(args.url, args.mode, args.first, args.count, args.concurrency,
                                 args.timeout, args.parameter_key))
    json.dump(stats, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
