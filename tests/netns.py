"""Test hosts behind links the tests can cut (root only: ip netns, veth, iptables): a
PostgreSQL cluster (``NetnsPostgres``) and a MariaDB server (``NetnsMariaDB``).

The server runs in a network namespace of its own, reachable from the host over two veth
links, each with a /24 of its own in 10.231.0.0/16: two paths to one server, so one client's
path can go silent while another client's stays healthy. The tests' own queries go over the
server's Unix socket (a path on the shared file system, outside any network namespace), so they
work whatever state the links are in.

Two ways to cut a link, as production networks fail:
- ``down``: the host end set down (a node gone, a cable pulled): packets vanish, no reset;
- ``drop``: the link stays up and every packet is lost, the way ``tc qdisc ... netem loss
  100%`` loses them (a partition, a firewall that drops). The kernels here lack sch_netem, and a
  qdisc that drops (``pfifo limit 0``) tells the sending socket, which then gives up on its own
  within seconds: not a silent network. So each end drops what arrives from the other
  (``iptables -I INPUT -i IFACE -j DROP``, in the root namespace on our own host end only).

Everything made here (namespace, links, server) is removed by ``remove()``, which tolerates a
half-made host: the fixture calls it whatever happened.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import psycopg

from tests.services import SERVICE_USER, MariaDB, Postgres, as_service_user, pg_bin, sbin_tool

PREFIX = "netcut"
SUBNETS = "10.231"  # a private range; only addresses inside namespaces made here are used


def skip_reason() -> str | None:
    """Why these tests cannot run here, or None: they need root for ip netns and iptables."""
    if os.geteuid() != 0:
        return "needs root: the network-cut tests create a network namespace and veth links"
    return None


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def iptables(
    *args: str, namespace: str = "", check: bool = True
) -> subprocess.CompletedProcess[str]:
    """A rule in ``namespace`` (the root one when empty), always on an interface of ours."""
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    return subprocess.run(
        [*prefix, "iptables", "-w", *args], check=check, capture_output=True, text=True
    )


@contextmanager
def silenced(server_port: int, client_port: int) -> Iterator[None]:
    """One TCP connection on loopback goes silent both ways, as over a dead network: what
    either end sends is lost, with no reset. Only that connection's packets (its two ports)."""
    ends = [(client_port, server_port), (server_port, client_port)]
    rules = [
        ["INPUT", "-i", "lo", "-p", "tcp", "--sport", str(a), "--dport", str(b), "-j", "DROP"]
        for a, b in ends
    ]
    try:
        for rule in rules:
            iptables("-I", *rule)
        yield
    finally:
        for rule in rules:
            iptables("-D", *rule, check=False)


@dataclass(frozen=True)
class Link:
    """One veth pair: ``host`` in the root namespace, ``peer`` in the test host's namespace."""

    name: str
    host: str
    peer: str
    host_addr: str
    peer_addr: str  # where the server listens on this link


def _free_subnet(taken: set[int]) -> int:
    """A third octet no interface of this machine uses yet (another run may own some)."""
    used = ip("-o", "-4", "addr", "show").stdout
    for _attempt in range(100):
        octet = random.randint(0, 255)
        if octet not in taken and f" {SUBNETS}.{octet}." not in used:
            return octet
    raise RuntimeError(f"no free /24 left in {SUBNETS}.0.0/16")


class Links:
    """A network namespace and its veth links ``a`` and ``b``: made, cut, healed, removed."""

    def __init__(self, links: tuple[str, ...] = ("a", "b")) -> None:
        tag = uuid.uuid4().hex[:6]
        self.namespace = f"{PREFIX}-{tag}"
        taken: set[int] = set()
        self.links: dict[str, Link] = {}
        for name in links:
            octet = _free_subnet(taken)
            taken.add(octet)
            self.links[name] = Link(
                name=name,
                host=f"nc{tag}{name}",  # interface names: at most 15 characters
                peer=f"nc{tag}{name}p",
                host_addr=f"{SUBNETS}.{octet}.1",
                peer_addr=f"{SUBNETS}.{octet}.2",
            )
        self.made_namespace = False

    def make(self) -> None:
        ip("netns", "add", self.namespace)
        self.made_namespace = True
        ip("-n", self.namespace, "link", "set", "lo", "up")
        for link in self.links.values():
            ip("link", "add", link.host, "type", "veth", "peer", "name", link.peer)
            ip("link", "set", link.peer, "netns", self.namespace)
            ip("addr", "add", f"{link.host_addr}/24", "dev", link.host)
            ip("-n", self.namespace, "addr", "add", f"{link.peer_addr}/24", "dev", link.peer)
            ip("link", "set", link.host, "up")
            ip("-n", self.namespace, "link", "set", link.peer, "up")

    def cut(self, link: str, how: str) -> None:
        """Make ``link`` silent: ``down`` (its host end down) or ``drop`` (up, every packet lost)."""
        ends = self.links[link]
        if how == "down":
            ip("link", "set", ends.host, "down")
        elif how == "drop":
            # Dropped on arrival at either end, so that neither sender's stack learns of it.
            iptables("-I", "INPUT", "-i", ends.host, "-j", "DROP")
            iptables("-I", "INPUT", "-i", ends.peer, "-j", "DROP", namespace=self.namespace)
        else:
            raise ValueError(f"unknown way to cut a link: {how!r}")

    def heal(self, link: str) -> None:
        ends = self.links[link]
        while iptables("-D", "INPUT", "-i", ends.host, "-j", "DROP", check=False).returncode == 0:
            pass
        if Path(f"/run/netns/{self.namespace}").exists():
            iptables("-F", "INPUT", namespace=self.namespace, check=False)
        if Path(f"/sys/class/net/{ends.host}").exists():
            ip("link", "set", ends.host, "up")

    def heal_all(self) -> None:
        for name in self.links:
            self.heal(name)

    def remove(self) -> None:
        """Namespace and host ends, each step whatever the previous one did."""
        for name in self.links:
            self.heal(name)  # the root namespace's DROP rules name our interfaces
        if self.made_namespace:
            pids = ip("netns", "pids", self.namespace, check=False).stdout.split()
            for pid in pids:
                subprocess.run(["kill", "-9", pid], check=False, capture_output=True)
            ip("netns", "del", self.namespace, check=False)
        for ends in self.links.values():
            # Deleting the namespace deletes its veth ends and so the pairs; a pair whose peer
            # never moved into the namespace is still here.
            if Path(f"/sys/class/net/{ends.host}").exists():
                ip("link", "del", ends.host, check=False)


class NetnsPostgres(Postgres):
    """A PostgreSQL cluster inside a network namespace, reachable over links ``a`` and ``b``."""

    def __init__(self, links: tuple[str, ...] = ("a", "b")) -> None:
        self.net = Links(links)
        self.namespace, self.links = self.net.namespace, self.net.links
        super().__init__()  # initdb, in a directory the service user owns

    def start(self) -> None:
        """Make the namespace and its links, then start the server inside it."""
        self.net.make()
        hba = self.data / "pg_hba.conf"
        as_service_user(["sh", "-c", f"echo 'host all all 0.0.0.0/0 trust' >> {hba}"])
        addrs = ",".join(link.peer_addr for link in self.links.values())
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses={addrs} -c fsync=off "
            "-c max_connections=200"
        )
        pg_ctl = [
            str(pg_bin() / "pg_ctl"),
            *("-D", str(self.data), "-l", str(self.root / "log"), "-w", "-o", opts, "start"),
        ]
        subprocess.run(
            ["ip", "netns", "exec", self.namespace, "runuser", "-u", SERVICE_USER, "--", *pg_ctl],
            check=True,
            capture_output=True,
            text=True,
        )

    def url(
        self,
        dbname: str = "postgres",
        *,
        user: str = "postgres",
        password: str = "",
        port: int | None = None,
        link: str = "a",
    ) -> str:
        """The server's address on ``link``: what a replica on that path connects to."""
        auth = f"{user}:{password}" if password else user
        addr = self.links[link].peer_addr
        return f"postgres://{auth}@{addr}:{port or self.port}/{dbname}"

    def execute(self, sql: str, dbname: str = "postgres") -> list[tuple[object, ...]]:
        """Over the Unix socket: the tests' own queries never depend on a link."""
        with psycopg.connect(
            host=str(self.root), port=self.port, user="postgres", dbname=dbname, autocommit=True
        ) as conn:
            cur = conn.execute(sql.encode())
            return cur.fetchall() if cur.description else []

    def cut(self, link: str, how: str) -> None:
        self.net.cut(link, how)

    def heal(self, link: str) -> None:
        self.net.heal(link)

    def heal_all(self) -> None:
        self.net.heal_all()

    def remove(self) -> None:
        """Server, namespace and host ends, each step whatever the previous one did."""
        super().remove()  # pg_ctl -m immediate stop, then its directory
        self.net.remove()


class NetnsMariaDB(MariaDB):
    """A MariaDB server inside a network namespace, reachable over links ``a`` and ``b``, where
    root may log in from any address (the links' host ends)."""

    def __init__(self) -> None:
        self.net = Links()
        self.namespace = self.net.namespace
        super().__init__()  # mariadb-install-db, in a directory the mysql user owns

    def start(self) -> None:
        self.net.make()
        self.proc = subprocess.Popen(
            [
                *("ip", "netns", "exec", self.namespace, sbin_tool("mariadbd")),
                *(["--user=mysql"] if os.geteuid() == 0 else []),
                f"--datadir={self.data}",
                f"--socket={self.root / 'sock'}",
                f"--port={self.port}",
                "--bind-address=0.0.0.0",  # inside the namespace: its links' addresses only
                "--skip-name-resolve",  # no resolver for the links' addresses
                f"--pid-file={self.root / 'pid'}",
                f"--log-error={self.root / 'err.log'}",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=64M",
            ],
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.execute("CREATE USER IF NOT EXISTS 'root'@'%'")
                break
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.1)
        self.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION")

    def url(self, dbname: str, *, link: str = "a") -> str:
        """The server's address on ``link``: what a replica on that path connects to."""
        return f"mysql://root@{self.net.links[link].peer_addr}:{self.port}/{dbname}"

    def remove(self) -> None:
        """Server, namespace and host ends, each step whatever the previous one did."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(30)
            shutil.rmtree(self.root, ignore_errors=True)
        finally:
            self.net.remove()


class _Host(Protocol):
    namespace: str

    def start(self) -> None: ...
    def remove(self) -> None: ...


H = TypeVar("H", bound=_Host)


@contextmanager
def hosted(server: H) -> Iterator[H]:
    """The test host started; its server, namespace and links removed whatever happens."""
    try:
        server.start()
        yield server
    finally:
        server.remove()
        assert server.namespace not in ip("netns", "list").stdout, "namespace left behind"
