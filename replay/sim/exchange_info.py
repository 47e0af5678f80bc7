"""exchangeInfo entries for simulated instruments."""

from __future__ import annotations

from typing import Any

from replay.sim.book import Instrument
from replay.wire.exchange_info import symbol_entry


def symbol_info(inst: Instrument, onboard_ms: int) -> dict[str, Any]:
    """The ``symbols[]`` entry of ``inst`` with its tick and lot sizes."""
    return symbol_entry(inst.symbol, inst.base_asset, inst.quote_asset, inst.price_dp,
                        inst.price(inst.tick), inst.qty_dp, inst.qty(1), onboard_ms,
                        min_price=inst.price(inst.tick))


__all__ = ["symbol_info"]
