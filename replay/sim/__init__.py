"""The simulated Binance USD-M exchange (``ticktape sim``): seeded market, faults, send log.

Recorder tests start it in-process with :class:`SimExchange`; recorder code never imports it.
"""

from replay.sim.config import SimConfig, parse_symbols
from replay.sim.exchange import SimExchange
from replay.sim.faults import Fault, FaultKind, parse_faults
from replay.sim.source import SimSource

__all__ = ["Fault", "FaultKind", "SimConfig", "SimExchange", "SimSource", "parse_faults",
           "parse_symbols"]
