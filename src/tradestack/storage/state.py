"""The state store: every order intent, order event and fill, committed before anyone acts on it.

The order manager writes an order's intent row (and so its client order id) before the request
leaves; each venue answer is an order event row; each fill is inserted once per ``(venue,
trade_id)`` and moves the order and the position in the same transaction, so a crash between two
steps leaves either both or neither. Events may arrive twice, late or out of order: a duplicate
fill changes nothing, an event the order's state machine no longer allows (an ``accepted`` after
the fill that completed the order) is kept in the event log and changes nothing else, and a fill
reported after a cancel still counts (the trade happened) while the order stays canceled. A venue
answer for an order whose ``submitted`` was not logged yet implies it (the request did leave).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import msgspec
from sqlalchemy import Connection, Engine, Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from tradestack.core.ids import InstrumentId
from tradestack.core.orders import (
    TRANSITIONS,
    Fill,
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
from tradestack.core.positions import Position
from tradestack.storage.schema import (
    balances,
    equity,
    fills,
    order_events,
    orders,
    positions,
    sequences,
)

_ZERO = Decimal(0)

#: ``submit_state`` of an order row: where its request is, independent of the venue's status.
PENDING = "pending"  # intent committed, request not known to have left
SENT = "sent"  # request left; no answer yet
UNKNOWN = "unknown"  # timeout, reset or 5xx: resolve by looking the order up at the venue
ANSWERED = "answered"  # the venue answered (accepted, rejected, or the lookup found it)
SUBMIT_STATES = (PENDING, SENT, UNKNOWN, ANSWERED)

_KIND = {
    OrderSubmitted: "submitted",
    OrderAccepted: "accepted",
    OrderRejected: "rejected",
    OrderCanceled: "canceled",
    OrderExpired: "expired",
}
_STATUS = {
    OrderSubmitted: OrderStatus.SUBMITTED,
    OrderAccepted: OrderStatus.ACCEPTED,
    OrderRejected: OrderStatus.REJECTED,
    OrderCanceled: OrderStatus.CANCELED,
    OrderExpired: OrderStatus.EXPIRED,
}


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One order as stored: the request, its venue status and where its request is."""

    client_order_id: str
    strategy: str
    sequence: int
    intent: str
    instrument_id: InstrumentId
    side: OrderSide
    order_type: OrderType
    qty: Decimal
    price: Decimal | None
    status: OrderStatus
    submit_state: str
    venue_order_id: str
    filled_qty: Decimal
    avg_fill_price: Decimal
    reason: str
    ts_init_ns: int
    ts_updated_ns: int
    time_in_force: TimeInForce = TimeInForce.GTC
    trigger_price: Decimal | None = None
    reduce_only: bool = False
    post_only: bool = False

    @property
    def leaves_qty(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return not self.status.is_terminal

    def to_order(self) -> Order:
        """The request as an :class:`Order` (status INITIALIZED), e.g. to send it again."""
        return Order(
            self.client_order_id,
            self.instrument_id,
            self.side,
            self.qty,
            self.order_type,
            price=self.price,
            trigger_price=self.trigger_price,
            time_in_force=self.time_in_force,
            reduce_only=self.reduce_only,
            post_only=self.post_only,
            ts_init_ns=self.ts_init_ns,
            tag=self.intent,
        )


@dataclass(frozen=True, slots=True)
class FillRow:
    """One stored fill with the venue's trade id."""

    venue: str
    trade_id: str
    fill: Fill
    fee_currency: str


@dataclass(frozen=True, slots=True)
class PositionRow:
    """One stored position: signed quantity, exact cost basis, realized PnL and fees."""

    instrument_id: InstrumentId
    qty: Decimal
    cost_basis: Decimal
    realized_pnl: Decimal
    fees: Decimal

    @property
    def avg_price(self) -> Decimal:
        return self.cost_basis / abs(self.qty) if self.qty else _ZERO


def _order_row(row: Row[tuple[object, ...]]) -> OrderRow:
    m = row._mapping
    return OrderRow(
        client_order_id=m["client_order_id"],
        strategy=m["strategy"],
        sequence=int(m["sequence"]),
        intent=m["intent"],
        instrument_id=InstrumentId.parse(m["instrument"]),
        side=OrderSide(m["side"]),
        order_type=OrderType(m["order_type"]),
        qty=m["qty"],
        price=m["price"],
        trigger_price=m["trigger_price"],
        time_in_force=TimeInForce(m["time_in_force"]),
        reduce_only=bool(m["reduce_only"]),
        post_only=bool(m["post_only"]),
        status=OrderStatus(m["status"]),
        submit_state=m["submit_state"],
        venue_order_id=m["venue_order_id"],
        filled_qty=m["filled_qty"],
        avg_fill_price=m["avg_fill_price"],
        reason=m["reason"],
        ts_init_ns=int(m["ts_init_ns"]),
        ts_updated_ns=int(m["ts_updated_ns"]),
    )


class UnknownOrder(KeyError):
    """An event or fill names a client order id the store has no intent for."""


class StateStore:
    """Reads and writes trading state through one SQLAlchemy engine (see the module docstring).

    Every public write is one transaction, committed when the method returns.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- order intents -------------------------------------------------------------------------
    def next_sequence(self, strategy: str) -> int:
        """The strategy's next order sequence number, durably reserved (never handed out twice,
        also across restarts)."""
        with self.engine.begin() as conn:
            last = conn.execute(
                select(sequences.c.last).where(sequences.c.strategy == strategy).with_for_update()
            ).scalar()
            if last is None:
                conn.execute(insert(sequences).values(strategy=strategy, last=1))
                return 1
            conn.execute(
                update(sequences).where(sequences.c.strategy == strategy).values(last=last + 1)
            )
            return int(last) + 1

    def record_intent(self, order: Order, *, strategy: str, sequence: int, intent: str) -> bool:
        """Commit the order's intent row (status INITIALIZED, request PENDING) before its
        request leaves. Returns False when the client order id is already stored (a retry of
        the same intent), leaving the stored row as it was."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(orders).values(
                        client_order_id=order.client_order_id,
                        strategy=strategy,
                        sequence=sequence,
                        intent=intent,
                        instrument=str(order.instrument_id),
                        side=order.side.value,
                        order_type=order.order_type.value,
                        qty=order.qty,
                        price=order.price,
                        trigger_price=order.trigger_price,
                        time_in_force=order.time_in_force.value,
                        reduce_only=order.reduce_only,
                        post_only=order.post_only,
                        status=OrderStatus.INITIALIZED.value,
                        submit_state=PENDING,
                        venue_order_id="",
                        filled_qty=_ZERO,
                        avg_fill_price=_ZERO,
                        reason="",
                        ts_init_ns=order.ts_init_ns,
                        ts_updated_ns=order.ts_init_ns,
                    )
                )
        except IntegrityError:
            if self.order(order.client_order_id) is None:
                raise
            return False
        return True

    def set_submit_state(self, client_order_id: str, state: str, ts_ns: int) -> None:
        """Record where the order's request is (``pending``/``sent``/``unknown``/``answered``)."""
        if state not in SUBMIT_STATES:
            raise ValueError(f"submit state must be one of {SUBMIT_STATES}, got {state!r}")
        with self.engine.begin() as conn:
            done = conn.execute(
                update(orders)
                .where(orders.c.client_order_id == client_order_id)
                .values(submit_state=state, ts_updated_ns=ts_ns)
            )
            if done.rowcount == 0:
                raise UnknownOrder(client_order_id)

    # -- venue answers ------------------------------------------------------------------------
    def apply_event(self, event: OrderEvent) -> bool:
        """Log a status event and move the order if its state machine allows it. Returns whether
        the status changed (a duplicate or stale event changes nothing but the log)."""
        if isinstance(event, Fill):
            raise TypeError("fills go through record_fill (they need the venue's trade id)")
        target = _STATUS[type(event)]
        with self.engine.begin() as conn:
            row = self._locked_order(conn, event.client_order_id)
            self._log(conn, event, _KIND[type(event)])
            status = row.status
            values: dict[str, object] = {"ts_updated_ns": event.ts_event_ns}
            if isinstance(event, OrderAccepted) and event.venue_order_id:
                values["venue_order_id"] = event.venue_order_id
            if not isinstance(event, OrderSubmitted):
                values["submit_state"] = ANSWERED
            if status is OrderStatus.INITIALIZED and not isinstance(event, OrderSubmitted):
                status = OrderStatus.SUBMITTED  # a venue answer: the request did leave
            changed = target in TRANSITIONS[status]
            if changed:
                values["status"] = target.value
                if isinstance(event, OrderRejected | OrderCanceled):
                    values["reason"] = event.reason
            conn.execute(
                update(orders)
                .where(orders.c.client_order_id == event.client_order_id)
                .values(**values)
            )
            return changed

    def record_fill(
        self,
        fill: Fill,
        *,
        venue: str,
        trade_id: str,
        fee_currency: str,
        base_fee: Decimal = _ZERO,
    ) -> bool:
        """Store a fill once per ``(venue, trade_id)`` and, in the same transaction, move the
        order's filled quantity and status and the position. Returns False for a fill already
        stored (nothing changes). ``base_fee``: the part of the fee taken in the traded asset;
        the position moves by the quantity less it (the fee stays valued in quote)."""
        if not trade_id:
            raise ValueError(f"fill for {fill.client_order_id} has no venue trade id")
        if base_fee < 0 or base_fee >= fill.qty:
            raise ValueError(
                f"fill {trade_id}: base_fee {base_fee} must be >= 0 and below the qty {fill.qty}"
            )
        with self.engine.begin() as conn:
            row = self._locked_order(conn, fill.client_order_id)
            seen = conn.execute(
                select(func.count())
                .select_from(fills)
                .where(fills.c.venue == venue, fills.c.trade_id == trade_id)
            ).scalar_one()
            if seen:
                return False
            if fill.side is not row.side or fill.instrument_id != row.instrument_id:
                raise ValueError(
                    f"fill {trade_id} ({fill.side.value} {fill.instrument_id}) does not match "
                    f"order {fill.client_order_id} ({row.side.value} {row.instrument_id})"
                )
            filled = row.filled_qty + fill.qty
            if filled > row.qty:
                raise ValueError(
                    f"fill {trade_id} of {fill.qty} overfills order {fill.client_order_id}: "
                    f"{row.filled_qty} of {row.qty} already filled"
                )
            conn.execute(
                insert(fills).values(
                    venue=venue,
                    trade_id=trade_id,
                    client_order_id=fill.client_order_id,
                    instrument=str(fill.instrument_id),
                    side=fill.side.value,
                    qty=fill.qty,
                    price=fill.price,
                    fee=fill.fee,
                    fee_currency=fee_currency,
                    liquidity=fill.liquidity.value,
                    ts_event_ns=fill.ts_event_ns,
                    base_fee=base_fee,
                )
            )
            self._log(conn, fill, "fill")
            status = row.status
            if not status.is_terminal or status is OrderStatus.FILLED:
                status = OrderStatus.FILLED if filled == row.qty else OrderStatus.PARTIALLY_FILLED
            avg = (row.avg_fill_price * row.filled_qty + fill.price * fill.qty) / filled
            conn.execute(
                update(orders)
                .where(orders.c.client_order_id == fill.client_order_id)
                .values(
                    filled_qty=filled,
                    avg_fill_price=avg,
                    status=status.value,
                    submit_state=ANSWERED,
                    ts_updated_ns=fill.ts_event_ns,
                )
            )
            held = fill.qty - base_fee if fill.side is OrderSide.BUY else fill.qty + base_fee
            self._apply_to_position(conn, msgspec.structs.replace(fill, qty=held))
            return True

    # -- reads --------------------------------------------------------------------------------
    def order(self, client_order_id: str) -> OrderRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(orders).where(orders.c.client_order_id == client_order_id)
            ).first()
        return None if row is None else _order_row(row)

    def orders(self, *, open_only: bool = False) -> list[OrderRow]:
        """Orders by sequence within each strategy; ``open_only`` skips terminal ones."""
        query = select(orders).order_by(orders.c.strategy, orders.c.sequence)
        if open_only:
            terminal = [s.value for s in OrderStatus if s.is_terminal]
            query = query.where(orders.c.status.not_in(terminal))
        with self.engine.connect() as conn:
            return [_order_row(r) for r in conn.execute(query)]

    def orders_in(self, *states: str) -> list[OrderRow]:
        """Orders whose request is in one of ``states`` (e.g. ``pending``, ``unknown``)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(orders)
                .where(orders.c.submit_state.in_(states))
                .order_by(orders.c.strategy, orders.c.sequence)
            )
            return [_order_row(r) for r in rows]

    def fills(self, client_order_id: str | None = None) -> list[FillRow]:
        query = select(fills).order_by(fills.c.ts_event_ns, fills.c.venue, fills.c.trade_id)
        if client_order_id is not None:
            query = query.where(fills.c.client_order_id == client_order_id)
        with self.engine.connect() as conn:
            return [_fill_row(r) for r in conn.execute(query)]

    def positions(self) -> dict[InstrumentId, PositionRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(positions).order_by(positions.c.instrument))
            return {
                InstrumentId.parse(r.instrument): PositionRow(
                    InstrumentId.parse(r.instrument),
                    r.qty,
                    r.cost_basis,
                    r.realized_pnl,
                    r.fees,
                )
                for r in rows
            }

    def events(self, client_order_id: str) -> list[tuple[str, int]]:
        """(kind, ts_event_ns) of the order's logged events, in arrival order."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(order_events.c.kind, order_events.c.ts_event_ns)
                .where(order_events.c.client_order_id == client_order_id)
                .order_by(order_events.c.id)
            )
            return [(r.kind, int(r.ts_event_ns)) for r in rows]

    # -- account ------------------------------------------------------------------------------
    def set_balances(self, values: Iterable[tuple[str, Decimal, Decimal]], ts_ns: int) -> None:
        """Replace the stored balances with ``(asset, total, free)`` rows."""
        with self.engine.begin() as conn:
            conn.execute(balances.delete())
            rows = [
                {"asset": a, "total": t, "free": f, "ts_updated_ns": ts_ns} for a, t, f in values
            ]
            if rows:
                conn.execute(insert(balances), rows)

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(balances).order_by(balances.c.asset))
            return {r.asset: (r.total, r.free) for r in rows}

    def record_equity(self, ts_ns: int, value: float) -> None:
        """Append a point of the equity curve (a repeated timestamp keeps the newest value)."""
        with self.engine.begin() as conn:
            done = conn.execute(update(equity).where(equity.c.ts_ns == ts_ns).values(equity=value))
            if done.rowcount == 0:
                conn.execute(insert(equity).values(ts_ns=ts_ns, equity=value))

    def equity_curve(self) -> list[tuple[int, float]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(equity).order_by(equity.c.ts_ns))
            return [(int(r.ts_ns), float(r.equity)) for r in rows]

    # -- internals ----------------------------------------------------------------------------
    def _locked_order(self, conn: Connection, client_order_id: str) -> OrderRow:
        row = conn.execute(
            select(orders).where(orders.c.client_order_id == client_order_id).with_for_update()
        ).first()
        if row is None:
            raise UnknownOrder(f"no order intent is stored for client order id {client_order_id}")
        return _order_row(row)

    @staticmethod
    def _log(conn: Connection, event: OrderEvent, kind: str) -> None:
        conn.execute(
            insert(order_events).values(
                client_order_id=event.client_order_id,
                kind=kind,
                ts_event_ns=event.ts_event_ns,
                body=msgspec.json.encode(event).decode(),
            )
        )

    @staticmethod
    def _apply_to_position(conn: Connection, fill: Fill) -> None:
        inst = str(fill.instrument_id)
        row = conn.execute(
            select(positions).where(positions.c.instrument == inst).with_for_update()
        ).first()
        position = Position(fill.instrument_id)
        if row is not None:
            position.qty = row.qty
            position.cost_basis = row.cost_basis
            position.realized_pnl = row.realized_pnl
            position.fees = row.fees
        position.apply(fill)
        values = {
            "qty": position.qty,
            "cost_basis": position.cost_basis,
            "realized_pnl": position.realized_pnl,
            "fees": position.fees,
            "ts_updated_ns": fill.ts_event_ns,
        }
        if row is None:
            conn.execute(insert(positions).values(instrument=inst, **values))
        else:
            conn.execute(update(positions).where(positions.c.instrument == inst).values(**values))


def _fill_row(r: Row[tuple[object, ...]]) -> FillRow:
    m = r._mapping
    fill = Fill(
        client_order_id=m["client_order_id"],
        instrument_id=InstrumentId.parse(m["instrument"]),
        side=OrderSide(m["side"]),
        qty=m["qty"],
        price=m["price"],
        fee=m["fee"],
        liquidity=Liquidity(m["liquidity"]),
        ts_event_ns=int(m["ts_event_ns"]),
        fill_id=m["trade_id"],
    )
    return FillRow(m["venue"], m["trade_id"], fill, m["fee_currency"])
