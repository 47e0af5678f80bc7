"""Live capture: websocket connections, journal, partition writer, gap detector, REST repair."""

__all__: list[str] = []
