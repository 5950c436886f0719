"""Alphas (signal models over features) and the ensemble that blends them."""

from tradestack.alphas.base import Alpha, AlphaError
from tradestack.alphas.book_pressure import BookPressure
from tradestack.alphas.ensemble import Ensemble, FixedWeights, InverseVariance, Stacking
from tradestack.alphas.momentum import MAMomentum
from tradestack.alphas.vwap_reversion import VWAPReversion

ALPHA_KINDS: dict[str, type[Alpha]] = {
    cls.kind: cls for cls in (BookPressure, MAMomentum, VWAPReversion)
}
ENSEMBLE_METHODS: dict[str, type[Ensemble]] = {
    cls.method: cls for cls in (FixedWeights, InverseVariance, Stacking)
}

__all__ = [
    "ALPHA_KINDS",
    "ENSEMBLE_METHODS",
    "Alpha",
    "AlphaError",
    "BookPressure",
    "Ensemble",
    "FixedWeights",
    "InverseVariance",
    "MAMomentum",
    "Stacking",
    "VWAPReversion",
]
