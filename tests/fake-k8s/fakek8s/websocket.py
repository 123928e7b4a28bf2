"""Server side of RFC 6455, enough for the Kubernetes exec channel protocols.

Strict where a server must be strict, because the point of the fake is to catch
client bugs: client frames must be masked (else close 1002), reserved bits must be
zero, control frames must be short and unfragmented, continuation frames must
continue something, text must be UTF-8 (else 1007).
"""

import base64
import hashlib
import struct
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE = 64 * 1024 * 1024

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_DATA = 1007
CLOSE_TOO_BIG = 1009


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def unmask(data, mask):
    """XOR with the 4-byte mask, using big integers: fast enough for multi-megabyte frames."""
    n = len(data)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class ProtocolError(Exception):
    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ConnectionClosed(Exception):
    """The peer went away (EOF) or completed the close handshake."""

    def __init__(self, code=None, reason=""):
        super().__init__(reason)
        self.code = code


class WebSocket:
    """A server-side connection over an already upgraded socket.

    rfile is the handler's buffered reader (it may hold bytes the client sent right
    after its request); writes go straight to the socket under a lock so several
    threads (stdout, stderr pumps, pong replies) can send.
    """

    def __init__(self, rfile, sock):
        self.rfile = rfile
        self.sock = sock
        self.write_lock = threading.Lock()
        self.close_sent = False
        self.close_received = False

    # ---------------------------------------------------------------- writing

    def send_frame(self, opcode, payload=b""):
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([n])
        elif n < 65536:
            header += bytes([126]) + struct.pack("!H", n)
        else:
            header += bytes([127]) + struct.pack("!Q", n)
        with self.write_lock:
            if self.close_sent and opcode != OP_CLOSE:
                raise ConnectionClosed(None, "close already sent")
            self.sock.sendall(header + payload)

    def send_binary(self, payload):
        self.send_frame(OP_BINARY, payload)

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode())

    def close(self, code=CLOSE_NORMAL, reason=""):
        """Send a close frame once; errors are ignored, the peer may already be gone."""
        with self.write_lock:
            if self.close_sent:
                return
            self.close_sent = True
        payload = struct.pack("!H", code) + reason.encode()[:120]
        try:
            with self.write_lock:
                self.sock.sendall(bytes([0x80 | OP_CLOSE, len(payload)]) + payload)
        except OSError:
            pass

    # ---------------------------------------------------------------- reading

    def _read_exact(self, n):
        data = self.rfile.read(n) if n else b""
        if data is None or len(data) < n:
            raise ConnectionClosed(None, "connection closed by peer")
        return data

    def _read_frame(self):
        b0, b1 = self._read_exact(2)
        fin, rsv, opcode = b0 & 0x80, b0 & 0x70, b0 & 0x0F
        masked, length = b1 & 0x80, b1 & 0x7F
        if rsv:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, "reserved bits set without a negotiated extension")
        if opcode not in (OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG):
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, "unknown opcode %d" % opcode)
        if length == 126:
            length = struct.unpack("!H", self._read_exact(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read_exact(8))[0]
        if opcode >= OP_CLOSE and (length > 125 or not fin):
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, "control frames must be short and not fragmented")
        if not masked:
            raise ProtocolError(CLOSE_PROTOCOL_ERROR, "client frames must be masked")
        if length > MAX_MESSAGE:
            raise ProtocolError(CLOSE_TOO_BIG, "frame too large")
        mask = self._read_exact(4)
        return bool(fin), opcode, unmask(self._read_exact(length), mask)

    def receive(self):
        """The next data message as (opcode, payload); answers pings; raises ConnectionClosed at the end.

        Protocol violations close the connection with the RFC's code and raise ConnectionClosed.
        """
        try:
            return self._receive()
        except ProtocolError as e:
            self.close(e.code, e.reason)
            raise ConnectionClosed(e.code, e.reason)

    def _receive(self):
        opcode, parts, size = None, [], 0
        while True:
            fin, op, payload = self._read_frame()
            if op == OP_PING:
                try:
                    self.send_frame(OP_PONG, payload)
                except (OSError, ConnectionClosed):
                    pass
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                self.close_received = True
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else CLOSE_NORMAL
                if len(payload) == 1:
                    raise ProtocolError(CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte payload")
                self.close(code if code in range(1000, 5000) and code not in (1004, 1005, 1006, 1015)
                           else CLOSE_PROTOCOL_ERROR)
                raise ConnectionClosed(code, payload[2:].decode("utf-8", "replace"))
            if op == OP_CONT:
                if opcode is None:
                    raise ProtocolError(CLOSE_PROTOCOL_ERROR, "continuation frame without a message to continue")
            else:
                if opcode is not None:
                    raise ProtocolError(CLOSE_PROTOCOL_ERROR, "new data frame inside a fragmented message")
                opcode = op
            parts.append(payload)
            size += len(payload)
            if size > MAX_MESSAGE:
                raise ProtocolError(CLOSE_TOO_BIG, "message too large")
            if fin:
                message = b"".join(parts)
                if opcode == OP_TEXT:
                    try:
                        message.decode("utf-8")
                    except UnicodeDecodeError:
                        raise ProtocolError(CLOSE_INVALID_DATA, "text message is not valid UTF-8")
                return opcode, message
