"""A throwaway PostgreSQL server on 127.0.0.1 for tests and soak runs.

``initdb`` into a temporary folder, ``pg_ctl start`` on a free port (TCP on loopback only, the
socket in the same folder), a database per call of :meth:`PostgresServer.create_database`, and a
clean stop. PostgreSQL refuses to run as root; as root the server runs as the ``postgres`` user
(created by the Debian package) through ``runuser``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries, or the server would not start; the message says which."""


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    raise PostgresUnavailable(
        f"{name} not found (install the Debian package postgresql, or put its bin on PATH)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostgresServer:
    """A private PostgreSQL cluster; use as a context manager or call start/stop."""

    def __init__(self) -> None:
        self.port = 0
        self._dir: Path | None = None
        self._as: list[str] = []
        self._n = 0

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._as, *args], capture_output=True, text=True, check=False, timeout=120
        )

    def start(self) -> PostgresServer:
        initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
        self._dir = Path(tempfile.mkdtemp(prefix="tradestack-pg-"))
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise PostgresUnavailable("running as root and runuser is missing")
            shutil.chown(self._dir, "postgres", "postgres")
            self._as = [runuser, "-u", "postgres", "--"]
        data = self._dir / "data"
        done = self._run(initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {done.stderr.strip()[-500:]}")
        self.port = _free_port()
        options = f"-h 127.0.0.1 -p {self.port} -k {self._dir} -c fsync=on -c synchronous_commit=on"
        done = self._run(
            pg_ctl, "-D", str(data), "-o", options, "-l", str(self._dir / "log"), "-w", "start"
        )
        if done.returncode != 0:
            log = self._dir / "log"
            tail = log.read_text()[-500:] if log.exists() else done.stderr
            raise PostgresUnavailable(f"pg_ctl start failed: {tail.strip()}")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        self._n += 1
        name = f"{prefix}_{os.getpid()}_{self._n}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self._dir is None:
            return
        with contextlib.suppress(PostgresUnavailable, subprocess.TimeoutExpired):
            self._run(_bin("pg_ctl"), "-D", str(self._dir / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a server, yield it, stop it."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()
