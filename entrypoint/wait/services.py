"""ENTRYPOINT_WAIT_SERVICES: the URLs of other services, and one reachability check of each.

No client libraries: a check speaks just enough of each protocol over a plain socket (or
http.client) to tell that the service answers. Every socket operation has a timeout, and the
caller runs the check in a bounded worker thread (see probe.py), so the wait's deadline holds.
"""

from __future__ import annotations

import base64
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from entrypoint.env_reader import Reader

VARIABLE = "ENTRYPOINT_WAIT_SERVICES"
DEFAULT_PORTS = {
    "tcp": None,
    "http": 80,
    "https": 443,
    "redis": 6379,
    "rediss": 6379,
    "amqp": 5672,
    "amqps": 5671,
    "file": None,
}
TLS = {"https", "rediss", "amqps"}
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"  # AMQP 0-9-1
AMQP_CONNECTION_START = b"\x00\x0a\x00\x0a"  # class 10 (connection), method 10 (start)
MAX_REPLY = 65536


@dataclass(frozen=True)
class Service:
    name: str  # what the logs show: no credentials, no query string
    scheme: str
    host: str = ""
    port: int = 0
    path: str = ""  # the HTTP request target, or the file's path
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    url: str = field(default="", repr=False)

    def secrets(self) -> list[str]:
        """What must never be logged: the password, and the URL when it holds credentials."""
        if not self.password and "?" not in self.url:
            return []
        return [self.password, self.url, unquote(self.url)]


class NotReady(Exception):
    """The service answered, but not as a ready one would; ``reason`` classifies it."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


def masked(item: str) -> str:
    """An item as an error message may show it: no user info, no query string."""
    return re.sub(r"//[^/?#]*@", "//***@", item).split("?", 1)[0]


def parse(item: str) -> Service:
    """One service URL; ValueError saying what is wrong (never quoting credentials)."""
    if any(c.isspace() for c in item):
        raise ValueError("contains white space")
    parts = urlsplit(item)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"unknown scheme {scheme or '(none)'!r}: use " + ", ".join(DEFAULT_PORTS))
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError("expected file:///absolute/path")
        path = unquote(parts.path)
        return Service(name=f"file://{path}", scheme=scheme, path=path, url=item)
    port = parts.port or DEFAULT_PORTS[scheme]  # .port raises ValueError when not a port
    if not parts.hostname or not port:
        raise ValueError(f"expected {scheme}://HOST:PORT")
    if scheme.startswith("redis") and not re.fullmatch(r"/?\d*", parts.path):
        raise ValueError("the path of a redis URL is a database number, e.g. /0")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    name = f"{scheme}://{host}:{port}"
    if scheme.startswith("http"):
        name += parts.path
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Service(
        name=name,
        scheme=scheme,
        host=parts.hostname,
        port=port,
        path=target,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        url=item,
    )


def read_services(reader: Reader) -> tuple[Service, ...]:
    """The services to wait for: URLs separated by commas or newlines."""
    raw = reader.env.get(VARIABLE, "")
    services: dict[str, Service] = {}
    for item in re.split(r"[,\n]", raw):
        if not item.strip():
            continue
        try:
            service = parse(item.strip())
        except ValueError as exc:
            reader.problems.append(
                f"{VARIABLE}: {masked(item.strip())!r} is invalid ({exc}): expected URLs such "
                "as tcp://host:port, http(s)://host/path, redis://:password@host:6379, "
                "amqp://host:5672 or file:///path, separated by commas or newlines"
            )
            continue
        services.setdefault(service.url, service)
    return tuple(services.values())


def check(service: Service, timeout: float) -> None:
    """One check; returns when the service is ready, raises (NotReady or OSError) when not."""
    if service.scheme == "file":
        if not Path(service.path).exists():
            raise NotReady("file_missing", f"{service.path} does not exist")
    elif service.scheme.startswith("http"):
        _http(service, timeout)
    else:
        with _connect(service, timeout) as sock:
            if service.scheme.startswith("redis"):
                _redis(sock, service)
            elif service.scheme.startswith("amqp"):
                _amqp(sock)


def _connect(service: Service, timeout: float) -> socket.socket:
    sock = socket.create_connection((service.host, service.port), timeout=timeout)
    if service.scheme not in TLS:
        return sock
    import ssl  # noqa: PLC0415 - only TLS services pay for it

    try:
        return ssl.create_default_context().wrap_socket(sock, server_hostname=service.host)
    except BaseException:
        sock.close()
        raise


def _http(service: Service, timeout: float) -> None:
    import http.client  # noqa: PLC0415 - only HTTP services pay for it

    cls = http.client.HTTPSConnection if service.scheme == "https" else http.client.HTTPConnection
    conn = cls(service.host, service.port, timeout=timeout)
    headers = {"User-Agent": "django-entrypoint", "Connection": "close"}
    if service.username or service.password:
        token = base64.b64encode(f"{service.username}:{service.password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    try:
        conn.request("GET", service.path, headers=headers)
        response = conn.getresponse()
        status = response.status
    finally:
        conn.close()
    if not 200 <= status < 400:  # 2xx and 3xx (redirects are not followed)
        raise NotReady(f"http_{status}", f"HTTP {status} {response.reason}")


def _redis(sock: socket.socket, service: Service) -> None:
    with sock.makefile("rb") as replies:
        if service.password:
            user = [service.username] if service.username else []
            _redis_command(sock, replies, "AUTH", *user, service.password, expect=b"+OK")
        _redis_command(sock, replies, "PING", expect=b"+PONG")


def _redis_command(sock: socket.socket, replies: BinaryIO, *args: str, expect: bytes) -> None:
    """Send one command in RESP; raise NotReady unless the reply is ``expect``."""
    encoded = [a.encode() for a in args]
    sock.sendall(
        b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in encoded)
    )
    reply = replies.readline(MAX_REPLY).rstrip(b"\r\n")
    if reply == expect:
        return
    text = reply.decode(errors="replace")[:200]
    if not reply:
        raise NotReady("connection_closed", f"no reply to {args[0]}")
    words = text[1:].upper()
    if words.startswith(("WRONGPASS", "ERR INVALID PASSWORD", "ERR INVALID USERNAME")):
        raise NotReady("authentication_failed", text)
    if words.startswith("NOAUTH"):
        raise NotReady("authentication_required", text)
    if words.startswith("LOADING"):
        raise NotReady("server_starting_up", text)
    raise NotReady("unexpected_reply", f"{args[0]}: {text}")


def _amqp(sock: socket.socket) -> None:
    """Send the protocol header; a broker answers with a Connection.Start method frame."""
    sock.sendall(AMQP_HEADER)
    reply = b""
    while len(reply) < 11:  # type (1), channel (2), size (4), class and method ids (4)
        chunk = sock.recv(11 - len(reply))
        if not chunk:
            break
        reply += chunk
    if reply[:1] == b"\x01" and reply[7:11] == AMQP_CONNECTION_START:
        return
    if not reply:
        raise NotReady("connection_closed", "closed without answering the AMQP header")
    if reply.startswith(b"AMQP"):
        raise NotReady("protocol_mismatch", f"the broker wants AMQP {list(reply[4:8])}")
    raise NotReady("unexpected_reply", "not an AMQP 0-9-1 Connection.Start")
