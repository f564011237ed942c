"""Other services the wait step checks: real Redis and RabbitMQ servers, and small listeners.

Each runs on free ports in a temporary directory, never touching the machine's own servers on
the standard ports (6379, 5672, epmd's 4369).
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

from tests.services import free_port, wait_port

RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")  # not the wrapper that su's


class Redis:
    def __init__(self, password: str = "") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dj-entrypoint-redis-"))
        self.port = free_port()
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.root),
            "--logfile", str(self.root / "redis.log"),
        ]  # fmt: skip
        if self.password:
            cmd += ["--requirepass", self.password]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(30)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, password: str | None = None) -> str:
        secret = self.password if password is None else password
        auth = f":{secret}@" if secret else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"


class RabbitMQ:
    """A RabbitMQ node of its own: its own epmd, node name, ports and data directory."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dj-entrypoint-rabbitmq-"))
        self.port, self.dist_port, self.epmd_port = free_port(), free_port(), free_port()
        self.procs: list[subprocess.Popen[bytes]] = []

    def env(self) -> dict[str, str]:
        root = self.root
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(root),  # the Erlang cookie goes there
            "RABBITMQ_NODENAME": f"dje{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(root / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(root / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(root / "rabbitmq.pid"),
        }

    def start(self) -> None:
        (self.root / "enabled_plugins").write_text("[].\n")
        log = (self.root / "server.log").open("wb")
        # Our own epmd in the foreground: the broker would otherwise leave a daemon behind.
        epmd = shutil.which("epmd") or "/usr/bin/epmd"
        self.procs.append(
            subprocess.Popen([epmd, "-port", str(self.epmd_port)], stdout=log, stderr=log)
        )
        wait_port(self.epmd_port, proc=self.procs[0])  # type: ignore[arg-type]
        self.procs.insert(
            0,
            subprocess.Popen(
                [str(RABBITMQ_SERVER)],
                env=self.env(),
                stdout=log,
                stderr=log,
                start_new_session=True,
            ),
        )
        wait_port(self.port, timeout=120, proc=self.procs[0])  # type: ignore[arg-type]

    def stop(self) -> None:
        """The broker's whole process group (erl, beam and its helpers), then our epmd."""
        if self.procs:
            broker, epmd = self.procs
            _signal_group(broker.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                broker.wait(30)
            _signal_group(broker.pid, signal.SIGKILL)  # whatever the script left behind
            broker.wait(10)
            epmd.terminate()
            epmd.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


class FlakyHTTP:
    """An HTTP server answering ``statuses`` in turn to GET /health (the last one for ever)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[dict[str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append({"path": self.path, **dict(self.headers)})
                status = outer.statuses.pop(0) if len(outer.statuses) > 1 else outer.statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class LateListener:
    """A TCP port that refuses connections until ``open()``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.sock: socket.socket | None = None

    def open(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", self.port))

    def close(self) -> None:
        if self.sock:
            self.sock.close()


class Greeter:
    """A server that speaks first, as SSH does: whatever connects gets ``banner``."""

    def __init__(self, banner: bytes = b"SSH-2.0-OpenSSH_9.2\r\n") -> None:
        self.banner = banner
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(self.banner)

    def close(self) -> None:
        self.listener.close()
