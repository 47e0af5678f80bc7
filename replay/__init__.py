"""Archive reading, merge, pacing, the Binance wire server (replay and sim), order book, catalog."""

__all__: list[str] = []
