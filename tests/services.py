"""Real servers started by the tests: throwaway PostgreSQL clusters, PgBouncer, MariaDB, and
HTTP servers (a container registry, a package index).

Each runs on a free high port in a temporary directory, never touching the machine's own
servers on the standard ports.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

SERVICE_USER = "postgres"


def pg_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        raise RuntimeError("PostgreSQL server binaries not found: run scripts/test to install them")
    return versions[-1].parent


@contextmanager
def http_server(cmd: list[str], url: str, *, log: Path, timeout: float = 60) -> Iterator[None]:
    """A server process, ready once ``url`` answers; its output in ``log``, SIGTERM at the end."""
    with log.open("w") as out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    urllib.request.urlopen(url, timeout=2).close()
                    break
                except OSError as error:
                    if server.poll() is not None or time.monotonic() > deadline:
                        message = f"{cmd[0]} did not answer {url}:\n{log.read_text()}"
                        raise RuntimeError(message) from error
                    time.sleep(0.1)
            yield
        finally:
            server.terminate()
            server.wait(30)


def sbin_tool(name: str) -> str:
    """Server binaries live in /usr/sbin, which is not on a non-root user's PATH."""
    return shutil.which(name) or f"/usr/sbin/{name}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def silent_listener() -> Iterator[socket.socket]:
    """A TCP listener on a free port of 127.0.0.1 that never accepts: the kernel completes the
    handshakes and nobody says a word (a black hole for a client's timeouts), and, the socket
    being non-blocking, ``accept()`` tells a test whether anyone connected at all."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)  # noqa: FBT003
        yield sock


def as_service_user(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """initdb and pgbouncer refuse to run as root: drop to the postgres user when we are root."""
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", SERVICE_USER, "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload,no-any-return]


def service_dir(prefix: str, owner: str = SERVICE_USER) -> Path:
    """A fresh directory the service user owns, outside pytest's root-only tmp tree."""
    path = Path(tempfile.mkdtemp(prefix=f"dj-entrypoint-{prefix}-"))
    path.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(path, owner, owner)
    return path


class Postgres:
    """A PostgreSQL cluster that tests can stop, start and crash; or, ``standby_of`` another
    (running) one, its streaming standby (``pg_basebackup -R``), read-only until promoted."""

    def __init__(self, *, max_connections: int = 200, standby_of: Postgres | None = None) -> None:
        # A standby refuses to start with fewer slots than its primary has.
        self.max_connections: int = standby_of.max_connections if standby_of else max_connections
        self.root = service_dir("pg")
        self.data = self.root / "data"
        self.port = free_port()
        if standby_of:
            backup = [str(pg_bin() / "pg_basebackup"), "-h", "127.0.0.1", "-p"]
            as_service_user(
                [
                    *backup,
                    str(standby_of.port),
                    "-U",
                    "postgres",
                    "-D",
                    str(self.data),
                    "-R",
                    "-c",
                    "fast",
                ]
            )
            return
        as_service_user(
            [
                str(pg_bin() / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c max_connections={self.max_connections}"
        )
        as_service_user(
            [
                str(pg_bin() / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.root / "log"),
                "-w",
                "-o",
                opts,
                "start",
            ]
        )

    def stop(self, mode: str = "fast") -> None:
        as_service_user([str(pg_bin() / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def promote(self) -> None:
        """A standby becomes a primary (a failover), once ``pg_ctl promote`` says it is done."""
        as_service_user([str(pg_bin() / "pg_ctl"), "-D", str(self.data), "-w", "promote"])

    def remove(self) -> None:
        subprocess.run(
            [str(pg_bin() / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
            user=SERVICE_USER if os.geteuid() == 0 else None,
        )
        shutil.rmtree(self.root, ignore_errors=True)

    def url(
        self,
        dbname: str = "postgres",
        *,
        user: str = "postgres",
        password: str = "",
        port: int | None = None,
    ) -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgres://{auth}@127.0.0.1:{port or self.port}/{dbname}"

    def execute(self, sql: str, dbname: str = "postgres") -> list[tuple[object, ...]]:
        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            cur = conn.execute(sql.encode())
            return cur.fetchall() if cur.description else []

    def create_database(self, template: str = "") -> str:
        """A new database: empty, or a copy of ``template`` (which no session may be using)."""
        name = "t_" + uuid.uuid4().hex[:12]
        copied = f' TEMPLATE "{template}"' if template else ""
        self.execute(f'CREATE DATABASE "{name}"{copied}')
        return name

    def owned_by_role(self, dbname: str, role: str, limit: int | None = None) -> str:
        """``dbname`` (and its public schema) owned by a new login role that is no superuser,
        allowed ``limit`` connections (a limit binds no superuser); that role's URL."""
        limit_sql = f" CONNECTION LIMIT {limit}" if limit is not None else ""
        self.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER{limit_sql}')
        self.execute(f'ALTER DATABASE "{dbname}" OWNER TO "{role}"')
        self.execute(f'ALTER SCHEMA public OWNER TO "{role}"', dbname)
        return self.url(dbname, user=role)

    def add_password_user(self, user: str, password: str) -> None:
        """A role that must log in with a password over TCP (the cluster trusts everyone else)."""
        self.execute(f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'")
        self.add_hba_rule(f"host all {user} 127.0.0.1/32 scram-sha-256")

    def add_hba_rule(self, rule: str) -> None:
        """A pg_hba.conf line before all others (they trust everyone), in force at once."""
        hba = self.data / "pg_hba.conf"
        as_service_user(
            ["sh", "-c", f"printf '%s\\n' '{rule}' | cat - {hba} > {hba}.new && mv {hba}.new {hba}"]
        )
        self.execute("SELECT pg_reload_conf()")


class PgBouncer:
    """PgBouncer in transaction pooling mode in front of a Postgres cluster."""

    def __init__(self, pg: Postgres, extra: str = "") -> None:
        self.root = service_dir("pgbouncer")
        self.port = free_port()
        ini = self.root / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={pg.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\n"
            f"unix_socket_dir = {self.root}\n"
            "auth_type = trust\n"
            f"auth_file = {self.root / 'users.txt'}\n"
            "pool_mode = transaction\nmax_client_conn = 500\ndefault_pool_size = 5\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.root / 'pgbouncer.log'}\npidfile = {self.root / 'pgbouncer.pid'}\n"
            + extra
        )
        (self.root / "users.txt").write_text('"postgres" ""\n')
        for path in self.root.iterdir():
            if os.geteuid() == 0:
                shutil.chown(path, SERVICE_USER, SERVICE_USER)
        self.ini = ini

    def start(self) -> None:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        as_service_user([binary, "-d", str(self.ini)])
        wait_port(self.port)

    def stop(self) -> None:
        pid = (self.root / "pgbouncer.pid").read_text().strip()
        subprocess.run(["kill", pid], check=False)


class MariaDB:
    def __init__(self) -> None:
        self.root = service_dir("mariadb", "mysql")
        self.data = self.root / "data"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        user = ["--user=mysql"] if os.geteuid() == 0 else []
        # It failed now and then under heavy load (three suites at once), saying nothing on
        # stderr: try again on a clean directory, and show its whole output if it keeps failing.
        for _attempt in range(3):
            proc = subprocess.run(
                [
                    sbin_tool("mariadb-install-db"),
                    *user,
                    f"--datadir={self.data}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ],
                check=False,
                capture_output=True,
                text=True,
            )
            if proc.returncode == 0:
                return
            shutil.rmtree(self.data, ignore_errors=True)
            time.sleep(1)
        output = (proc.stdout + proc.stderr)[-3000:]
        raise RuntimeError(f"mariadb-install-db exited {proc.returncode}:\n{output}")

    def start(self) -> None:
        user = ["--user=mysql"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen(
            [
                sbin_tool("mariadbd"),
                *user,
                f"--datadir={self.data}",
                f"--socket={self.root / 'sock'}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--pid-file={self.root / 'pid'}",
                f"--log-error={self.root / 'err.log'}",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=64M",
                "--max-connections=300",
            ],
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(30)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{dbname}"

    def execute(self, sql: str, db: str | None = None) -> list[tuple[object, ...]]:
        """As root over the server's Unix socket: the tests' own queries never need a network."""
        import pymysql  # noqa: PLC0415

        conn = pymysql.connect(unix_socket=str(self.root / "sock"), user="root", database=db)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return [tuple(row) for row in cur.fetchall()]
        finally:
            conn.close()

    def create_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        self.execute(f"CREATE DATABASE {name}")
        return name


def wait_port(port: int, timeout: float = 30, proc: subprocess.Popen[str] | None = None) -> None:
    """Wait for a listener; give up early when the process that should open it has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process exited with {proc.returncode} before port {port}")
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


class StallingProxy:
    """A TCP proxy to PostgreSQL that lets a client log in, then never answers again.

    It forwards the server's messages up to the first ReadyForQuery ('Z'), and drops the rest:
    the connection is up and authenticated, but ``SELECT 1`` hangs forever, as with a server
    that stalls mid-session. Clients must connect with sslmode=disable and gssencmode=disable,
    so that the server's side is plain protocol messages (type byte, int32 length).
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, stall_after_ready: bool) -> None:
        pending = b""
        while data := _recv(source):
            if not stall_after_ready:
                sink.sendall(data)
                continue
            pending += data
            while len(pending) >= 5:
                size = 1 + int.from_bytes(pending[1:5], "big")
                if len(pending) < size:
                    break
                message, pending = pending[:size], pending[size:]
                sink.sendall(message)
                if message[:1] == b"Z":
                    _drain(source)
                    return

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _drain(sock: socket.socket) -> None:
    while _recv(sock):
        pass
