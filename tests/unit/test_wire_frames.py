"""Batched server frame encoding, checked against the websockets library's own parser."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from replay.wire.frames import text_frames


def _parse(data: bytes) -> list[Frame]:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    while reader.buffer:
        gen = Frame.parse(reader.read_exact, mask=False)
        try:
            while True:
                next(gen)
        except StopIteration as stop:
            frames.append(stop.value)
    return frames


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_lengths_round_trip(size: int) -> None:
    text = "é" * (size // 2) + "x" * (size % 2)
    [frame] = _parse(text_frames([text]))
    assert frame.opcode is Opcode.TEXT and frame.fin and not frame.rsv1
    assert frame.data.decode() == text


def test_batch_keeps_order_and_boundaries() -> None:
    texts = ['{"a":1}', "", "x" * 300, '{"b":"ü"}']
    assert [f.data.decode() for f in _parse(text_frames(texts))] == texts
