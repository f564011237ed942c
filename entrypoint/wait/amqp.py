"""The AMQP 0-9-1 login of the wait step's amqp:// check, written from the specification.

Answering the protocol header proves a broker listens; only the whole connection handshake
(Start/StartOk with PLAIN, Tune/TuneOk, Open/OpenOk) proves the URL's credentials and virtual
host work. The connection is then closed politely (Close/CloseOk), so the broker logs a normal
close, not an aborted handshake.

Frames (spec section 4.2.3): type (octet), channel (short), payload size (long), payload, 0xCE.
A method payload starts with its class id and method id (shorts); strings are a length (octet for
short strings, long for long strings) and bytes; a field table is a long size and its entries.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from urllib.parse import unquote

from entrypoint.wait.services import NotReady, Service

HEADER = b"AMQP\x00\x00\x09\x01"  # AMQP 0-9-1
METHOD, HEARTBEAT, FRAME_END = 1, 8, 0xCE
START, START_OK, TUNE, TUNE_OK = (10, 10), (10, 11), (10, 30), (10, 31)
OPEN, OPEN_OK, CLOSE, CLOSE_OK = (10, 40), (10, 41), (10, 50), (10, 51)
ACCESS_REFUSED, NOT_ALLOWED = 403, 530  # reply codes of Connection.Close
DEFAULT_CREDENTIALS = ("guest", "guest")  # what AMQP clients log in with when the URL has none
MAX_FRAME = 131072  # the spec's suggested frame-max; a Start larger than this is not a broker


@dataclass(frozen=True)
class Method:
    ids: tuple[int, int]  # class id, method id
    args: bytes  # the arguments after the ids


def login(sock: socket.socket, service: Service) -> None:
    """Complete the handshake as the URL's user, open its virtual host, close; else NotReady."""
    sock.sendall(HEADER)
    start = _first_frame(sock)
    _start_ok(sock, start, service)
    tune = _expect(sock, TUNE, stage="login")
    channel_max, frame_max, _heartbeat = struct.unpack_from(">HIH", tune.args)
    # Echo the broker's limits; heartbeat 0: this connection lives a few milliseconds.
    _send(sock, TUNE_OK, struct.pack(">HIH", channel_max, frame_max, 0))
    _send(sock, OPEN, _shortstr(vhost(service)) + _shortstr("") + b"\x00")
    _expect(sock, OPEN_OK, stage="open")
    _send(sock, CLOSE, struct.pack(">H", 200) + _shortstr("ready check") + b"\x00" * 4)
    _expect(sock, CLOSE_OK, stage="close")


def vhost(service: Service) -> str:
    """The virtual host of an amqp URL: its path without the slash, "/" when there is none."""
    path = service.path.split("?", 1)[0]
    return unquote(path[1:]) if len(path) > 1 else "/"


def _first_frame(sock: socket.socket) -> Method:
    """The broker's answer to the header: Connection.Start, or its own protocol header."""
    head = _read(sock, 7, stage="header")
    if head.startswith(b"AMQP"):
        rest = head + _read(sock, 1, stage="header")
        raise NotReady("protocol_mismatch", f"the broker wants AMQP {list(rest[4:8])}")
    method = _method(sock, head, stage="header")
    if method.ids != START:
        raise NotReady("unexpected_reply", "not an AMQP 0-9-1 Connection.Start")
    return method


def _start_ok(sock: socket.socket, start: Method, service: Service) -> None:
    offset = 2 + 4 + struct.unpack_from(">I", start.args, 2)[0]  # versions, server properties
    (size,) = struct.unpack_from(">I", start.args, offset)
    mechanisms = start.args[offset + 4 : offset + 4 + size].split()
    if b"PLAIN" not in mechanisms:
        offered = b" ".join(mechanisms).decode(errors="replace")
        raise NotReady("unsupported_mechanism", f"the broker offers {offered}, not PLAIN")
    user, password = (service.username, service.password)
    if not user and not password:
        user, password = DEFAULT_CREDENTIALS
    # RabbitMQ answers a refused login with Connection.Close (403) instead of dropping the
    # connection when the client announces this capability (its "auth-notification" extension).
    capabilities = b"F" + _table({"authentication_failure_close": b"t\x01"})
    product = b"S" + _longstr("django-entrypoint")
    properties = _table({"product": product, "capabilities": capabilities})
    response = b"\x00" + user.encode() + b"\x00" + password.encode()
    _send(sock, START_OK, properties + _shortstr("PLAIN") + _longstr(response) + _shortstr("en_US"))


def _expect(sock: socket.socket, ids: tuple[int, int], *, stage: str) -> Method:
    """The next method frame (heartbeats skipped); NotReady when it is Close or another one."""
    while True:
        head = _read(sock, 7, stage=stage)
        if head[0] != HEARTBEAT:
            break
        _read(sock, struct.unpack_from(">I", head, 3)[0] + 1, stage=stage)
    method = _method(sock, head, stage=stage)
    if method.ids == CLOSE:
        _refused(method, stage)
    if method.ids != ids:
        raise NotReady("unexpected_reply", f"expected method {ids}, got {method.ids}")
    return method


def _refused(close: Method, stage: str) -> None:
    code = struct.unpack_from(">H", close.args)[0]
    text = close.args[3 : 3 + close.args[2]].decode(errors="replace")[:200]
    if code == ACCESS_REFUSED and stage == "login":
        raise NotReady("authentication_failed", f"the broker refused the login: {text}")
    if code in (ACCESS_REFUSED, NOT_ALLOWED) and stage == "open":
        raise NotReady("vhost_not_allowed", f"the broker refused the virtual host: {text}")
    raise NotReady("connection_refused_by_broker", f"{code} {text}")


def _method(sock: socket.socket, head: bytes, *, stage: str) -> Method:
    kind, _channel, size = struct.unpack(">BHI", head)
    if kind != METHOD or not 4 <= size <= MAX_FRAME:
        raise NotReady("unexpected_reply", "not an AMQP 0-9-1 method frame")
    payload = _read(sock, size + 1, stage=stage)
    if payload[-1] != FRAME_END:
        raise NotReady("unexpected_reply", "an AMQP frame without its frame-end octet")
    class_id, method_id = struct.unpack_from(">HH", payload)
    return Method((class_id, method_id), payload[4:-1])


def _read(sock: socket.socket, size: int, *, stage: str) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise _closed(stage, answered=bool(data) or stage != "header")
        data += chunk
    return data


def _closed(stage: str, *, answered: bool) -> NotReady:
    if stage == "login":
        # Without the capability above, the spec's way to refuse a login is to close the socket.
        return NotReady("authentication_failed", "the broker closed the connection at the login")
    if not answered:
        return NotReady("connection_closed", "closed without answering the AMQP header")
    return NotReady("connection_closed", f"the broker closed the connection ({stage})")


def _send(sock: socket.socket, ids: tuple[int, int], args: bytes) -> None:
    payload = struct.pack(">HH", *ids) + args
    sock.sendall(struct.pack(">BHI", METHOD, 0, len(payload)) + payload + bytes([FRAME_END]))


def _shortstr(text: str) -> bytes:
    raw = text.encode()[:255]
    return bytes([len(raw)]) + raw


def _longstr(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack(">I", len(raw)) + raw


def _table(fields: dict[str, bytes]) -> bytes:
    """A field table; each value is already its type octet and its encoding."""
    body = b"".join(_shortstr(name) + value for name, value in fields.items())
    return struct.pack(">I", len(body)) + body
