"""The kill switch: ACTIVE / REDUCING / HALTED, persisted across restarts, settable by a file.

State file (``state_path``): JSON ``{"state", "reason", "ts_ns", "ts", "changed_by"}``, rewritten
atomically (temporary file + ``os.replace``) on every change and read on construction, so a halt
survives a restart. Another process (``tradestack kill-switch halt --state PATH``) may rewrite it;
:meth:`KillSwitch.refresh` picks that up. A state file that cannot be read as such a record is an
error naming the file at construction (never a silent ACTIVE); if it goes bad while running, the
switch is HALTED until a valid record appears (fail safe).

Flag file (``flag_path``): its content, ``halt``/``halted``, ``reduce``/``reducing`` or
``resume``/``active`` (case-insensitive, surrounding blanks ignored), sets the state each time the
file appears or is written again; the new state is persisted like any other change. Anything
else is logged once as an error and treated as HALTED. Deleting the flag changes nothing. At
start-up an existing flag only ever tightens the persisted state: a stale ``resume`` left behind
never undoes a halt recorded before the restart.

:meth:`KillSwitch.refresh` is cheap enough for every order: one ``stat`` per file, and a read only
when its (mtime, size, inode) changed or was written within the last two seconds (a rewrite inside
the file system's timestamp granularity keeps the same mtime; the same trick as git's "racy"
index entries).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import msgspec

__all__ = ["KillSwitch", "KillSwitchState", "KillSwitchStateError", "parse_flag"]

logger = logging.getLogger("tradestack.risk")

_RACY_NS = 2_000_000_000


class KillSwitchState(StrEnum):
    """ACTIVE: trade normally. REDUCING: only orders that shrink a position. HALTED: nothing but
    the risk layer's own flatten orders."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {KillSwitchState.ACTIVE: 0, KillSwitchState.REDUCING: 1, KillSwitchState.HALTED: 2}

_FLAG_WORDS = {
    "halt": KillSwitchState.HALTED,
    "halted": KillSwitchState.HALTED,
    "reduce": KillSwitchState.REDUCING,
    "reducing": KillSwitchState.REDUCING,
    "resume": KillSwitchState.ACTIVE,
    "active": KillSwitchState.ACTIVE,
}


class KillSwitchStateError(ValueError):
    """The kill-switch state file exists but is not a valid state record."""


class _StateRecord(msgspec.Struct, frozen=True):
    state: KillSwitchState
    reason: str = ""
    ts_ns: int = 0
    ts: str = ""
    changed_by: str = ""


def parse_flag(text: str) -> KillSwitchState | None:
    """The state a flag file's content names, or None when it names none."""
    return _FLAG_WORDS.get(text.strip().lower())


class _WatchedFile:
    """Tells cheaply whether a small file changed since the last look. ``content`` is None while
    the file is missing or unreadable; ``error`` says why it could not be read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.content: bytes | None = None
        self.error: str | None = None
        self._signature: tuple[int, int, int] | None = None

    def poll(self) -> bool:
        """True when the file was written (new mtime, size or inode), its content changed, it
        appeared or disappeared, or it became (un)readable since the last poll."""
        try:
            st = os.stat(self.path)
            signature = (st.st_mtime_ns, st.st_size, st.st_ino)
            if (
                signature == self._signature
                and self.error is None
                and time.time_ns() - st.st_mtime_ns > _RACY_NS
            ):
                return False
            data = self.path.read_bytes()
        except FileNotFoundError:
            return self._update(None, None, None)
        except OSError as exc:
            return self._update(None, None, str(exc.strerror or exc))
        return self._update(signature, data, None)

    def _update(
        self, signature: tuple[int, int, int] | None, data: bytes | None, error: str | None
    ) -> bool:
        changed = signature != self._signature or data != self.content or error != self.error
        self._signature, self.content, self.error = signature, data, error
        return changed

    def wrote(self, data: bytes) -> None:
        """Remember our own write so the next poll does not treat it as news."""
        try:
            st = os.stat(self.path)
        except OSError:
            self._update(None, data, None)
            return
        self._update((st.st_mtime_ns, st.st_size, st.st_ino), data, None)


class KillSwitch:
    """The trading kill switch, shared by every risk check of a process.

    Without paths it lives in memory only (backtests). :meth:`halt`, :meth:`reduce` and
    :meth:`resume` change the state; a change to the state it already has is a no-op that keeps
    the first reason. ``clock`` gives the wall time stamped on changes (nanoseconds).
    """

    def __init__(
        self,
        state_path: Path | None = None,
        flag_path: Path | None = None,
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.state_path = state_path
        self.flag_path = flag_path
        self._clock = clock
        self._state = KillSwitchState.ACTIVE
        self._reason = ""
        self._ts_ns = 0
        self._changed_by = ""
        self._state_file = _WatchedFile(state_path) if state_path is not None else None
        self._flag_file = _WatchedFile(flag_path) if flag_path is not None else None
        if self._state_file is not None and self._state_file.poll():
            self._adopt(self._read_record(self._state_file), at_start=True)
        if self._flag_file is not None and self._flag_file.poll():
            state, reason = self._flag_state(self._flag_file)
            if state.severity > self._state.severity:
                self._set(state, reason, changed_by=f"flag:{self.flag_path}")

    # -- reading ----------------------------------------------------------------------------
    @property
    def state(self) -> KillSwitchState:
        """The current state (as of the last :meth:`refresh` or change)."""
        return self._state

    @property
    def reason(self) -> str:
        return self._reason

    @property
    def changed_by(self) -> str:
        return self._changed_by

    @property
    def changed_ts_ns(self) -> int:
        return self._ts_ns

    @property
    def halted(self) -> bool:
        return self._state is KillSwitchState.HALTED

    def snapshot(self) -> dict[str, object]:
        """The state record, as persisted."""
        return {
            "state": self._state.value,
            "reason": self._reason,
            "ts_ns": self._ts_ns,
            "ts": _iso(self._ts_ns),
            "changed_by": self._changed_by,
        }

    def refresh(self) -> KillSwitchState:
        """Pick up a state file rewritten by another process and a new or changed flag file;
        returns the state. Called by the pre-trade checks on every order."""
        if self._state_file is not None and self._state_file.poll():
            try:
                self._adopt(self._read_record(self._state_file))
            except KillSwitchStateError as exc:
                logger.error("%s; trading is HALTED until it is fixed", exc)
                self._state, self._reason = KillSwitchState.HALTED, str(exc)
                self._ts_ns, self._changed_by = self._clock(), "risk:fail-safe"
        if self._flag_file is not None and self._flag_file.poll():
            state, reason = self._flag_state(self._flag_file)
            self._set(state, reason, changed_by=f"flag:{self.flag_path}")
        return self._state

    # -- changing ---------------------------------------------------------------------------
    def halt(self, reason: str, *, changed_by: str = "operator", ts_ns: int | None = None) -> bool:
        """Stop all trading except risk flatten orders; True if the state changed."""
        return self._set(KillSwitchState.HALTED, reason, changed_by=changed_by, ts_ns=ts_ns)

    def reduce(
        self, reason: str, *, changed_by: str = "operator", ts_ns: int | None = None
    ) -> bool:
        """Allow only orders that shrink a position; True if the state changed."""
        return self._set(KillSwitchState.REDUCING, reason, changed_by=changed_by, ts_ns=ts_ns)

    def resume(
        self, reason: str, *, changed_by: str = "operator", ts_ns: int | None = None
    ) -> bool:
        """Trade normally again; True if the state changed."""
        return self._set(KillSwitchState.ACTIVE, reason, changed_by=changed_by, ts_ns=ts_ns)

    # -- internals --------------------------------------------------------------------------
    def _set(
        self,
        state: KillSwitchState,
        reason: str,
        *,
        changed_by: str,
        ts_ns: int | None = None,
    ) -> bool:
        if state is self._state:
            return False
        previous = self._state
        self._state, self._reason = state, reason
        self._ts_ns = self._clock() if ts_ns is None else ts_ns
        self._changed_by = changed_by
        self._persist()
        log = logger.warning if state is not KillSwitchState.ACTIVE else logger.info
        log("kill switch %s -> %s by %s: %s", previous.value, state.value, changed_by, reason)
        return True

    def _adopt(self, record: _StateRecord, *, at_start: bool = False) -> None:
        if record.state is not self._state:
            log = logger.info if at_start else logger.warning
            log(
                "kill switch %s -> %s from %s (by %s): %s",
                self._state.value,
                record.state.value,
                self.state_path,
                record.changed_by or "?",
                record.reason,
            )
        self._state, self._reason = record.state, record.reason
        self._ts_ns, self._changed_by = record.ts_ns, record.changed_by

    def _read_record(self, watched: _WatchedFile) -> _StateRecord:
        if watched.error is not None:
            raise KillSwitchStateError(
                f"kill-switch state file {watched.path} cannot be read: {watched.error}"
            )
        data = watched.content
        if data is None:  # deleted: keep what we have
            return _StateRecord(self._state, self._reason, self._ts_ns, "", self._changed_by)
        try:
            return msgspec.json.decode(data, type=_StateRecord)
        except msgspec.DecodeError as exc:
            raise KillSwitchStateError(
                f"kill-switch state file {watched.path} is not a valid state record ({exc}); "
                "fix or delete it, or write one with `tradestack kill-switch`"
            ) from None

    def _flag_state(self, watched: _WatchedFile) -> tuple[KillSwitchState, str]:
        if watched.error is not None:
            logger.error(
                "kill-switch flag %s cannot be read (%s): treated as HALTED",
                watched.path,
                watched.error,
            )
            return KillSwitchState.HALTED, f"kill-switch flag {watched.path}: {watched.error}"
        if watched.content is None:  # deleted: nothing to apply
            return self._state, self._reason
        text = watched.content.decode("utf-8", errors="replace")
        state = parse_flag(text)
        if state is None:
            logger.error(
                "kill-switch flag %s says %r, not one of halt, reduce, resume: treated as HALTED",
                watched.path,
                text.strip()[:80],
            )
            return KillSwitchState.HALTED, f"invalid kill-switch flag {watched.path}: {text!r}"
        return state, f"flag {watched.path}: {text.strip()}"

    def _persist(self) -> None:
        if self._state_file is None or self.state_path is None:
            return
        data = msgspec.json.encode(self.snapshot()) + b"\n"
        write_atomic(self.state_path, data)
        self._state_file.wrote(data)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader sees the old or the new content, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _iso(ts_ns: int) -> str:
    if not ts_ns:
        return ""
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).isoformat(timespec="milliseconds")
