"""GapDetector.on_batch gives exactly what on_message per message gives (random sequences)."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from recorder._gaps import GapDetector
from schemas.message import Gap, Message

T0 = 1_771_263_510_000_000_000
MS = 1_000_000
STREAMS = ("btcusdt@aggTrade", "btcusdt@depth@100ms", "btcusdt@bookTicker",
           "btcusdt@markPrice@1s", "ethusdt@kline_1m")

# One step: (stream index, ms since the previous message, id step, disconnect before it)
steps = st.lists(st.tuples(st.integers(0, len(STREAMS) - 1), st.integers(0, 9000),
                           st.integers(0, 3), st.booleans()), max_size=120)


def _raw(stream: str, ident: int) -> str:
    if "aggTrade" in stream:
        return orjson.dumps({"e": "aggTrade", "a": ident, "s": "BTCUSDT"}).decode()
    if "depth" in stream:
        return orjson.dumps({"e": "depthUpdate", "u": ident, "pu": ident - 1, "b": [],
                             "a": []}).decode()
    return orjson.dumps({"e": "x", "u": ident}).decode()


def _run(plan: list[tuple[int, int, int, bool]], batched: bool) -> tuple[list[Gap], list[str]]:
    det = GapDetector()
    gaps: list[Gap] = []
    batch: list[Message] = []
    t, ident = T0, 1000

    def flush() -> None:
        if batched:
            gaps.extend(det.on_batch(batch))
        else:
            for m in batch:
                gaps.extend(det.on_message(m))
        batch.clear()

    for i, (s, dt, step, down) in enumerate(plan):
        t += dt * MS
        ident += step
        if down:
            flush()
            det.on_disconnect((STREAMS[s],), t - 1, "test drop")
        batch.append(Message(STREAMS[s], t, _raw(STREAMS[s], ident), 1, i))
        if i % 7 == 6:
            flush()
    flush()
    gaps.extend(det.finish(t + 30_000 * MS))
    return gaps, det.silent(t + 30_000 * MS)


@settings(max_examples=150, deadline=None)
@given(plan=steps)
def test_on_batch_equals_on_message(plan: list[tuple[int, int, int, bool]]) -> None:
    assert _run(plan, batched=True) == _run(plan, batched=False)


def test_on_batch_reports_silence_and_disconnects() -> None:
    plan = [(2, 0, 1, False), (2, 20_000, 1, False), (0, 10, 1, False), (0, 10, 5, False),
            (3, 0, 0, True), (3, 50, 0, False)]
    gaps, _ = _run(plan, batched=True)
    kinds = [g.kind.value for g in gaps]
    assert "silence" in kinds and "sequence" in kinds and "disconnect" in kinds
