"""A real redis-server on 127.0.0.1 for the session (skipped, with the reason, only where the
binary cannot be found: ``.ci/run`` installs the Debian package redis-server when it is missing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tradestack.testing.redis_server import RedisServer, find_redis_server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if find_redis_server() is None:
        pytest.skip("redis-server not found on PATH (install the Debian package redis-server)")
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stream(request: pytest.FixtureRequest) -> str:
    """A stream name of this test's own, so tests sharing the server never see each other."""
    return f"md:{request.node.name}"
