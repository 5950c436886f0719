"""A throwaway Redis server on 127.0.0.1 for tests and benchmarks.

``redis-server`` in a temporary folder (its working directory and log), on a free port, loopback
only, protected mode on, no RDB snapshots and no AOF unless asked for; ready once it answers
``PING``. :meth:`RedisServer.stop` (also on a failed start) ends it and removes the folder.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

_SEARCHED = ("/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server")


class RedisUnavailable(RuntimeError):
    """No redis-server binary, or the server would not start; the message says which."""


def find_redis_server() -> str | None:
    """Path of the ``redis-server`` binary (PATH first, then the usual install places), or None."""
    found = shutil.which("redis-server")
    if found:
        return found
    for candidate in _SEARCHED:
        if Path(candidate).is_file():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _command(*parts: str) -> bytes:
    """One command in the Redis protocol (RESP)."""
    encoded = [p.encode() for p in parts]
    return f"*{len(encoded)}\r\n".encode() + b"".join(
        b"$%d\r\n%s\r\n" % (len(p), p) for p in encoded
    )


class RedisServer:
    """A private redis-server process; use as a context manager or call start/stop."""

    def __init__(
        self,
        *,
        binary: str | None = None,
        appendonly: bool = False,
        password: str | None = None,
        tmp_root: str | Path | None = None,
        start_timeout_s: float = 10.0,
    ) -> None:
        self.port = 0
        self._binary = binary
        self._appendonly = appendonly
        self._password = password
        self._tmp_root = tmp_root
        self._timeout = start_timeout_s
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def directory(self) -> Path | None:
        """The server's working folder (log, AOF) while it runs."""
        return self._dir

    @property
    def url(self) -> str:
        auth = f":{self._password}@" if self._password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = self._binary or find_redis_server()
        if binary is None:
            raise RedisUnavailable(
                "redis-server not found on PATH (install the Debian package redis-server)"
            )
        self._dir = Path(tempfile.mkdtemp(prefix="tradestack-redis-", dir=self._tmp_root))
        try:
            reason = ""
            for _attempt in range(3):  # another process may take the free port before we bind it
                self.port = _free_port()
                reason = self._launch(binary)
                if not reason:
                    return self
                if "already in use" not in reason:
                    break
            raise RedisUnavailable(f"redis-server ({binary}) did not start: {reason}")
        except BaseException:
            self.stop()
            raise

    def _launch(self, binary: str) -> str:
        """Start the process and wait for PING; returns why it failed, or '' when ready."""
        assert self._dir is not None
        log = self._dir / "redis.log"
        args = [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--save", "",
            "--appendonly", "yes" if self._appendonly else "no",
            "--dir", str(self._dir),
            "--logfile", str(log),
            "--daemonize", "no",
        ]  # fmt: skip
        if self._password:
            args += ["--requirepass", self._password]
        try:
            self._proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as exc:
            return f"cannot execute it: {exc}"
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                pipe = self._proc.stderr
                stderr = pipe.read().decode(errors="replace") if pipe is not None else ""
                tail = log.read_text(errors="replace") if log.exists() else ""
                status, self._proc = self._proc.returncode, None
                output = (stderr.strip() + "\n" + tail.strip()).strip()
                return f"exited with status {status}: {output[-500:] or '(no output)'}"
            if self._ping():
                return ""
            time.sleep(0.02)
        self._terminate()
        return f"no PONG on 127.0.0.1:{self.port} within {self._timeout:g} s"

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                request = _command("PING")
                if self._password:
                    request = _command("AUTH", self._password) + request
                conn.sendall(request)
                reply = b""
                while b"PONG" not in reply and not reply.startswith(b"-"):
                    chunk = conn.recv(256)
                    if not chunk:
                        return False
                    reply += chunk
                return b"+PONG" in reply
        except OSError:
            return False

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    def stop(self) -> None:
        self._terminate()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


@contextlib.contextmanager
def redis_server(*, appendonly: bool = False, password: str | None = None) -> Iterator[RedisServer]:
    """Start a server, yield it, stop it."""
    server = RedisServer(appendonly=appendonly, password=password).start()
    try:
        yield server
    finally:
        server.stop()
