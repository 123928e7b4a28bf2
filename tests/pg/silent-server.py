#!/usr/bin/python3
"""A TCP server that accepts connections and never says a word: for connect_timeout tests.
Prints its port on stdout, then serves until killed."""
import socket
import time

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(16)
print(server.getsockname()[1], flush=True)
held = []
while True:
    conn, _ = server.accept()
    held.append(conn)  # kept open, never read, never written
    time.sleep(0.01)
