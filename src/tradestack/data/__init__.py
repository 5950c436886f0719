"""Market data loading and validation."""

from tradestack.data.bars import load_bars, resolve_data_path
from tradestack.data.errors import DataValidationError

__all__ = ["DataValidationError", "load_bars", "resolve_data_path"]
