"""The gap detector's text scan of ``a``/``u``/``pu`` agrees with a full JSON decode."""

from __future__ import annotations

import itertools

import orjson
import pytest

from recorder._gaps import _int_field, _scan_int

NEEDLES = [('"a":', "a"), ('"u":', "u"), ('"pu":', "pu")]
AGG = ('{"e":"aggTrade","E":1700000000123,"a":5933014,"s":"BTCUSDT","p":"0.001",'
       '"q":"100","nq":"100","f":100,"l":105,"T":1700000000120,"m":true}')
DEPTH = ('{"e":"depthUpdate","E":123456789,"T":123456788,"s":"BTCUSDT","U":157,"u":160,'
         '"pu":149,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}')
TRICKY = [
    AGG, DEPTH,
    '{"a":-3}', '{"a":0}', '{"a":1.5}', '{"a":true}', '{"a":"7"}', '{"a":07}',
    '{"x":{"a":1},"a":2}', '{"a":1,"a":2}', '{"s":"\\"a\\":9","a":4}', '{"s":",\\"a\\":9"}',
    '{"b":[1,{"a":5}],"a":6}', '{"a":5,"b":{"a":6}}', '{"u":1,"pu":0}', '{"pu":3,"u":4}',
    '{"a":}', '{"a":5', '[{"a":1}]', '{"a" :5}', '{"a":5 }', '{"a":12345678901234567890}',
]


@pytest.mark.parametrize("raw", TRICKY)
def test_scan_matches_decode_whenever_it_answers(raw: str) -> None:
    for needle, key in NEEDLES:
        got = _scan_int(raw, needle)
        if got is None:
            continue  # the detector decodes the payload instead
        assert got == _int_field(orjson.loads(raw), key), (raw, key)


def test_binance_payloads_take_the_scan() -> None:
    assert _scan_int(AGG, '"a":') == orjson.loads(AGG)["a"]
    depth = orjson.loads(DEPTH)
    assert (_scan_int(DEPTH, '"u":'), _scan_int(DEPTH, '"pu":')) == (depth["u"], depth["pu"])


def test_scan_matches_decode_on_generated_objects() -> None:
    tokens = ['"a":', '"pu":', "1", ",", "-", "0", "{", "}", "[", "]", '"x"', '"a"', ":", "12"]
    checked = 0
    for n in range(1, 5):
        for combo in itertools.product(tokens, repeat=n):
            raw = "{" + "".join(combo) + "}"
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            for needle, key in NEEDLES:
                got = _scan_int(raw, needle)
                if got is not None:
                    checked += 1
                    assert got == _int_field(data, key), (raw, key)
    assert checked > 0
