"""The state store on SQLite and on a real PostgreSQL: migrations, mode separation, intents,
events, fills once per trade id, positions, and a hypothesis state machine over order events
with duplicates, reordering and replays."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradestack.core.ids import InstrumentId, client_order_id
from tradestack.core.orders import (
    TRANSITIONS,
    Fill,
    Liquidity,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    OrderSide,
    OrderStatus,
    OrderSubmitted,
    OrderType,
)
from tradestack.storage import DatabaseModeError, StateStore, open_database
from tradestack.storage.schema import metadata
from tradestack.storage.state import ANSWERED, PENDING, SENT, UNKNOWN, UnknownOrder

BTC = InstrumentId("BTC/USDT", "binance")
ETH = InstrumentId("ETH/USDT", "binance")


def _store(target: str) -> StateStore:
    return StateStore(open_database(target, "test"))


def _order(seq: int, side: OrderSide = OrderSide.BUY, qty: str = "0.5", inst=BTC) -> Order:
    coid = client_order_id("s1", inst, "target", seq)
    return Order(
        coid, inst, side, Decimal(qty), OrderType.LIMIT, price=Decimal("60000.1"), ts_init_ns=seq
    )


def _fill(order: Order, qty: str, price: str, ts: int, fee: str = "0.01") -> Fill:
    return Fill(
        order.client_order_id,
        order.instrument_id,
        order.side,
        Decimal(qty),
        Decimal(price),
        Decimal(fee),
        Liquidity.TAKER,
        ts,
    )


def test_migrations_create_exactly_the_schema(db_target: Callable[[], str]) -> None:
    engine = open_database(db_target(), "test")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    open_database(str(engine.url.render_as_string(hide_password=False)), "test")  # idempotent


def test_sqlite_runs_in_wal_with_full_sync(tmp_path: Path) -> None:
    engine = open_database(tmp_path / "s.db", "paper")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_paper_and_live_state_never_share_a_database(db_target: Callable[[], str]) -> None:
    target = db_target()
    open_database(target, "live").dispose()
    with pytest.raises(DatabaseModeError, match="holds live state; paper mode refuses"):
        open_database(target, "paper")
    other = db_target()
    open_database(other, "paper").dispose()
    with pytest.raises(DatabaseModeError, match="holds paper state; live mode refuses"):
        open_database(other, "live")
    with pytest.raises(ValueError, match="mode must be one of"):
        open_database(db_target(), "backtest")  # type: ignore[arg-type]


def test_bad_url_is_named() -> None:
    with pytest.raises(ValueError, match="not valid"):
        open_database("postgresql+psycopg://user@host:notaport/x", "test")


def test_sequences_are_durable_and_unique(db_target: Callable[[], str]) -> None:
    target = db_target()
    store = _store(target)
    assert [store.next_sequence("s1") for _ in range(3)] == [1, 2, 3]
    assert store.next_sequence("s2") == 1
    store.engine.dispose()
    assert _store(target).next_sequence("s1") == 4  # after a restart


def test_intent_is_committed_before_the_request_and_a_retry_reuses_it(
    db_target: Callable[[], str],
) -> None:
    target = db_target()
    store = _store(target)
    order = _order(1)
    assert store.record_intent(order, strategy="s1", sequence=1, intent="target")
    row = store.order(order.client_order_id)
    assert row is not None and row.status is OrderStatus.INITIALIZED
    assert row.submit_state == PENDING and row.price == Decimal("60000.1")
    # a second process (a restart) sees the committed row and the same id is not stored twice
    again = _store(target)
    assert not again.record_intent(order, strategy="s1", sequence=1, intent="target")
    assert len(again.orders()) == 1
    again.set_submit_state(order.client_order_id, SENT, 5)
    again.set_submit_state(order.client_order_id, UNKNOWN, 6)
    assert [r.client_order_id for r in again.orders_in(UNKNOWN)] == [order.client_order_id]
    with pytest.raises(ValueError, match="submit state must be"):
        again.set_submit_state(order.client_order_id, "lost", 7)
    with pytest.raises(UnknownOrder):
        again.set_submit_state("nope", SENT, 7)
    assert again.order("nope") is None
    rebuilt = row.to_order()
    assert (rebuilt.client_order_id, rebuilt.qty, rebuilt.price) == (
        order.client_order_id,
        order.qty,
        order.price,
    )


def test_fills_apply_once_per_trade_id_and_move_order_and_position(
    db_target: Callable[[], str],
) -> None:
    store = _store(db_target())
    buy, sell = _order(1, qty="1.0"), _order(2, OrderSide.SELL, qty="0.4")
    for seq, o in ((1, buy), (2, sell)):
        store.record_intent(o, strategy="s1", sequence=seq, intent="target")
    store.apply_event(OrderSubmitted(buy.client_order_id, 1))
    assert store.apply_event(OrderAccepted(buy.client_order_id, 2, "V1"))
    assert store.record_fill(
        _fill(buy, "0.3", "100", 3), venue="b", trade_id="t1", fee_currency="USDT"
    )
    assert not store.record_fill(
        _fill(buy, "0.3", "100", 3), venue="b", trade_id="t1", fee_currency="USDT"
    )
    assert store.record_fill(
        _fill(buy, "0.7", "110", 4), venue="b", trade_id="t2", fee_currency="USDT"
    )
    row = store.order(buy.client_order_id)
    assert row is not None
    assert (row.status, row.filled_qty, row.venue_order_id) == (
        OrderStatus.FILLED,
        Decimal("1.0"),
        "V1",
    )
    assert row.avg_fill_price == Decimal("107")
    store.record_fill(_fill(sell, "0.4", "120", 5), venue="b", trade_id="t3", fee_currency="USDT")
    pos = store.positions()[BTC]
    assert pos.qty == Decimal("0.6")
    assert pos.realized_pnl == Decimal("0.4") * (Decimal("120") - Decimal("107"))
    assert pos.fees == Decimal("0.03")
    assert pos.avg_price == Decimal("107")
    assert [f.trade_id for f in store.fills()] == ["t1", "t2", "t3"]
    assert [f.trade_id for f in store.fills(buy.client_order_id)] == ["t1", "t2"]
    kinds = [k for k, _ in store.events(buy.client_order_id)]
    assert kinds == ["submitted", "accepted", "fill", "fill"]


def test_a_fee_taken_in_the_traded_asset_moves_the_position_by_the_rest(
    db_target: Callable[[], str],
) -> None:
    """Binance takes a spot buyer's fee in BTC: 1 BTC bought, 0.001 BTC kept as the fee: the
    account holds 0.999; the fee stays valued in quote and the order is filled by the 1."""
    store = _store(db_target())
    buy, sell = _order(1, qty="1"), _order(2, OrderSide.SELL, qty="0.5")
    for seq, o in ((1, buy), (2, sell)):
        store.record_intent(o, strategy="s1", sequence=seq, intent="target")
    fee = Decimal("0.001") * 100
    assert store.record_fill(
        _fill(buy, "1", "100", 3, fee=str(fee)),
        venue="b",
        trade_id="t1",
        fee_currency="USDT",
        base_fee=Decimal("0.001"),
    )
    row = store.order(buy.client_order_id)
    assert row is not None and (row.status, row.filled_qty) == (OrderStatus.FILLED, 1)
    pos = store.positions()[BTC]
    assert pos.qty == Decimal("0.999") and pos.fees == fee
    assert pos.cost_basis + pos.fees == Decimal("100")  # the 100 USDT paid, all accounted
    (stored,) = store.fills()
    assert stored.fill.qty == 1 and stored.fill.fee == fee
    store.record_fill(
        _fill(sell, "0.5", "100", 4, fee="0"),
        venue="b",
        trade_id="t2",
        fee_currency="USDT",
        base_fee=Decimal("0.0005"),
    )
    assert store.positions()[BTC].qty == Decimal("0.4985")
    for bad in ("-0.1", "0.5"):
        with pytest.raises(ValueError, match="base_fee"):
            store.record_fill(
                _fill(sell, "0.5", "100", 5), venue="b", trade_id="t9", fee_currency="USDT",
                base_fee=Decimal(bad),
            )  # fmt: skip


def test_bad_fills_are_refused_and_change_nothing(db_target: Callable[[], str]) -> None:
    store = _store(db_target())
    order = _order(1, qty="1")
    store.record_intent(order, strategy="s1", sequence=1, intent="target")
    with pytest.raises(ValueError, match="overfills order"):
        store.record_fill(_fill(order, "2", "100", 1), venue="b", trade_id="x", fee_currency="USDT")
    wrong = Fill(
        order.client_order_id,
        ETH,
        OrderSide.BUY,
        Decimal(1),
        Decimal(1),
        Decimal(0),
        Liquidity.TAKER,
        1,
    )
    with pytest.raises(ValueError, match="does not match order"):
        store.record_fill(wrong, venue="b", trade_id="y", fee_currency="USDT")
    with pytest.raises(ValueError, match="no venue trade id"):
        store.record_fill(_fill(order, "1", "100", 1), venue="b", trade_id="", fee_currency="USDT")
    with pytest.raises(UnknownOrder, match="no order intent"):
        store.record_fill(
            _fill(_order(9), "1", "1", 1), venue="b", trade_id="z", fee_currency="USDT"
        )
    assert store.fills() == [] and store.positions() == {}
    row = store.order(order.client_order_id)
    assert row is not None and row.filled_qty == 0 and row.status is OrderStatus.INITIALIZED


def test_decimals_round_trip_exactly(db_target: Callable[[], str]) -> None:
    store = _store(db_target())
    order = _order(1, qty="0.00000001")
    store.record_intent(order, strategy="s1", sequence=1, intent="target")
    fill = _fill(order, "0.00000001", "12345.678901234567890123", 1, fee="0.000000000001")
    store.record_fill(fill, venue="b", trade_id="t", fee_currency="BNB")
    (stored,) = store.fills()
    assert stored.fill == msgspec.structs.replace(fill, fill_id="t")
    assert stored.fill.price == Decimal("12345.678901234567890123")
    assert stored.fee_currency == "BNB"


def test_balances_and_equity(db_target: Callable[[], str]) -> None:
    store = _store(db_target())
    store.set_balances(
        [("USDT", Decimal("1000.5"), Decimal("900")), ("BTC", Decimal("0.1"), Decimal("0.1"))], 1
    )
    assert store.balances() == {
        "BTC": (Decimal("0.1"), Decimal("0.1")),
        "USDT": (Decimal("1000.5"), Decimal("900")),
    }
    store.set_balances([("USDT", Decimal(1), Decimal(1))], 2)
    assert list(store.balances()) == ["USDT"]
    store.record_equity(1, 100.0)
    store.record_equity(2, 101.5)
    store.record_equity(2, 102.0)
    assert store.equity_curve() == [(1, 100.0), (2, 102.0)]


def test_a_committed_fill_survives_a_killed_writer(tmp_path: Path) -> None:
    """The row is on disk once record_fill returns: another connection reads it at once, and a
    reader that never saw the writer close (no checkpoint) still finds it in the WAL."""
    path = tmp_path / "s.db"
    store = _store(str(path))
    order = _order(1, qty="1")
    store.record_intent(order, strategy="s1", sequence=1, intent="target")
    store.record_fill(_fill(order, "1", "100", 1), venue="b", trade_id="t", fee_currency="USDT")
    with sqlite3.connect(path) as raw:
        assert raw.execute("select trade_id from fills").fetchall() == [("t",)]
        assert raw.execute("select qty from positions").fetchall() == [("1",)]


# -- the order event state machine -------------------------------------------------------------
_EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["submitted", "accepted", "rejected", "canceled", "fill"]),
        st.integers(0, 3),  # which trade id (fills) / a repeated event
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(_EVENTS)
def test_duplicates_reordering_and_replays_keep_a_legal_state(
    tmp_path_factory: pytest.TempPathFactory, events: list[tuple[str, int]]
) -> None:
    """Any interleaving of submits, acks, rejects, cancels and fills (four possible trade ids,
    each sent any number of times): each trade id counts once, the filled quantity is their sum,
    the status is reachable by legal transitions, and replaying the whole stream changes
    nothing."""
    store = _store(str(tmp_path_factory.mktemp("sm") / "s.db"))
    order = _order(1, qty="1.0")
    store.record_intent(order, strategy="s1", sequence=1, intent="target")
    sizes = [Decimal("0.1"), Decimal("0.2"), Decimal("0.3"), Decimal("0.4")]

    def play() -> None:
        for kind, k in events:
            coid = order.client_order_id
            if kind == "fill":
                store.record_fill(
                    _fill(order, str(sizes[k]), "100", k),
                    venue="b",
                    trade_id=f"t{k}",
                    fee_currency="USDT",
                )
            elif kind == "submitted":
                store.apply_event(OrderSubmitted(coid, k))
            elif kind == "accepted":
                store.apply_event(OrderAccepted(coid, k, "V"))
            elif kind == "rejected":
                store.apply_event(OrderRejected(coid, k, "no"))
            else:
                store.apply_event(OrderCanceled(coid, k, "user"))

    play()
    first = store.order(order.client_order_id)
    assert first is not None
    applied = {f"t{k}" for kind, k in events if kind == "fill"}
    assert {f.trade_id for f in store.fills()} == applied
    assert first.filled_qty == sum((sizes[int(t[1:])] for t in applied), Decimal(0))
    assert (
        store.positions().get(BTC, None) is None or store.positions()[BTC].qty == first.filled_qty
    )
    # the status is one the transition table can reach from INITIALIZED
    reachable, frontier = {OrderStatus.INITIALIZED}, [OrderStatus.INITIALIZED]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in reachable:
                reachable.add(nxt)
                frontier.append(nxt)
    assert first.status in reachable
    if first.filled_qty == order.qty and first.status is not OrderStatus.CANCELED:
        assert first.status is OrderStatus.FILLED
    play()  # a full replay
    second = store.order(order.client_order_id)
    assert second is not None
    assert (second.status, second.filled_qty) == (first.status, first.filled_qty)
    assert len(store.fills()) == len(applied)
    assert first.submit_state in (PENDING, ANSWERED)
