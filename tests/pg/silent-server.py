#!/usr/bin/python3
"""A TCP server that accepts connections and never says a word: for connect_timeout tests.
Prints its port on stdout, then serves until killed.
Usage: silent-server.py [LOG]: with LOG, appends a line "HELD_MS" for each connection the client
closes, HELD_MS being the milliseconds from its accept to its close: how long the client waited,
measured here, so the start-up of the client and the load of the machine are not in it."""
import selectors
import socket
import sys
import time

log = open(sys.argv[1], "a", buffering=1) if len(sys.argv) > 1 else None
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(16)
print(server.getsockname()[1], flush=True)
sel = selectors.DefaultSelector()
sel.register(server, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        if key.fileobj is server:
            conn, _ = server.accept()
            sel.register(conn, selectors.EVENT_READ, time.monotonic())  # read, never answered
            continue
        conn, accepted = key.fileobj, key.data
        try:
            data = conn.recv(4096)
        except OSError:
            data = b""
        if not data:  # the client gave up
            sel.unregister(conn)
            conn.close()
            if log:
                log.write(f"{round((time.monotonic() - accepted) * 1000)}\n")
