#!/usr/bin/python3
"""A TCP proxy for tests and benchmarks: forwards bytes between clients and one upstream, adding
latency or faults. It knows nothing of HTTP or PostgreSQL, so it works in front of any server.

Usage: tcpfault.py --dir DIR --upstream HOST:PORT [--delay-ms N]
Writes DIR/port when ready. Faults are read from DIR/faults.json for each new connection:
  {"delay_ms": 10,              one-way delay added to every chunk, both directions (RTT + 2x)
   "reset_after_bytes": 5000,   close abruptly (RST) after this many bytes from the upstream
   "stall_after_bytes": 5000,   stop forwarding upstream bytes after this many (the client hangs: no FIN,
                                no RST; 0 stalls before the first byte, e.g. a TLS or PostgreSQL handshake)
   "truncate_after_bytes": 5000,close cleanly (FIN) after this many bytes from the upstream
   "connections": 2,            apply the faults to the next N connections only (default: all)
   "after_connections": 1}      let this many new connections through untouched first (default 0)
"""
import argparse
import asyncio
import json
import os
import socket
import struct

ARGS = None
APPLIED = {"key": None, "count": 0}


def faults_for_new_connection():
    try:
        with open(os.path.join(ARGS.dir, "faults.json")) as f:
            text = f.read()
        faults = json.loads(text)
    except (OSError, ValueError):
        return {"delay_ms": ARGS.delay_ms}
    if APPLIED["key"] != text:  # a new faults file starts a new count
        APPLIED["key"], APPLIED["count"], APPLIED["passed"] = text, 0, 0
    if APPLIED.get("passed", 0) < faults.get("after_connections", 0):
        APPLIED["passed"] = APPLIED.get("passed", 0) + 1
        return {"delay_ms": ARGS.delay_ms}
    if "connections" in faults:
        if APPLIED["count"] >= faults["connections"]:
            return {"delay_ms": ARGS.delay_ms}
        APPLIED["count"] += 1
    faults.setdefault("delay_ms", ARGS.delay_ms)
    return faults


STALL = object()  # queued instead of None: stop delivering, but send no FIN (the peer must not notice)


async def pump(reader, writer, delay, limit_bytes=None, on_limit=None, eof_at_limit=True):
    """Copies reader to writer, each chunk delayed by `delay` seconds without holding back the next."""
    sent = 0
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            if data is STALL:
                return
            if data is None:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass

    delivery = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if limit_bytes is not None and sent + len(data) >= limit_bytes:
                if limit_bytes > sent:
                    await queue.put((loop.time() + delay, data[: limit_bytes - sent]))
                await queue.put((loop.time() + delay, None if eof_at_limit else STALL))
                await delivery
                await on_limit()
                return
            sent += len(data)
            await queue.put((loop.time() + delay, data))
    except (ConnectionError, OSError):
        pass
    await queue.put((loop.time() + delay, None))
    try:
        await delivery
    except (ConnectionError, OSError):
        pass


async def handle(client_reader, client_writer):
    faults = faults_for_new_connection()
    host, port = ARGS.upstream.rsplit(":", 1)
    try:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
    except OSError:
        client_writer.close()
        return
    delay = faults.get("delay_ms", 0) / 1000.0
    sock = client_writer.get_extra_info("socket")

    async def reset():
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client_writer.close()
        up_writer.close()

    async def truncate():
        client_writer.close()
        up_writer.close()

    async def stall():
        await asyncio.sleep(3600)

    limit, action = None, None
    for key, act in (("reset_after_bytes", reset), ("truncate_after_bytes", truncate), ("stall_after_bytes", stall)):
        if key in faults:
            limit, action = faults[key], act
    # A stall sends nothing more, not even a FIN: a half-closed socket is an EOF, not a hang.
    await asyncio.gather(pump(client_reader, up_writer, delay),
                         pump(up_reader, client_writer, delay, limit, action, eof_at_limit=action is not stall),
                         return_exceptions=True)
    for w in (client_writer, up_writer):
        try:
            w.close()
        except OSError:
            pass


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tmp = os.path.join(ARGS.dir, "port.tmp")
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, os.path.join(ARGS.dir, "port"))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--delay-ms", type=float, default=0)
    ARGS = ap.parse_args()
    asyncio.run(main())
