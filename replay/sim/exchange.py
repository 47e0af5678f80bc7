"""``SimExchange``: the seeded market behind the Binance wire server, in one object.

    async with SimExchange(SimConfig(seed=7), WireConfig(port=0)) as sim:
        sim.ws_url      # ws://127.0.0.1:PORT  (append /public/ws/btcusdt@depth ...)
        sim.rest_url    # http://127.0.0.1:PORT (append /fapi/v1/depth?...)
        sim.send_log    # every frame sent, per connection
"""

from __future__ import annotations

from pathlib import Path

from replay.sim.config import SimConfig
from replay.sim.source import SimSource
from replay.wire.sendlog import SendLog
from replay.wire.server import WireConfig, WireServer


class SimExchange:
    """Owns a :class:`SimSource`, a :class:`WireServer` and the :class:`SendLog`.

    ``send_log_path`` also appends the log as NDJSON; ``keep_send_log=False`` keeps it out
    of memory (long runs).
    """

    def __init__(self, config: SimConfig | None = None, wire: WireConfig | None = None,
                 send_log_path: str | Path | None = None, keep_send_log: bool = True) -> None:
        self.config = config or SimConfig()
        self.source = SimSource(self.config)
        self.send_log = SendLog(send_log_path, keep_in_memory=keep_send_log)
        self.server = WireServer(self.source, wire or WireConfig(), self.send_log)

    async def start(self) -> None:
        """Start the market and bind the server."""
        await self.source.start()
        try:
            await self.server.start()
        except BaseException:
            await self.source.stop()
            self.send_log.close()
            raise

    async def stop(self) -> None:
        """Close every connection (1001), stop the market, close the send log."""
        try:
            await self.server.stop()
        finally:
            await self.source.stop()
            self.send_log.close()

    async def __aenter__(self) -> SimExchange:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def ws_url(self) -> str:
        """``ws://host:port``."""
        return self.server.ws_url

    @property
    def rest_url(self) -> str:
        """``http://host:port``."""
        return self.server.rest_url

    @property
    def port(self) -> int:
        """The bound port."""
        return self.server.port


__all__ = ["SimExchange"]
