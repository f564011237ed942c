"""ENTRYPOINT_WAIT_SERVICES: the URLs of other services the wait step waits for.

Parsed with the other settings, before anything starts; how each is checked is in protocols.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import SplitResult, unquote, urlsplit

from entrypoint import log
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
    database: int = 0  # a redis URL's database number
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    url: str = field(default="", repr=False)


class NotReady(Exception):
    """The service answered, but not as a ready one would; ``reason`` classifies it."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


def secrets(item: str) -> list[str]:
    """What of one item must never be logged, found without parsing it: the URL when it holds
    credentials or a query, and the password as its author meant it.

    The password runs from the first ``:`` after ``scheme://`` to the last ``@``: an unencoded
    ``#``, ``/`` or ``?`` in it (common in generated passwords) cuts it short for a URL parser,
    which then reads the rest as a port, a path or a fragment, and quotes it in its errors.
    """
    rest = item.partition("://")[2]
    userinfo = rest.rpartition("@")[0]
    if not userinfo and "?" not in rest:
        return []
    password = userinfo.partition(":")[2]
    return [item, unquote(item), password, unquote(password)]


def masked(item: str) -> str:
    """An item as an error message may show it: no user info, no query, no fragment.

    Whatever stands before the last ``@`` is user info, however a parser would cut it.
    """
    scheme, found, rest = item.partition("://")
    if not found:
        scheme, rest = "", item
    _, at, place = rest.rpartition("@")
    return f"{scheme}{found}{'***@' if at else ''}{re.split(r'[?#]', place, maxsplit=1)[0]}"


def parse(item: str) -> Service:
    """One service URL; ValueError saying what is wrong (never quoting credentials)."""
    if any(c.isspace() for c in item):
        raise ValueError("contains white space")
    parts = urlsplit(item)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"unknown scheme {scheme or '(none)'!r}: use " + ", ".join(DEFAULT_PORTS))
    if "#" in item or "@" in item.partition("://")[2].removeprefix(parts.netloc):
        # A service has no use for a fragment; an @ past the host is a password's end.
        raise ValueError(
            "a '#', '/', '?' or '@' in a user name or password must be percent-encoded "
            "(%23, %2F, %3F, %40), and so must '#' and '@' elsewhere in the URL"
        )
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError("expected file:///absolute/path")
        path = unquote(parts.path)
        return Service(name=f"file://{path}", scheme=scheme, path=path, url=item)
    return _network_service(item, parts, scheme)


def _network_service(item: str, parts: SplitResult, scheme: str) -> Service:
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:  # its message quotes the text after the colon
        raise ValueError("the port is not a number from 1 to 65535") from None
    if not parts.hostname or not port:
        raise ValueError(f"expected {scheme}://HOST:PORT")
    if scheme.startswith("redis") and not re.fullmatch(r"/?\d*", parts.path):
        raise ValueError("the path of a redis URL is a database number, e.g. /0")
    database = int(parts.path.strip("/") or 0) if scheme.startswith("redis") else 0
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    name = f"{scheme}://{host}:{port}"
    if scheme.startswith("http"):
        name += parts.path
    elif database:  # two databases of one server are two services
        name += f"/{database}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Service(
        name=name,
        scheme=scheme,
        host=parts.hostname,
        port=port,
        path=target,
        database=database,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        url=item,
    )


def read_services(reader: Reader) -> tuple[Service, ...]:
    """The services to wait for: URLs separated by commas or newlines."""
    raw = reader.env.get(VARIABLE, "")
    services: dict[str, Service] = {}
    for raw_item in re.split(r"[,\n]", raw):
        item = raw_item.strip()
        if not item:
            continue
        # Before parsing: whatever the parser's errors or ours quote, the scrubber hides it.
        log.add_secrets(secrets(item))
        try:
            service = parse(item)
        except ValueError as exc:
            reader.problems.append(
                f"{VARIABLE}: {masked(item)!r} is invalid ({exc}): expected URLs such "
                "as tcp://host:port, http(s)://host/path, redis://:password@host:6379, "
                "amqp://host:5672 or file:///path, separated by commas or newlines"
            )
            continue
        services.setdefault(service.url, service)
    return tuple(services.values())
