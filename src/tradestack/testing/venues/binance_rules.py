"""Binance spot symbol filters and error answers, shared by the fake venue's trading modules."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)
KNOWN_QUOTES = ("USDT", "FDUSD", "USDC", "TUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "TRY")


class BinanceError(Exception):
    """A request the venue refuses, in Binance's words: HTTP status, error code and message."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


def fmt(value: Decimal) -> str:
    """A decimal as Binance prints it (8 places)."""
    return f"{value:.8f}"


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """One symbol's trading filters, from a recorded exchangeInfo or the BTCUSDT defaults."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal = Decimal("0.01")
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")
    step_size: Decimal = Decimal("0.00001")
    min_qty: Decimal = Decimal("0.00001")
    max_qty: Decimal = Decimal("9000")
    market_max_qty: Decimal = Decimal("9000")  # MARKET_LOT_SIZE maxQty; 0: no separate cap
    min_notional: Decimal = Decimal("5")
    notional_filter: str = "NOTIONAL"  # exchangeInfo before 2023 calls it MIN_NOTIONAL
    base_precision: int = 8
    quote_precision: int = 8

    @classmethod
    def default(cls, symbol: str) -> SymbolRules:
        """BTCUSDT-like filters for ``symbol``, its quote asset told by a known suffix."""
        for quote in KNOWN_QUOTES:
            if symbol.endswith(quote) and len(symbol) > len(quote):
                return cls(symbol, symbol[: -len(quote)], quote)
        raise ValueError(
            f"cannot tell the base and quote assets of {symbol!r} (known quote assets: "
            f"{', '.join(KNOWN_QUOTES)}); pass SymbolRules for it"
        )

    @classmethod
    def from_exchange_info(cls, entry: Mapping[str, Any]) -> SymbolRules:
        """The rules of one ``symbols[]`` entry of a Binance exchangeInfo body."""
        filters = {f["filterType"]: f for f in entry.get("filters", [])}
        rules = cls(str(entry["symbol"]), str(entry["baseAsset"]), str(entry["quoteAsset"]))
        values: dict[str, Any] = {
            "base_precision": int(entry.get("baseAssetPrecision", 8)),
            "quote_precision": int(entry.get("quoteAssetPrecision", 8)),
        }
        if "PRICE_FILTER" in filters:
            f = filters["PRICE_FILTER"]
            values |= {
                "tick_size": Decimal(f["tickSize"]),
                "min_price": Decimal(f["minPrice"]),
                "max_price": Decimal(f["maxPrice"]),
            }
        if "LOT_SIZE" in filters:
            f = filters["LOT_SIZE"]
            values |= {
                "step_size": Decimal(f["stepSize"]),
                "min_qty": Decimal(f["minQty"]),
                "max_qty": Decimal(f["maxQty"]),
            }
        if "MARKET_LOT_SIZE" in filters:
            values["market_max_qty"] = Decimal(filters["MARKET_LOT_SIZE"]["maxQty"])
        for name in ("NOTIONAL", "MIN_NOTIONAL"):
            if name in filters:
                values |= {
                    "min_notional": Decimal(filters[name]["minNotional"]),
                    "notional_filter": name,
                }
        return dataclasses.replace(rules, **values)

    def exchange_info_entry(self) -> dict[str, Any]:
        """A ``symbols[]`` entry of exchangeInfo for these rules, as Binance publishes it."""
        return {
            "symbol": self.symbol,
            "status": "TRADING",
            "baseAsset": self.base,
            "baseAssetPrecision": self.base_precision,
            "quoteAsset": self.quote,
            "quotePrecision": self.quote_precision,
            "quoteAssetPrecision": self.quote_precision,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "icebergAllowed": False,
            "ocoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt(self.min_price),
                    "maxPrice": fmt(self.max_price),
                    "tickSize": fmt(self.tick_size),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": fmt(self.min_qty),
                    "maxQty": fmt(self.max_qty),
                    "stepSize": fmt(self.step_size),
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": fmt(ZERO),
                    "maxQty": fmt(self.market_max_qty),
                    "stepSize": fmt(ZERO),
                },
                {
                    "filterType": self.notional_filter,
                    "minNotional": fmt(self.min_notional),
                    "applyMinToMarket": True,
                    "applyToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"],
        }
