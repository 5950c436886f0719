"""ActionLog: keeps every portfolio-rule firing, counts by rule, logs each once."""

from __future__ import annotations

import logging

import pytest
from tests.risk._build import BTC

from tradestack.risk import ActionLog, RiskAction, RiskActionKind


def test_counts_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    log = ActionLog()
    with caplog.at_level(logging.WARNING, logger="tradestack.risk"):
        log.record(RiskAction(1, RiskActionKind.FLATTEN, "stop_loss", BTC, "down 5%"))
        log.record(RiskAction(2, RiskActionKind.FLATTEN_ALL, "drawdown_breaker", None, "dd", True))
    assert log.counts() == {"stop_loss": 1, "drawdown_breaker": 1}
    assert [a.kind for a in log] == [RiskActionKind.FLATTEN, RiskActionKind.FLATTEN_ALL]
    assert [r.getMessage() for r in caplog.records] == [
        "risk action flatten BTC/USDT@sim [stop_loss]: down 5%",
        "risk action flatten_all + halt [drawdown_breaker]: dd",
    ]
