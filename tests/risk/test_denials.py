"""DenialLog: keeps every denial, counts by rule, logs each once."""

from __future__ import annotations

import logging

import pytest
from tests.risk._build import BTC, ETH

from tradestack.risk import Denial, DenialLog


def test_counts_by_rule_and_logs_each_denial_once(caplog: pytest.LogCaptureFixture) -> None:
    log = DenialLog()
    with caplog.at_level(logging.WARNING, logger="tradestack.risk"):
        log.record(Denial(1, "price_collar", BTC, "o-1", "limit price 120 is 2000 bps from mid"))
        log.record(Denial(2, "price_collar", ETH, "o-2", "x"))
        log.record(Denial(3, "order_rate", BTC, None, "y"))
    assert log.counts() == {"price_collar": 2, "order_rate": 1}
    assert len(log) == 3 and [d.ts_ns for d in log] == [1, 2, 3]
    assert log.denials[0].client_order_id == "o-1"
    messages = [r.getMessage() for r in caplog.records if r.name == "tradestack.risk"]
    assert messages[0] == (
        "risk denied o-1 BTC/USDT@sim [price_collar]: limit price 120 is 2000 bps from mid"
    )
    assert len(messages) == 3
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_empty_log() -> None:
    assert DenialLog().counts() == {}
    assert len(DenialLog()) == 0
