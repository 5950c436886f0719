"""Order state machine: properties over random event sequences plus a few worked examples."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradestack.core.ids import InstrumentId
from tradestack.core.orders import (
    TRANSITIONS,
    Fill,
    IllegalOrderTransition,
    InvalidOrder,
    Liquidity,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderRejected,
    OrderSide,
    OrderStatus,
    OrderSubmitted,
    OrderType,
    TimeInForce,
)

PROPS = settings(max_examples=200, deadline=None, derandomize=True)

INST = InstrumentId("X")
OTHER = InstrumentId("Y")
COID = "o-1"


def _order(qty: Decimal = Decimal(10), side: OrderSide = OrderSide.BUY) -> Order:
    return Order(COID, INST, side, qty)


def _fill(
    qty: Decimal,
    *,
    side: OrderSide = OrderSide.BUY,
    price: Decimal = Decimal("100"),
    inst: InstrumentId = INST,
    coid: str = COID,
) -> Fill:
    return Fill(coid, inst, side, qty, price, Decimal(0), Liquidity.TAKER, 0)


@dataclass(frozen=True)
class Step:
    """One generated event: a lifecycle event, or a fill of some qty (maybe wrong side/inst/id)."""

    kind: str
    qty: Decimal = Decimal(0)
    wrong: str = ""


_LIFECYCLE = ("submitted", "accepted", "rejected", "canceled", "expired")

steps = st.one_of(
    st.builds(Step, st.sampled_from(_LIFECYCLE)),
    st.builds(
        Step,
        st.just("fill"),
        st.integers(-1, 12).map(Decimal),
        st.sampled_from(["", "", "", "", "side", "instrument", "id"]),
    ),
)


def _event(step: Step, order: Order) -> OrderEvent:
    coid = "other" if step.wrong == "id" else COID
    if step.kind == "submitted":
        return OrderSubmitted(coid, 1)
    if step.kind == "accepted":
        return OrderAccepted(coid, 1, "v-1")
    if step.kind == "rejected":
        return OrderRejected(coid, 1, "no")
    if step.kind == "canceled":
        return OrderCanceled(coid, 1)
    if step.kind == "expired":
        return OrderExpired(coid, 1)
    side = order.side
    if step.wrong == "side":
        side = OrderSide.SELL if side is OrderSide.BUY else OrderSide.BUY
    inst = OTHER if step.wrong == "instrument" else INST
    return _fill(step.qty, side=side, inst=inst, coid=coid, price=Decimal(100) + step.qty)


_TARGET = {
    "submitted": OrderStatus.SUBMITTED,
    "accepted": OrderStatus.ACCEPTED,
    "rejected": OrderStatus.REJECTED,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
}


def _expected_target(step: Step, status: OrderStatus, leaves: Decimal) -> OrderStatus | None:
    """Independent model of the state machine: the next status, or None when illegal."""
    if step.wrong == "id":
        return None
    if step.kind == "fill":
        if step.wrong or step.qty <= 0 or step.qty > leaves:
            return None
        target = OrderStatus.FILLED if step.qty == leaves else OrderStatus.PARTIALLY_FILLED
    else:
        target = _TARGET[step.kind]
    return target if target in TRANSITIONS[status] else None


def _reachable() -> set[OrderStatus]:
    seen = {OrderStatus.INITIALIZED}
    frontier = [OrderStatus.INITIALIZED]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return seen


REACHABLE = _reachable()


@PROPS
@given(qty=st.integers(1, 10).map(Decimal), seq=st.lists(steps, max_size=25))
def test_random_event_sequences_follow_the_transition_table(qty: Decimal, seq: list[Step]) -> None:
    order = _order(qty)
    path = [order.status]
    for step in seq:
        event = _event(step, order)
        before = (order.status, order.filled_qty, order.avg_fill_price, list(order.events))
        expected = _expected_target(step, order.status, order.leaves_qty)
        if expected is None:
            with pytest.raises(IllegalOrderTransition):
                order.apply(event)
            # an illegal step leaves the order exactly as it was
            after = (order.status, order.filled_qty, order.avg_fill_price, list(order.events))
            assert after == before
            continue
        order.apply(event)
        assert order.status is expected
        assert expected in TRANSITIONS[path[-1]]
        path.append(expected)
        assert order.events[-1] is event
        assert len(order.events) == len(path) - 1
        assert Decimal(0) <= order.filled_qty <= order.qty
        assert order.leaves_qty == order.qty - order.filled_qty
        assert (order.status is OrderStatus.FILLED) == (order.filled_qty == order.qty)
        assert order.is_open == (order.status.is_open)
    assert order.status in REACHABLE
    fills = [e for e in order.events if isinstance(e, Fill)]
    assert sum((f.qty for f in fills), Decimal(0)) == order.filled_qty
    if fills:
        vwap = sum((f.qty * f.price for f in fills), Decimal(0)) / order.filled_qty
        assert order.avg_fill_price == vwap


@PROPS
@given(
    terminal=st.sampled_from(
        [OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED]
    ),
    step=steps,
)
def test_terminal_statuses_accept_nothing(terminal: OrderStatus, step: Step) -> None:
    order = _order(Decimal(5))
    order.apply(OrderSubmitted(COID, 0))
    if terminal is OrderStatus.FILLED:
        order.apply(_fill(Decimal(5)))
    else:
        order.apply(
            {
                OrderStatus.CANCELED: OrderCanceled(COID, 0),
                OrderStatus.REJECTED: OrderRejected(COID, 0, "x"),
                OrderStatus.EXPIRED: OrderExpired(COID, 0),
            }[terminal]
        )
    assert order.status is terminal
    assert terminal.is_terminal and not order.is_open
    events = list(order.events)
    with pytest.raises(IllegalOrderTransition):
        order.apply(_event(step, order))
    assert order.status is terminal
    assert order.events == events


def test_transition_table_shape() -> None:
    assert set(TRANSITIONS) == set(OrderStatus)
    for status, targets in TRANSITIONS.items():
        assert (not targets) == status.is_terminal
    assert set(OrderStatus) == REACHABLE


def test_partial_fills_then_fill_track_vwap() -> None:
    order = _order(Decimal(10))
    order.apply(OrderSubmitted(COID, 0))
    order.apply(OrderAccepted(COID, 0, "v-9"))
    assert order.venue_order_id == "v-9"
    order.apply(_fill(Decimal(4), price=Decimal("100")))
    assert order.status is OrderStatus.PARTIALLY_FILLED
    order.apply(_fill(Decimal(6), price=Decimal("105")))
    assert order.status is OrderStatus.FILLED
    assert order.filled_qty == Decimal(10)
    assert order.avg_fill_price == Decimal("103")  # (400 + 630) / 10
    assert order.leaves_qty == 0


def test_overfill_is_refused_without_side_effects() -> None:
    order = _order(Decimal(3))
    order.apply(OrderSubmitted(COID, 0))
    order.apply(_fill(Decimal(2)))
    with pytest.raises(IllegalOrderTransition, match="exceeds leaves"):
        order.apply(_fill(Decimal(2)))
    assert order.filled_qty == Decimal(2)
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert len(order.events) == 2


def test_fill_before_submission_is_illegal() -> None:
    order = _order(Decimal(3))
    with pytest.raises(IllegalOrderTransition):
        order.apply(_fill(Decimal(3)))
    assert order.status is OrderStatus.INITIALIZED
    assert order.filled_qty == 0
    assert order.events == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"qty": Decimal(0)}, "qty must be a positive"),
        ({"qty": Decimal(-1)}, "qty must be a positive"),
        ({"qty": Decimal("NaN")}, "qty must be a positive"),
        ({"order_type": OrderType.LIMIT}, "needs a price"),
        ({"price": Decimal(1)}, "must not have a price"),
        ({"order_type": OrderType.STOP}, "needs a trigger_price"),
        ({"order_type": OrderType.STOP_LIMIT, "price": Decimal(1)}, "needs a trigger_price"),
        ({"order_type": OrderType.LIMIT, "price": Decimal(0)}, "price must be positive"),
        ({"post_only": True}, "post_only needs a resting limit"),
        (
            {
                "order_type": OrderType.LIMIT,
                "price": Decimal(1),
                "post_only": True,
                "time_in_force": TimeInForce.IOC,
            },
            "post_only needs a resting limit",
        ),
    ],
)
def test_invalid_orders_are_refused(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"qty": Decimal(1), **kwargs}
    qty = args.pop("qty")
    with pytest.raises(InvalidOrder, match=match):
        Order(COID, INST, OrderSide.BUY, qty, **args)  # type: ignore[arg-type]
