"""Live capture: websocket connections, journal, partition writer, gap detector, REST repair.

Start with :class:`Recorder` and :class:`RecorderConfig`; ``ticktape record`` is a thin shell
around them. Everything else is exported for tests, tools and embedding.
"""

from recorder._backoff import Retry, backoff, classify
from recorder._config import RecorderConfig, config_from_mapping, load_config, parse_duration
from recorder._connection import Connection, ConnectionConfig, ConnectionState, MonotonicClock
from recorder._gaps import GapDetector, GapDetectorConfig
from recorder._metrics import MetricsServer, RecorderCounters
from recorder._overlap import OverlapDeduper
from recorder._recorder import Recorder
from recorder._rest import RestClient, WeightBudget
from recorder._routing import RateLimiter, Shard, shard
from recorder._shard import ShardPolicy, ShardRunner
from recorder._storage import Storage

__all__ = [
    "Connection",
    "ConnectionConfig",
    "ConnectionState",
    "GapDetector",
    "GapDetectorConfig",
    "MetricsServer",
    "MonotonicClock",
    "OverlapDeduper",
    "RateLimiter",
    "Recorder",
    "RecorderConfig",
    "RecorderCounters",
    "RestClient",
    "Retry",
    "Shard",
    "ShardPolicy",
    "ShardRunner",
    "Storage",
    "WeightBudget",
    "backoff",
    "classify",
    "config_from_mapping",
    "load_config",
    "parse_duration",
    "shard",
]
