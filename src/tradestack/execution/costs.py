"""Transaction costs of the simulated venues: fees in basis points and adverse slippage."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from tradestack.core.instruments import Instrument
from tradestack.core.orders import Liquidity, OrderSide

_BPS = Decimal(10_000)


class FeeModel:
    """Maker/taker fees in bps of notional; venue-wide overrides win over the instrument's own."""

    def __init__(
        self, maker_fee_bps: Decimal | None = None, taker_fee_bps: Decimal | None = None
    ) -> None:
        self.maker_fee_bps = maker_fee_bps
        self.taker_fee_bps = taker_fee_bps

    def fee(self, instrument: Instrument, notional: Decimal, liquidity: Liquidity) -> Decimal:
        """Fee in the quote currency for a fill of ``notional`` (always >= 0 unless a rebate)."""
        if liquidity is Liquidity.MAKER:
            bps = self.maker_fee_bps if self.maker_fee_bps is not None else instrument.maker_fee_bps
        else:
            bps = self.taker_fee_bps if self.taker_fee_bps is not None else instrument.taker_fee_bps
        return notional * bps / _BPS if bps else Decimal(0)


class SlippageModel:
    """Moves a taker fill price against the order by ``slippage_bps``, then onto the tick grid.

    Buys round up and sells round down to the tick so slippage never turns into price improvement.
    """

    def __init__(self, slippage_bps: Decimal = Decimal(0)) -> None:
        if not 0 <= slippage_bps < 10_000:
            raise ValueError(f"slippage_bps must be in [0, 10000), got {slippage_bps}")
        self.slippage_bps = slippage_bps

    def adjust(self, instrument: Instrument, side: OrderSide, price: Decimal) -> Decimal:
        """The price a taker order of ``side`` pays or receives instead of ``price``."""
        if not self.slippage_bps:
            return price
        moved = price * (1 + side.sign * self.slippage_bps / _BPS)
        rounding = ROUND_CEILING if side is OrderSide.BUY else ROUND_FLOOR
        ticks = (moved / instrument.tick_size).to_integral_value(rounding)
        return ticks * instrument.tick_size
