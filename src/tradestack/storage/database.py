"""Opening a state database: engine, SQLite durability settings, migrations, mode check."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tradestack.storage.schema import meta

Mode = Literal["paper", "live", "test"]
MODES: tuple[str, ...] = ("paper", "live", "test")


class DatabaseModeError(RuntimeError):
    """The database holds another mode's state (paper state on a live database, or the other
    way round)."""


def database_url(target: str | Path) -> str:
    """A SQLAlchemy URL for ``target``: a URL as given, a file path as SQLite."""
    text = str(target)
    if "://" in text:
        try:
            make_url(text)
        except (ArgumentError, ValueError) as exc:
            raise ValueError(f"database URL {text!r} is not valid: {exc}") from exc
        return text
    path = Path(text).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _sqlite_durability(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "tradestack.storage:migrations")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_database(target: str | Path, mode: Mode) -> Engine:
    """Open (creating and migrating as needed) the state database at ``target`` for ``mode``.

    SQLite runs in WAL mode with ``synchronous=FULL``, so a committed row survives a crash of
    the process or the machine. A database remembers the mode it was created for; opening it for
    another mode raises :class:`DatabaseModeError` (paper and live state never mix).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    url = database_url(target)
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_durability)
    migrate(engine)
    with engine.begin() as connection:
        stored = connection.execute(select(meta.c.value).where(meta.c.key == "mode")).scalar()
        if stored is None:
            connection.execute(meta.insert().values(key="mode", value=mode))
        elif stored != mode:
            engine.dispose()
            raise DatabaseModeError(
                f"{engine.url.render_as_string(hide_password=True)} holds {stored} state; "
                f"{mode} mode refuses to start on it (use a separate database per mode)"
            )
    return engine
