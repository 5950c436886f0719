"""Kill switch: persisted across restarts, driven by a flag file, fail safe on bad input."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tradestack.risk import KillSwitch, KillSwitchState, KillSwitchStateError, parse_flag

ACTIVE, REDUCING, HALTED = KillSwitchState.ACTIVE, KillSwitchState.REDUCING, KillSwitchState.HALTED


def test_starts_active_in_memory() -> None:
    switch = KillSwitch()
    assert switch.state is ACTIVE
    assert switch.refresh() is ACTIVE
    assert switch.halt("stop", ts_ns=5) is True
    assert switch.state is HALTED and switch.reason == "stop" and switch.changed_ts_ns == 5


def test_halted_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "risk" / "kill_switch.json"
    KillSwitch(path).halt("breaker tripped", changed_by="risk:test", ts_ns=1_700_000_000 * 10**9)
    record = json.loads(path.read_text())
    assert record == {
        "state": "halted",
        "reason": "breaker tripped",
        "ts_ns": 1_700_000_000 * 10**9,
        "ts": "2023-11-14T22:13:20.000+00:00",
        "changed_by": "risk:test",
    }
    restarted = KillSwitch(path)
    assert restarted.state is HALTED
    assert restarted.reason == "breaker tripped" and restarted.changed_by == "risk:test"


def test_reducing_survives_a_restart_and_resume_is_persisted(tmp_path: Path) -> None:
    path = tmp_path / "ks.json"
    KillSwitch(path).reduce("de-risk")
    switch = KillSwitch(path)
    assert switch.state is REDUCING
    switch.resume("all clear")
    assert KillSwitch(path).state is ACTIVE
    assert [p.name for p in tmp_path.iterdir()] == ["ks.json"]  # no temporary file left behind


def test_setting_the_same_state_keeps_the_first_reason(tmp_path: Path) -> None:
    path = tmp_path / "ks.json"
    switch = KillSwitch(path)
    assert switch.halt("first") is True
    assert switch.halt("second") is False
    assert KillSwitch(path).reason == "first"


@pytest.mark.parametrize(
    "content",
    ["not json", "", "[]", '{"state": "paused", "reason": "x"}', '{"reason": "no state"}'],
)
def test_corrupt_state_file_raises_naming_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "ks.json"
    path.write_text(content)
    with pytest.raises(KillSwitchStateError, match=f"kill-switch state file {path}"):
        KillSwitch(path)
    assert issubclass(KillSwitchStateError, ValueError)


def test_state_file_gone_bad_while_running_halts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ks.json"
    switch = KillSwitch(path)
    switch.reduce("x")
    path.write_text("{garbage")
    with caplog.at_level(logging.ERROR, logger="tradestack.risk"):
        assert switch.refresh() is HALTED
        assert switch.refresh() is HALTED
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1
    assert str(path) in switch.reason


def test_another_process_writing_the_state_file_is_picked_up(tmp_path: Path) -> None:
    path = tmp_path / "ks.json"
    engine = KillSwitch(path)
    KillSwitch(path).halt("from the command line", changed_by="cli")
    assert engine.state is ACTIVE  # not until the next refresh
    assert engine.refresh() is HALTED
    assert engine.changed_by == "cli"


@pytest.mark.parametrize(
    ("content", "state"),
    [
        ("halt", HALTED),
        ("HALTED\n", HALTED),
        ("  Reduce ", REDUCING),
        ("reducing", REDUCING),
        ("resume", ACTIVE),
        ("Active", ACTIVE),
    ],
)
def test_flag_words(content: str, state: KillSwitchState) -> None:
    assert parse_flag(content) is state


def test_flag_sets_the_state_and_persists_it(tmp_path: Path) -> None:
    state, flag = tmp_path / "ks.json", tmp_path / "KILL"
    switch = KillSwitch(state, flag)
    flag.write_text("reduce")
    assert switch.refresh() is REDUCING
    assert switch.changed_by == f"flag:{flag}"
    assert KillSwitch(state).state is REDUCING
    flag.write_text("halt")
    assert switch.refresh() is HALTED
    flag.write_text("resume")
    assert switch.refresh() is ACTIVE


def test_flag_rewritten_after_an_api_resume_halts_again(tmp_path: Path) -> None:
    flag = tmp_path / "KILL"
    flag.write_text("halt")
    switch = KillSwitch(flag_path=flag)
    assert switch.state is HALTED
    switch.resume("checked, all fine")
    assert switch.refresh() is ACTIVE  # the same flag, not written again: no new event
    flag.unlink()
    assert switch.refresh() is ACTIVE  # deleting the flag changes nothing
    flag.write_text("halt")
    assert switch.refresh() is HALTED


def test_invalid_flag_is_logged_once_and_halts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flag = tmp_path / "KILL"
    switch = KillSwitch(flag_path=flag)
    flag.write_text("pause please")
    with caplog.at_level(logging.ERROR, logger="tradestack.risk"):
        for _ in range(3):
            assert switch.refresh() is HALTED
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        f"kill-switch flag {flag} says 'pause please', not one of halt, reduce, resume: "
        "treated as HALTED"
    ]


def test_flag_at_start_up_only_tightens(tmp_path: Path) -> None:
    state, flag = tmp_path / "ks.json", tmp_path / "KILL"
    KillSwitch(state).halt("breaker")
    flag.write_text("resume")  # stale: must not undo the halt
    assert KillSwitch(state, flag).state is HALTED
    KillSwitch(state).resume("ok")  # the persisted state is ACTIVE now
    flag.write_text("reduce")
    assert KillSwitch(state, flag).state is REDUCING


def test_unreadable_flag_halts_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flag = tmp_path / "KILL"
    switch = KillSwitch(flag_path=flag)
    flag.mkdir()  # exists, cannot be read as a file
    with caplog.at_level(logging.ERROR, logger="tradestack.risk"):
        assert switch.refresh() is HALTED
        assert switch.refresh() is HALTED
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1


def test_unreadable_state_file_raises_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "ks.json"
    path.mkdir()
    with pytest.raises(KillSwitchStateError, match=f"kill-switch state file {path} cannot be read"):
        KillSwitch(path)
