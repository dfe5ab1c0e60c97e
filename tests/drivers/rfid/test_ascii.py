"""ASCII line readers: parsing, bad lines, robustness."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.rfid.ascii import AsciiTag, LineParser, encode_line, parse_line


def test_lines_with_and_without_antenna_and_rssi() -> None:
    p = LineParser()
    got = p.feed(b"300833b2ddd9014000000001\r\n3500AABB,2,-61.5\n\n")
    assert got == [AsciiTag("300833B2DDD9014000000001", None, None), AsciiTag("3500AABB", 2, -61.5)]
    assert (p.lines, p.bad_lines, p.junk_bytes) == (2, 0, 0)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("XYZ", "EPC 'XYZ' is not 2-62 bytes of hex"),
        ("ABC", "EPC 'ABC' is not 2-62 bytes of hex"),
        ("AABB,1", "2 fields, expected EPC or EPC,antenna,rssi"),
        ("AABB,0,-50", "antenna '0' is not 1-64"),
        ("AABB,x,-50", "antenna 'x' is not 1-64"),
        ("AABB,1,loud", "rssi 'loud' is not a number"),
        ("AABB,1,nan", "rssi nan dBm out of range"),
        ("AABB,1,300", "rssi 300.0 dBm out of range"),
    ],
)
def test_bad_lines_are_reasons(line: str, reason: str) -> None:
    assert parse_line(line) == reason


def test_bad_line_counted_and_parser_continues() -> None:
    p = LineParser()
    got = p.feed(b"AABB,1,loud\n\xff\xfe\nCCDD,1,-40\n")
    assert got == [AsciiTag("CCDD", 1, -40.0)]
    assert p.bad_lines == 2
    assert p.last_error == "non-ASCII bytes"
    assert p.junk_bytes == 2


def test_overlong_line_dropped_to_next_newline() -> None:
    p = LineParser(max_line=16)
    got = p.feed(b"A" * 20)
    got += p.feed(b"B" * 20 + b"\nAABB\n")
    assert got == [AsciiTag("AABB", None, None)]
    assert p.bad_lines == 1
    assert p.junk_bytes == 41


def test_encode_line_round_trip_and_errors() -> None:
    assert LineParser().feed(encode_line("aabb", 3, -55.5)) == [AsciiTag("AABB", 3, -55.5)]
    with pytest.raises(ValueError, match="hex"):
        encode_line("nothex")
    with pytest.raises(ValueError, match="both"):
        encode_line("AABB", 1)


@given(st.binary(max_size=1500))
@settings(max_examples=200)
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    p = LineParser()
    p.feed(data)
    assert p.junk_bytes <= len(data)


@given(
    st.lists(
        st.tuples(
            st.binary(min_size=2, max_size=20).filter(lambda b: len(b) % 2 == 0),
            st.integers(1, 64),
            st.integers(-120, 0),
        ),
        min_size=1,
        max_size=8,
    ),
    st.integers(1, 7),
)
def test_lines_split_anywhere_parse_identically(reads: list[tuple[bytes, int, int]], step: int) -> None:
    stream = b"".join(encode_line(e.hex(), a, float(r)) for e, a, r in reads)
    whole = LineParser().feed(stream)
    assert whole == [AsciiTag(e.hex().upper(), a, float(r)) for e, a, r in reads]
    p = LineParser()
    got = [t for i in range(0, len(stream), step) for t in p.feed(stream[i : i + step])]
    assert got == whole
