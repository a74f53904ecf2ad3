"""A private `redis-server` process that a test (or `make chaos`) can kill and start again.

It listens on 127.0.0.1 on a free port, keeps nothing on disk (no RDB, no AOF: a restart
loses every queued task, as the worst broker outage would), and starts again on the same
port, so clients configured with its URL reconnect to it:

    with RedisServer() as redis:      # raises RedisUnavailable if it cannot start
        ...  # point the Celery app and the workers at redis.url
        redis.kill()                  # SIGKILL: the broker is gone, queued tasks with it
        redis.start()                 # the same port, empty

No pytest here: `devtools/chaos.py` uses it too (the `private_broker` fixture is in
tests/worker.py).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT = 10.0


class RedisUnavailable(RuntimeError):
    """No redis-server binary, or it would not start."""


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _ping(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    def __init__(self, *, binary: str | None = None, host: str = HOST, port: int | None = None):
        self.binary = binary or shutil.which("redis-server")
        self.host = host
        self.port = port
        self.process: subprocess.Popen | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix="credportal-redis-"))
        self.log_path = self.workdir / "redis.log"
        self.starts = 0
        self.kills = 0

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> RedisServer:
        """Start (again, on the same port once it has one); returns when it answers PING."""
        if self.binary is None:
            raise RedisUnavailable("redis-server is not installed (not on PATH)")
        if self.running:
            return self
        attempts = 1 if self.port is not None else 3  # a fresh port can be taken in between
        for _ in range(attempts):
            port = self.port or free_port(self.host)
            command = [
                self.binary,
                "--bind",
                self.host,
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(self.log_path),
            ]
            self.process = subprocess.Popen(  # noqa: S603  (our own binary and arguments)
                command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.process.poll() is None:
                if _ping(self.host, port):
                    self.port = port
                    self.starts += 1
                    return self
                time.sleep(0.05)
            self._reap()
        raise RedisUnavailable(f"redis-server did not start on {self.host}:{port}: {self.log()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save; connected clients see their sockets drop."""
        if self.running:
            self.process.send_signal(signal.SIGKILL)
            self.kills += 1
        self._reap()

    def restart(self, timeout: float = START_TIMEOUT) -> RedisServer:
        self.kill()
        return self.start(timeout)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except FileNotFoundError:
            return ""

    def _reap(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
