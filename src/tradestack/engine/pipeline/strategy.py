"""The pipeline as one strategy: features → alphas → ensemble → sizing → risk → orders.

Two paths compute the signal and share everything after it. :class:`BatchPipeline` reads the
signal that :meth:`PipelinePlan.signals` computed over whole arrays before the run (research);
:class:`ReplayPipeline` computes it one event at a time from what has arrived so far, as paper
and live trading do. On bars a step is each bar's close; on an order book it is each timer tick
of the receive clock (``interval_ms``). Nothing trades before ``train_end``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from tradestack.core.events import Bar, TradeTick
from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument
from tradestack.core.orders import Order, OrderSide, OrderStatus, OrderType
from tradestack.engine.pipeline.plan import PipelinePlan, Signals
from tradestack.engine.pipeline.sampling import BookStepper, ReferenceBook
from tradestack.engine.strategy import Strategy
from tradestack.features.featureset import IncrementalFeatures
from tradestack.portfolio.sizing import Sizer, SizingStats
from tradestack.risk import KillSwitchState, RiskManager

if TYPE_CHECKING:
    from tradestack.engine.context import StrategyContext

FLATTEN_TAG = "risk_flatten"
TIMER = "pipeline"

Computed = tuple[tuple[float, ...], list[float], float]
"""One step's features, alpha scores and blended signal."""


class _Track:
    """One instrument's progress through its steps, and what each step computed."""

    __slots__ = ("close", "features", "scores", "signal", "step", "ts")

    def __init__(self) -> None:
        self.step = 0
        self.ts: list[int] = []
        self.close: list[float] = []
        self.features: list[tuple[float, ...]] = []
        self.scores: list[list[float]] = []
        self.signal: list[float] = []


class PipelineStrategy(Strategy):
    """Shared decision logic of both paths (see module docstring)."""

    mode = "batch"

    def __init__(
        self,
        plan: PipelinePlan,
        *,
        interval_ns: int | None = None,
        data_end_ns: int | None = None,
        risk: RiskManager | None = None,
    ) -> None:
        super().__init__()
        self.plan = plan
        self.interval_ns = interval_ns
        self.data_end_ns = data_end_ns
        self.risk = risk if risk is not None else RiskManager(plan.risk)
        self.sizer = Sizer(plan.sizing)
        self.sizing_stats = SizingStats()
        self.tracks: dict[InstrumentId, _Track] = {}
        self.cooldown_steps = plan.config.cooldown_steps
        self.orders_sent = 0
        self._targets: dict[InstrumentId, float] = {}
        self._closing: dict[InstrumentId, int] = {}  # flattened by risk: until which step
        self._ctx: StrategyContext | None = None

    @property
    def name(self) -> str:
        return "Pipeline"

    # -- events ---------------------------------------------------------------------------------
    def on_start(self, ctx: StrategyContext) -> None:
        self._ctx = ctx
        ctx.pre_trade = self._pre_trade
        self.tracks = {inst: _Track() for inst in ctx.instruments}
        if self.interval_ns is not None:
            ctx.set_timer(TIMER, self.interval_ns)

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        inst = bar.instrument_id
        features, scores, signal = self._compute_bar(inst, bar)
        self._decide(ctx, inst, bar.ts_event_ns, bar.close, features, scores, signal)

    def on_timer(self, ctx: StrategyContext, name: str, ts_ns: int) -> None:
        if name != TIMER or (self.data_end_ns is not None and ts_ns >= self.data_end_ns):
            return  # past the end of the recording only order answers are left, no market data
        (inst,) = ctx.instruments
        view = ctx.book(inst)
        if view.mid != view.mid:  # a one-sided book is not a step: no features, no decision
            self._skip_step()
            return
        computed = self._compute_book(inst, ts_ns, view)
        if computed is not None:
            self._decide(ctx, inst, ts_ns, view.mid, *computed)

    # -- the two paths --------------------------------------------------------------------------
    def _skip_step(self) -> None:
        """A grid time without a two-sided book (left out of the batch steps as well)."""

    def _compute_bar(self, inst: InstrumentId, bar: Bar) -> Computed:
        raise NotImplementedError

    def _compute_book(self, inst: InstrumentId, ts_ns: int, view: Any) -> Computed | None:
        raise NotImplementedError

    # -- shared decision ------------------------------------------------------------------------
    def _decide(
        self,
        ctx: StrategyContext,
        inst: InstrumentId,
        ts_ns: int,
        price: float,
        features: tuple[float, ...],
        scores: list[float],
        signal: float,
    ) -> None:
        track = self.tracks[inst]
        track.ts.append(ts_ns)
        track.close.append(price)
        track.features.append(features)
        track.scores.append(scores)
        track.signal.append(signal)
        risk = self.risk
        risk.on_price(inst, ts_ns, price)
        for action in risk.evaluate(ts_ns, ctx.portfolio):
            hit = list(ctx.instruments) if action.instrument_id is None else [action.instrument_id]
            for victim in hit:
                self._closing[victim] = len(self.tracks[victim].ts) + self.cooldown_steps
                self._flatten(ctx, victim)
        if inst in self._closing:
            if not self._flatten(ctx, inst) or len(track.ts) <= self._closing[inst]:
                return  # still closing, or cooling down after a stop
            del self._closing[inst]
        state = risk.kill_switch.state
        if ts_ns < self.plan.train_end_ns or state is KillSwitchState.HALTED:
            return
        instrument = ctx.instrument(inst)
        current = ctx.position(inst).qty + self._pending(ctx, inst)
        target = self._target(ctx, instrument, price, features, signal, current)
        if state is KillSwitchState.REDUCING:  # only toward flat, never through it
            target = (
                max(min(target, current), Decimal(0))
                if current >= 0
                else min(max(target, current), Decimal(0))
            )
        self._targets[inst] = float(target) * price * float(instrument.multiplier)
        delta = target - current
        if delta == 0:
            return
        minimum = max(Decimal(str(self.plan.sizing.min_order_notional)), instrument.min_notional)
        if abs(delta) * Decimal(repr(price)) * instrument.multiplier < minimum:
            return
        side = OrderSide.BUY if delta > 0 else OrderSide.SELL
        order = ctx.submit(inst, side, abs(delta), tag="pipeline")
        self.orders_sent += order.status is not OrderStatus.REJECTED

    def _target(
        self,
        ctx: StrategyContext,
        instrument: Instrument,
        price: float,
        features: tuple[float, ...],
        signal: float,
        current: Decimal,
    ) -> Decimal:
        """Sizing, then the risk layer's scaling of the target notional."""
        decision = self.sizer.target(
            signal,
            price=price,
            equity=ctx.portfolio.equity(),
            volatility=features[self.plan.volatility_column],
            position_qty=current,
            instrument=instrument,
        )
        self.sizing_stats.record(decision)
        target = decision.target_qty
        if decision.reason in ("sized", "capped") and target != 0:
            mult = float(instrument.multiplier)
            notional = float(target) * price * mult
            adjusted, rules = self.risk.scale_target(
                instrument.id, notional, portfolio=ctx.portfolio, targets=self._targets
            )
            if rules:
                scaled = instrument.round_qty(abs(adjusted) / (price * mult))
                target = scaled if adjusted >= 0 else -scaled
        return target

    def _pending(self, ctx: StrategyContext, inst: InstrumentId) -> Decimal:
        pending = Decimal(0)
        for o in ctx.open_orders(inst):
            if o.order_type is OrderType.MARKET:
                pending += o.leaves_qty if o.side is OrderSide.BUY else -o.leaves_qty
        return pending

    def _flatten(self, ctx: StrategyContext, inst: InstrumentId) -> bool:
        """Cancel the instrument's orders and close what is held; True once flat with nothing
        working. Called again on later steps: an order already on its way when the risk layer
        acted (an L2 venue answers after a latency) may still fill, and that gets closed too."""
        self._targets[inst] = 0.0
        working = ctx.open_orders(inst)
        if any(o.tag == FLATTEN_TAG for o in working):
            return False
        for order in working:
            ctx.cancel(order)
        qty = ctx.position(inst).qty
        if qty == 0:
            return not ctx.open_orders(inst)
        side = OrderSide.SELL if qty > 0 else OrderSide.BUY
        ctx.submit(inst, side, abs(qty), reduce_only=True, tag=FLATTEN_TAG)
        return False

    def _pre_trade(self, order: Order) -> str | None:
        ctx = self._ctx
        assert ctx is not None
        inst = order.instrument_id
        mark = ctx.portfolio.mark_price(inst) if ctx.portfolio.has_mark(inst) else math.nan
        denial = self.risk.check_order(
            order,
            now_ns=ctx.now_ns(),
            instrument=ctx.instrument(inst),
            portfolio=ctx.portfolio,
            mid=mark,
            open_orders=ctx.open_orders(inst),
            flatten=order.tag == FLATTEN_TAG,
        )
        return None if denial is None else f"risk: {denial.rule}: {denial.detail}"

    # -- results --------------------------------------------------------------------------------
    def recorded(self) -> dict[InstrumentId, Signals]:
        """What each step computed, per instrument (the same in both paths)."""
        out = {}
        n_alphas = len(self.plan.alphas)
        n_features = len(self.plan.features.names)
        for inst, t in self.tracks.items():
            out[inst] = Signals(
                np.array(t.ts, dtype=np.int64),
                np.array(t.close, dtype=np.float64),
                np.array(t.features, dtype=np.float64).reshape(-1, n_features),
                np.array(t.scores, dtype=np.float64).reshape(-1, n_alphas),
                np.array(t.signal, dtype=np.float64),
            )
        return out


class BatchPipeline(PipelineStrategy):
    """Reads the signal computed over whole arrays before the run."""

    mode = "batch"

    def __init__(
        self,
        plan: PipelinePlan,
        signals: Mapping[InstrumentId, Signals],
        *,
        interval_ns: int | None = None,
        data_end_ns: int | None = None,
        risk: RiskManager | None = None,
    ) -> None:
        super().__init__(plan, interval_ns=interval_ns, data_end_ns=data_end_ns, risk=risk)
        self.signals = dict(signals)

    def _row(self, inst: InstrumentId, ts_ns: int) -> Computed | None:
        track = self.tracks[inst]
        sig = self.signals[inst]
        i = track.step
        if i >= len(sig.ts_ns):
            return None
        if int(sig.ts_ns[i]) != ts_ns:
            raise RuntimeError(
                f"{inst}: step {i} is at {ts_ns} but the batch signal was computed for "
                f"{int(sig.ts_ns[i])}; the data changed between research and the run"
            )
        track.step = i + 1
        return (tuple(sig.features[i].tolist()), sig.alpha_scores[i].tolist(), float(sig.signal[i]))

    def _compute_bar(self, inst: InstrumentId, bar: Bar) -> Computed:
        row = self._row(inst, bar.ts_event_ns)
        if row is None:
            raise RuntimeError(f"{inst}: more bars than the batch signal covers")
        return row

    def _compute_book(self, inst: InstrumentId, ts_ns: int, view: Any) -> Computed | None:
        return self._row(inst, ts_ns)


class ReplayPipeline(PipelineStrategy):
    """Computes features, alpha scores and the blend one event at a time."""

    mode = "replay"

    def __init__(
        self,
        plan: PipelinePlan,
        *,
        interval_ns: int | None = None,
        data_end_ns: int | None = None,
        depth: int = 5,
        risk: RiskManager | None = None,
        reference: ReferenceBook | None = None,
    ) -> None:
        super().__init__(plan, interval_ns=interval_ns, data_end_ns=data_end_ns, risk=risk)
        self._reference = reference
        self._incremental: dict[InstrumentId, IncrementalFeatures] = {}
        self._stepper = BookStepper(depth)
        self._alpha_score = [a.score for a in plan.alphas]
        self._columns = plan.alpha_columns

    def on_start(self, ctx: StrategyContext) -> None:
        super().on_start(ctx)
        self._incremental = {inst: self.plan.features.incremental() for inst in ctx.instruments}

    def on_trade(self, ctx: StrategyContext, trade: TradeTick) -> None:
        self._stepper.on_trade(trade)

    def _skip_step(self) -> None:
        self._stepper.reset()

    def _signal(self, inst: InstrumentId, row: list[Any]) -> Computed:
        features = self._incremental[inst].update(row)
        scores = [
            score([features[c] for c in cols])
            for score, cols in zip(self._alpha_score, self._columns, strict=True)
        ]
        return features, scores, self.plan.ensemble.blend(scores)

    def _compute_bar(self, inst: InstrumentId, bar: Bar) -> Computed:
        return self._signal(inst, [bar.open, bar.high, bar.low, bar.close, bar.volume])

    def _compute_book(self, inst: InstrumentId, ts_ns: int, view: Any) -> Computed | None:
        row = self._stepper.row(view)
        if self._reference is not None:
            row.append(self._reference.mid_at(ts_ns))
        return self._signal(inst, row)
