"""``tradestack kill-switch``: show and set the kill switch a running engine watches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tradestack.cli import EXIT_INPUT, EXIT_OK, main
from tradestack.risk import KillSwitch, KillSwitchState


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["kill-switch", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_without_a_state_file_is_active(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ks.json"
    assert run(capsys, "status", "--state", str(path)) == (
        EXIT_OK,
        f"kill switch: active (no state file at {path})\n",
        "",
    )
    assert not path.exists()


def test_halt_reduce_resume_and_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "state" / "ks.json"
    code, out, err = run(capsys, "halt", "--state", str(path), "--reason", "venue outage")
    assert (code, err) == (EXIT_OK, "")
    assert out == f"kill switch: active -> halted: venue outage ({path})\n"
    record = json.loads(path.read_text())
    assert record["state"] == "halted" and record["reason"] == "venue outage"
    assert record["changed_by"] == "cli" and record["ts_ns"] > 0

    code, out, _ = run(capsys, "status", "--state", str(path))
    assert code == EXIT_OK
    assert out.startswith(f"kill switch: halted since {record['ts']} by cli: venue outage")

    code, out, _ = run(capsys, "halt", "--state", str(path), "--reason", "again")
    assert out == f"kill switch: already halted ({path}): venue outage\n"

    code, out, _ = run(capsys, "reduce", "--state", str(path))
    assert out == f"kill switch: halted -> reducing: reduce via tradestack kill-switch ({path})\n"
    assert KillSwitch(path).state is KillSwitchState.REDUCING

    code, out, _ = run(capsys, "resume", "--state", str(path), "--reason", "all clear")
    assert (code, out) == (EXIT_OK, f"kill switch: reducing -> active: all clear ({path})\n")
    assert KillSwitch(path).state is KillSwitchState.ACTIVE


def test_a_running_engine_sees_the_cli_halt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ks.json"
    engine_switch = KillSwitch(path)
    assert run(capsys, "halt", "--state", str(path))[0] == EXIT_OK
    assert engine_switch.refresh() is KillSwitchState.HALTED


def test_corrupt_state_file_is_one_clear_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ks.json"
    path.write_text('{"state": "paused"}')
    for action in ("status", "resume"):
        code, out, err = run(capsys, action, "--state", str(path))
        assert (code, out) == (EXIT_INPUT, "")
        assert err.startswith(f"error: kill-switch state file {path} is not a valid state record")
        assert err.count("\n") == 1
    assert path.read_text() == '{"state": "paused"}'  # left for a person to look at


def test_state_path_that_is_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "halt", "--state", str(tmp_path)) == (
        EXIT_INPUT,
        "",
        f"error: --state {tmp_path}: is a folder, not a state file\n",
    )


@pytest.mark.parametrize(
    "argv", [["kill-switch", "pause", "--state", "x.json"], ["kill-switch", "halt"]]
)
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == EXIT_INPUT
    assert "kill-switch" in capsys.readouterr().err
