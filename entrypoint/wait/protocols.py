"""One reachability check of a service, speaking just enough of its protocol.

No client libraries: a plain socket (or http.client) and a few bytes of each protocol tell that
the service answers. Every socket operation has a timeout, and the caller runs the check in a
bounded worker thread (see probe.py), so the wait's deadline holds whatever the server does.
"""

from __future__ import annotations

import base64
import socket
from pathlib import Path
from typing import BinaryIO

from entrypoint.wait.amqp import login as amqp_login
from entrypoint.wait.services import NotReady, Service

TLS = {"https", "rediss", "amqps"}
MAX_REPLY = 65536


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
                amqp_login(sock, service)


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
        if service.database:  # 0 always exists (and is the only one a cluster has)
            _redis_command(sock, replies, "SELECT", str(service.database), expect=b"+OK")
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
    if words.startswith("ERR DB INDEX IS OUT OF RANGE"):  # more than its `databases` setting
        raise NotReady("database_out_of_range", text)
    raise NotReady("unexpected_reply", f"{args[0]}: {text}")
