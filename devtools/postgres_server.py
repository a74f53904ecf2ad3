"""A private PostgreSQL server that `make chaos` can stop and start again.

Started from the installed binaries (`pg_ctl`, `initdb`) in a temporary folder, listening on
127.0.0.1 on a free port and on a Unix socket in that folder, owned by an unprivileged user
when we run as root (PostgreSQL refuses to run as root). Stopping it disturbs nobody: the
shared server (DATABASE_URL's) is never touched. Removed with its folder at the end.

    server = PrivatePostgres()
    if reason := server.unavailable():   # no binaries, or root without a `postgres` user
        ...                               # the caller says so and does without
    server.start()                        # initdb on the first start
    server.url                            # postgres://postgres@127.0.0.1:<port>/
    server.crash()                        # SIGQUIT: every process quits, recovery at start
    server.start()
    server.destroy()
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.redis_server import free_port

START_TIMEOUT = 30


def _binaries() -> Path | None:
    """The folder of pg_ctl and initdb: on PATH, else the newest Debian/Ubuntu install."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(os.path.realpath(on_path)).parent
    installed = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    return Path(installed[-1]) if installed else None


class PrivatePostgres:
    def __init__(self):
        self.bin = _binaries()
        self.port = free_port()
        self.root: Path | None = None
        self.running = False
        self._uid = self._gid = None
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
                self._uid, self._gid = account.pw_uid, account.pw_gid
            except KeyError:
                pass

    def unavailable(self) -> str:
        """Why this machine cannot run one ("" if it can)."""
        if self.bin is None or not (self.bin / "initdb").exists():
            return "no PostgreSQL server binaries (initdb, pg_ctl) installed"
        if os.geteuid() == 0 and self._uid is None:
            return "running as root, and there is no 'postgres' user to run the server as"
        return ""

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/"

    @property
    def version(self) -> str:
        return self.bin.parent.name if self.bin else "?"

    def _run(self, *command: str, timeout: float = START_TIMEOUT) -> None:
        result = subprocess.run(  # noqa: S603  (our arguments, the installed binaries)
            [str(self.bin / command[0]), *command[1:]],
            user=self._uid,
            group=self._gid,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {result.stderr.strip()[-500:]}")

    def start(self) -> None:
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="credportal-chaos-pg-"))
            if self._uid is not None:
                os.chown(self.root, self._uid, self._gid)
            self._run(
                "initdb", "-D", "data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"
            )
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", "data", "-l", "server.log", "-w", "-o", options, "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """`immediate`: every server process quits at once, as in a crash (the next start
        recovers from the WAL); `fast`: sessions are ended and the server shuts down cleanly."""
        self._run("pg_ctl", "-D", "data", "-m", mode, "-w", "stop")
        self.running = False

    def crash(self, timeout: float = START_TIMEOUT) -> None:
        """An immediate shutdown signalled straight to the postmaster (SIGQUIT), without the
        tens of milliseconds pg_ctl takes to start: every server process quits at once, as in
        a crash, and the next start recovers from the WAL. Returns once it has exited."""
        pid = int((self.root / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGQUIT)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        else:
            raise RuntimeError("PostgreSQL did not stop")
        self.running = False

    def log(self) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")
        except (OSError, TypeError):
            return ""

    def destroy(self) -> None:
        if self.running:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.stop("immediate")
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
