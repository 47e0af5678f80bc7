"""The loss-invariant checker on hand-built archives: each way a frame can be accounted for,
and each way it can be lost, is counted where it belongs."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from replay._invariant import check_loss, read_send_log
from replay.wire.sendlog import SendLog, SentFrame, SentKind
from schemas.errors import ConfigError
from schemas.message import Message, Source
from tests.replay_support import MS, SEC, T0, a_gap, agg_trades, write_gaps, write_partition

STREAM = "btcusdt@aggTrade"


def _sent(msgs: list[Message], conn_id: int = 1, lag_ns: int = MS) -> list[SentFrame]:
    """The frames a server sent so that ``msgs`` arrive ``lag_ns`` later."""
    return [SentFrame(conn_id, i + 1, SentKind.DATA, m.stream, m.raw, m.recv_ns - lag_ns)
            for i, m in enumerate(msgs)]


def test_everything_archived(tmp_path: Path) -> None:
    msgs = agg_trades("btcusdt", T0, 50, 10 * MS)
    write_partition(tmp_path, STREAM, msgs)
    report = check_loss(_sent(msgs), tmp_path)
    total = report.total()
    assert report.ok
    assert (total.sent, total.archived, total.holes, total.in_gap) == (50, 50, 0, 0)


def test_missing_frame_is_a_hole_unless_a_gap_covers_it(tmp_path: Path) -> None:
    msgs = agg_trades("btcusdt", T0, 50, 10 * MS)
    write_partition(tmp_path, STREAM, msgs[:20] + msgs[21:])
    report = check_loss(_sent(msgs), tmp_path, skew_ns=0)
    assert not report.ok
    assert report.total().holes == 1
    assert report.holes[0].seq == 21
    # A gap of another stream explains nothing; one of '*' around the arrival window does.
    write_gaps(tmp_path, [a_gap("ethusdt@aggTrade", T0, T0 + SEC)])
    assert check_loss(_sent(msgs), tmp_path, skew_ns=0).total().holes == 1
    write_gaps(tmp_path, [a_gap("*", msgs[20].recv_ns - 2 * MS, msgs[20].recv_ns + 2 * MS)])
    report = check_loss(_sent(msgs), tmp_path, skew_ns=0)
    assert report.ok and report.total().in_gap == 1


def test_a_gap_long_after_the_loss_explains_nothing(tmp_path: Path) -> None:
    msgs = agg_trades("btcusdt", T0, 50, 10 * MS)
    write_partition(tmp_path, STREAM, msgs[:49])  # the last one never arrived
    write_gaps(tmp_path, [a_gap("*", msgs[-1].recv_ns + 10 * SEC, msgs[-1].recv_ns + 11 * SEC)])
    report = check_loss(_sent(msgs), tmp_path, skew_ns=0, max_latency_ns=2 * SEC)
    assert report.total().holes == 1
    # A disconnect gap starting within the latency bound accounts for it.
    report = check_loss(_sent(msgs), tmp_path, skew_ns=0, max_latency_ns=20 * SEC)
    assert report.ok and report.total().in_gap == 1


def test_until_ignores_frames_sent_after_the_stop(tmp_path: Path) -> None:
    msgs = agg_trades("btcusdt", T0, 50, 10 * MS)
    write_partition(tmp_path, STREAM, msgs[:40])
    report = check_loss(_sent(msgs), tmp_path, until_ns=msgs[39].recv_ns)
    assert report.ok and report.after_end == 10


def test_duplicates_reorders_and_unsent_rows(tmp_path: Path) -> None:
    msgs = agg_trades("btcusdt", T0, 30, 10 * MS)
    # msgs[5] stored twice, msgs[10] and msgs[11] swapped in receive order.
    stored = [*msgs[:6], Message(STREAM, msgs[5].recv_ns + 1, msgs[5].raw, 1, 99),
              *msgs[6:10], Message(STREAM, msgs[10].recv_ns, msgs[11].raw, 1, 10),
              Message(STREAM, msgs[11].recv_ns, msgs[10].raw, 1, 11), *msgs[12:]]
    stored.append(Message(STREAM, msgs[-1].recv_ns + MS, msgs[-1].raw.replace("}", " }"), 1,
                          100))
    write_partition(tmp_path, STREAM, stored)
    total = check_loss(_sent(msgs), tmp_path).total()
    assert (total.duplicates, total.reorders, total.unsent, total.holes) == (1, 1, 1, 0)


def test_overlap_sends_twice_and_backfill_counts(tmp_path: Path) -> None:
    msgs = agg_trades("btcusdt", T0, 40, 10 * MS)
    rest = [Message(STREAM, msgs[-1].recv_ns + SEC, m.raw, 0, i, Source.REST)
            for i, m in enumerate(msgs[10:15])]
    write_partition(tmp_path, STREAM, [*msgs[:10], *msgs[15:], *rest])
    # Two connections carried the same stream during a make-before-break rotation.
    sent = _sent(msgs) + _sent(msgs[30:], conn_id=2)
    report = check_loss(sent, tmp_path)
    total = report.total()
    assert report.ok
    assert (total.sent, total.messages, total.archived, total.backfilled) == (50, 40, 35, 5)


def test_send_log_file_round_trip_and_user_data_skipped(tmp_path: Path) -> None:
    msgs = agg_trades("btcusdt", T0, 10, 10 * MS)
    write_partition(tmp_path / "a", STREAM, msgs)
    path = tmp_path / "sent.ndjson"
    with SendLog(path, keep_in_memory=False) as log:
        log.add(1, SentKind.REPLY, "", '{"result":null,"id":1}', T0 - SEC)
        log.add_batch(1, [(m.stream, m.raw) for m in msgs], T0 - MS, combined=True)
        log.add(2, SentKind.DATA, "userData", orjson.dumps({"e": "ORDER_TRADE_UPDATE"}).decode(),
                T0)
    with open(path, "ab") as f:
        f.write(b'{"conn_id": 3, "seq"')  # torn tail of a killed sim
    report = check_loss(read_send_log(path), tmp_path / "a")
    assert report.ok and report.total().archived == 10 and report.skipped == 1


def test_bad_send_log_line_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "sent.ndjson"
    path.write_text('not json\n{"conn_id":1}\n')
    with pytest.raises(ConfigError, match="line 1"):
        list(read_send_log(path))
