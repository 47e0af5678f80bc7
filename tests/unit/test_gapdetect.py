"""Pure gap detector: one test per gap kind, plus reconnect and restart semantics."""

from __future__ import annotations

import orjson

from recorder._gaps import GapDetector, GapDetectorConfig, agg_hole
from schemas.message import Gap, GapKind, Message

T0 = 1_771_263_510_000_000_000
MS = 1_000_000
AGG = "btcusdt@aggTrade"
DEPTH = "btcusdt@depth@100ms"


def agg(a: int, t: int) -> Message:
    raw = orjson.dumps({"e": "aggTrade", "E": 1, "a": a, "s": "BTCUSDT", "p": "1", "q": "1",
                        "f": a * 2, "l": a * 2 + 1, "T": 1, "m": True}).decode()
    return Message(AGG, t, raw)


def depth(pu: int, u: int, t: int, stream: str = DEPTH) -> Message:
    raw = orjson.dumps({"e": "depthUpdate", "E": 1, "T": 1, "s": "BTCUSDT", "U": pu + 1,
                        "u": u, "pu": pu, "b": [], "a": []}).decode()
    return Message(stream, t, raw)


def feed(det: GapDetector, msgs: list[Message]) -> list[Gap]:
    return [g for m in msgs for g in det.on_message(m)]


def test_contiguous_streams_give_no_gaps() -> None:
    det = GapDetector()
    msgs = [agg(100 + i, T0 + i * 50 * MS) for i in range(20)]
    msgs += [depth(10 * i, 10 * (i + 1), T0 + i * 100 * MS) for i in range(20)]
    msgs.sort(key=lambda m: m.recv_ns)
    assert feed(det, msgs) == []


def test_depth_pu_break_is_a_sequence_gap() -> None:
    det = GapDetector()
    gaps = feed(det, [depth(0, 10, T0), depth(10, 20, T0 + 100 * MS),
                      depth(25, 30, T0 + 200 * MS), depth(30, 40, T0 + 300 * MS)])
    assert gaps == [Gap(DEPTH, T0 + 100 * MS, T0 + 200 * MS, GapKind.SEQUENCE,
                        "depth pu 25 != previous u 20")]


def test_depth_duplicates_from_an_overlap_are_not_breaks() -> None:
    det = GapDetector()
    assert feed(det, [depth(0, 10, T0), depth(10, 20, T0 + MS), depth(0, 10, T0 + 2 * MS),
                      depth(10, 20, T0 + 3 * MS), depth(20, 30, T0 + 4 * MS)]) == []


def test_partial_depth_streams_are_not_chained() -> None:
    det = GapDetector()
    stream = "btcusdt@depth20@100ms"
    assert feed(det, [depth(0, 10, T0, stream), depth(50, 60, T0 + 100 * MS, stream)]) == []


def test_agg_trade_jump_names_first_missing_id_and_count() -> None:
    det = GapDetector()
    gaps = feed(det, [agg(100, T0), agg(101, T0 + MS), agg(105, T0 + 2 * MS),
                      agg(106, T0 + 3 * MS)])
    assert len(gaps) == 1
    g = gaps[0]
    assert (g.stream, g.start_ns, g.end_ns, g.kind) == (AGG, T0 + MS, T0 + 2 * MS,
                                                        GapKind.SEQUENCE)
    assert agg_hole(g) == (102, 3)


def test_agg_trade_repeat_is_ignored() -> None:
    det = GapDetector()
    assert feed(det, [agg(100, T0), agg(100, T0 + MS), agg(99, T0 + 2 * MS),
                      agg(101, T0 + 3 * MS)]) == []


def test_silence_beyond_cadence_times_factor() -> None:
    det = GapDetector(GapDetectorConfig(silence_factor=10, min_silence_ms=0))
    # markPrice: 3 s cadence -> 30 s limit.
    stream = "btcusdt@markPrice"
    raw = '{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1"}'
    msgs = [Message(stream, T0, raw), Message(stream, T0 + 29_000 * MS, raw),
            Message(stream, T0 + 60_000 * MS, raw)]
    gaps = feed(det, msgs)
    assert [(g.kind, g.start_ns, g.end_ns) for g in gaps] == [
        (GapKind.SILENCE, T0 + 29_000 * MS, T0 + 60_000 * MS)]
    assert det.silent(T0 + 60_000 * MS + 31_000 * MS) == [stream]
    assert det.silent(T0 + 60_000 * MS + 1_000 * MS) == []


def test_no_silence_for_streams_without_cadence() -> None:
    det = GapDetector(GapDetectorConfig(min_silence_ms=0))
    stream = "btcusdt@bookTicker"
    raw = '{"e":"bookTicker","u":1}'
    assert feed(det, [Message(stream, T0, raw), Message(stream, T0 + 3600_000 * MS, raw)]) == []


def test_min_silence_floor_applies() -> None:
    det = GapDetector(GapDetectorConfig(silence_factor=1, min_silence_ms=2000))
    gaps = feed(det, [agg(1, T0), agg(2, T0 + 1500 * MS), agg(3, T0 + 3600 * MS)])
    assert [g.kind for g in gaps] == [GapKind.SILENCE]


def test_disconnect_gap_runs_to_each_streams_first_message_after_reconnect() -> None:
    det = GapDetector()
    feed(det, [agg(1, T0), depth(0, 10, T0)])
    det.on_disconnect([AGG, DEPTH], T0 + 10 * MS, "server closed 1006")
    gaps = feed(det, [depth(500, 510, T0 + 5000 * MS), agg(2, T0 + 6000 * MS)])
    assert gaps == [
        Gap(DEPTH, T0 + 10 * MS, T0 + 5000 * MS, GapKind.DISCONNECT, "server closed 1006"),
        Gap(AGG, T0 + 10 * MS, T0 + 6000 * MS, GapKind.DISCONNECT, "server closed 1006"),
    ]


def test_reconnect_resets_depth_chain_but_not_agg_ids() -> None:
    det = GapDetector()
    feed(det, [agg(1, T0), depth(0, 10, T0)])
    det.on_disconnect([AGG, DEPTH], T0 + MS)
    gaps = feed(det, [depth(900, 910, T0 + 9000 * MS), depth(910, 920, T0 + 9100 * MS),
                      agg(50, T0 + 9200 * MS)])
    kinds = [(g.stream, g.kind) for g in gaps]
    # The new depth chain is not a break (BINANCE.md s4 r5); the id hole is reported for repair.
    assert kinds == [(DEPTH, GapKind.DISCONNECT), (AGG, GapKind.DISCONNECT),
                     (AGG, GapKind.SEQUENCE)]
    assert agg_hole(gaps[-1]) == (2, 48)


def test_disconnect_supersedes_silence_and_second_down_keeps_earliest() -> None:
    det = GapDetector(GapDetectorConfig(min_silence_ms=0))
    feed(det, [agg(1, T0)])
    det.on_disconnect([AGG], T0 + MS)
    det.on_disconnect([AGG], T0 + 50 * MS)
    gaps = feed(det, [agg(2, T0 + 60_000 * MS)])
    assert [(g.kind, g.start_ns) for g in gaps] == [(GapKind.DISCONNECT, T0 + MS)]


def test_seed_after_restart_reports_ids_missed_while_down() -> None:
    det = GapDetector()
    det.seed(agg(1000, T0))
    det.seed(depth(0, 10, T0))
    gaps = feed(det, [agg(1010, T0 + 60_000 * MS), depth(77, 80, T0 + 60_000 * MS)])
    assert [agg_hole(g) for g in gaps if g.kind is GapKind.SEQUENCE] == [(1001, 9)]


def test_finish_closes_open_intervals() -> None:
    det = GapDetector(GapDetectorConfig(min_silence_ms=0))
    feed(det, [agg(1, T0), depth(0, 10, T0)])
    det.on_disconnect([DEPTH], T0 + MS)
    gaps = det.finish(T0 + 10_000 * MS)
    assert {(g.stream, g.kind) for g in gaps} == {(DEPTH, GapKind.DISCONNECT),
                                                  (AGG, GapKind.SILENCE)}
    assert det.finish(T0 + 10_001 * MS) == []


def test_unparseable_payloads_and_unknown_streams_do_not_raise() -> None:
    det = GapDetector()
    assert det.on_message(Message(AGG, T0, "[1,2]")) == []
    assert det.on_message(Message(DEPTH, T0, '{"u":"x"}')) == []
    assert det.on_message(Message("not a stream", T0, "{}")) == []
    assert det.on_message(Message(AGG, T0, "not json {")) == []
    assert det.on_message(Message(DEPTH, T0, "not json {")) == []
