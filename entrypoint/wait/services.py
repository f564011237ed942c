"""ENTRYPOINT_WAIT_SERVICES: the URLs of other services the wait step waits for.

Parsed with the other settings, before anything starts; how each is checked is in protocols.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
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
