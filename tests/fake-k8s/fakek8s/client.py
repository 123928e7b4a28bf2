"""Small clients for tests: the control API, plain API calls, and a raw exec WebSocket.

The raw WebSocket client is deliberately low level (it can send unmasked or
fragmented frames) so tests can check the server's protocol handling; it is not a
model of a good client.
"""

import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import urllib.error
import urllib.parse
import urllib.request

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def read_env(directory):
    env = {}
    with open(os.path.join(directory, "env")) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            env[key] = value
    return env


class Fake:
    """A running fake, found by its DIR."""

    def __init__(self, directory):
        self.dir = directory
        self.env = read_env(directory)
        self.port = int(self.env["K8S_PORT"])
        self.context = ssl.create_default_context(cafile=self.env["K8S_CA"])

    def request(self, method, path, body=None, token=None, headers=None, content_type="application/json"):
        """(status, headers, parsed JSON or text) for an API call with the admin token by default."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request("https://127.0.0.1:%d%s" % (self.port, path), data=data, method=method)
        req.add_header("Authorization", "Bearer " + (token or self.env["K8S_TOKEN"]))
        if data is not None:
            req.add_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=30) as resp:
                return resp.status, dict(resp.headers), _decode(resp.read(), resp.headers)
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), _decode(e.read(), e.headers)

    def control(self, method, path, body=None):
        status, _, result = self.request(method, "/_fake/" + path.lstrip("/"), body, token=self.env["CONTROL_TOKEN"])
        if status != 200:
            raise RuntimeError("control %s %s: %s %s" % (method, path, status, result))
        return result

    def requests_log(self):
        with open(os.path.join(self.dir, "requests.log")) as f:
            return [json.loads(line) for line in f if line.strip()]


def _decode(raw, headers):
    if "json" in (headers.get("Content-Type") or ""):
        return json.loads(raw)
    return raw.decode("utf-8", "replace")


class RawExec:
    """An exec WebSocket opened by hand."""

    def __init__(self, fake, namespace, pod, command, container=None, stdin=False, protocols=("v5.channel.k8s.io",),
                 token=None):
        query = [("command", c) for c in command] + [("stdout", "true"), ("stderr", "true")]
        if stdin:
            query.append(("stdin", "true"))
        if container:
            query.append(("container", container))
        path = "/api/v1/namespaces/%s/pods/%s/exec?%s" % (namespace, pod, urllib.parse.urlencode(query))
        raw = socket.create_connection(("127.0.0.1", fake.port), timeout=30)
        self.sock = fake.context.wrap_socket(raw, server_hostname="127.0.0.1")
        self.key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % fake.port, "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Key: " + self.key, "Sec-WebSocket-Version: 13",
                 "Authorization: Bearer " + (token or fake.env["K8S_TOKEN"])]
        if protocols:
            lines.append("Sec-WebSocket-Protocol: " + ", ".join(protocols))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buffer = b""
        head = self._read_until(b"\r\n\r\n")
        status_line, *header_lines = head.decode().split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
        self.body = b""
        if self.status != 101:
            length = int(self.headers.get("content-length", 0))
            self.body = self._read_exact(length)

    def expected_accept(self):
        return base64.b64encode(hashlib.sha1((self.key + GUID).encode()).digest()).decode()

    # -------------------------------------------------------------- bytes

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("connection closed")
        self.buffer += chunk

    def _read_until(self, marker):
        while marker not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def _read_exact(self, n):
        while len(self.buffer) < n:
            self._fill()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    # -------------------------------------------------------------- frames

    def send_frame(self, opcode, payload, fin=True, masked=True):
        header = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        mask_bit = 0x80 if masked else 0
        if n < 126:
            header += bytes([mask_bit | n])
        elif n < 65536:
            header += bytes([mask_bit | 126]) + struct.pack("!H", n)
        else:
            header += bytes([mask_bit | 127]) + struct.pack("!Q", n)
        if masked:
            mask = os.urandom(4)
            key = (mask * (n // 4 + 1))[:n]
            payload = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big") if n else b""
            header += mask
        self.sock.sendall(header + payload)

    def recv_frame(self):
        """(fin, opcode, payload); server frames must not be masked."""
        b0, b1 = self._read_exact(2)
        if b1 & 0x80:
            raise AssertionError("server sent a masked frame")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read_exact(8))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self._read_exact(n)

    def collect(self):
        """Read until close or EOF: ({channel: bytes}, close code or None, saw EOF without close)."""
        channels, close_code, abrupt = {}, None, False
        try:
            while True:
                fin, opcode, payload = self.recv_frame()
                if opcode == 0x8:
                    close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    try:
                        self.send_frame(0x8, payload[:2])
                    except OSError:
                        pass
                    break
                if opcode in (0x1, 0x2) and payload:
                    channels[payload[0]] = channels.get(payload[0], b"") + payload[1:]
        except (EOFError, ConnectionResetError, ssl.SSLError):
            abrupt = True
        return channels, close_code, abrupt

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
