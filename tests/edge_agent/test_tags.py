"""Tag meaning: classification by EPC pattern, cross reads, aggregation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.config.rfid import AsciiRfidConfig, CrossReadRule, TagLengths, TagPatterns
from edge_agent.domain import TagKind, TagRead
from edge_agent.tags import classify, is_cross_read, length_problem, matches, summarise

PATTERNS = TagPatterns(fast_card=("35",), conveyance=("30", "E2801160"), eseal=("3A", "E28011??99"))


@pytest.mark.parametrize(
    ("epc", "kind"),
    [
        ("350000000000000000000001", TagKind.FAST_CARD),
        ("300833B2DDD9014000000001", TagKind.CONVEYANCE),
        ("3a0000000000000000000042", TagKind.ESEAL),  # lower case accepted
        ("E28011600000000000000001", TagKind.CONVEYANCE),
        ("E2801160990000000000ABCD", TagKind.ESEAL),  # both match: the longer (more specific) pattern wins
        ("E2801111990000000000ABCD", TagKind.ESEAL),  # '?' matches any nibble
        ("E2801111980000000000ABCD", TagKind.UNKNOWN),
        ("AD00", TagKind.UNKNOWN),
        ("3", TagKind.UNKNOWN),  # shorter than every pattern
    ],
)
def test_classify(epc: str, kind: TagKind) -> None:
    assert classify(epc, PATTERNS) is kind


def test_pattern_validation_names_the_pattern() -> None:
    with pytest.raises(ValueError, match="'3g'"):
        TagPatterns(fast_card=("3g",))


def test_matches_wildcards() -> None:
    assert matches("ABCD", "A?C")
    assert not matches("ABCD", "A?D")
    assert not matches("AB", "ABC")


def _read(epc: str = "3A01", antenna: int = 1, rssi: float = -50.0, mono: float = 10.0) -> TagRead:
    return TagRead(epc=epc, antenna=antenna, rssi_dbm=rssi, mono=mono)


def test_cross_read_rule() -> None:
    rule = CrossReadRule(min_rssi_dbm=-70.0, adjacent_antennas=(4,))
    assert not is_cross_read(_read(rssi=-70.0), rule)
    assert is_cross_read(_read(rssi=-70.5), rule)
    assert is_cross_read(_read(antenna=4, rssi=-30.0), rule)
    assert not is_cross_read(_read(antenna=3), rule)


def test_summarise_collapses_reads() -> None:
    s = summarise(None, _read(mono=10.0, rssi=-60.0), TagKind.ESEAL)
    assert (s.count, s.first_mono, s.last_mono, s.seal_id) == (1, 10.0, 10.0, "3A01")
    s2 = summarise(s, _read(antenna=2, mono=11.5, rssi=-48.0), TagKind.ESEAL)
    s3 = summarise(s2, _read(mono=9.0, rssi=-65.0), TagKind.ESEAL)  # late-delivered earlier read
    assert (s3.count, s3.first_mono, s3.last_mono, s3.peak_rssi_dbm) == (3, 9.0, 11.5, -48.0)
    assert s3.antennas == frozenset({1, 2})
    assert s.count == 1  # the input summary is not mutated
    assert summarise(None, _read(epc="3001"), TagKind.CONVEYANCE).seal_id is None
    with pytest.raises(ValueError, match="3001"):
        summarise(s, _read(epc="3001"), TagKind.ESEAL)


@given(st.lists(st.tuples(st.floats(0, 1e6), st.floats(-100, 0), st.integers(1, 4)), min_size=1, max_size=30))
def test_summary_is_order_independent(reads: list[tuple[float, float, int]]) -> None:
    def fold(items: list[tuple[float, float, int]]) -> tuple[object, ...]:
        s = None
        for mono, rssi, ant in items:
            s = summarise(s, _read(mono=mono, rssi=rssi, antenna=ant), TagKind.ESEAL)
        assert s is not None
        return (s.count, s.first_mono, s.last_mono, s.peak_rssi_dbm, s.antennas)

    assert fold(reads) == fold(list(reversed(reads)))
    assert fold(reads)[0] == len(reads)


def test_a_kind_of_tag_has_the_epc_lengths_configured_for_it() -> None:
    assert length_problem("3A" + "0" * 22, PATTERNS) is None  # EPC-96 seal
    long_seal = length_problem("3A" + "0" * 122, PATTERNS)  # a 62-byte "seal"
    assert long_seal == "eseal EPC of 496 bits; this kind has 96 bits"
    assert length_problem("AD00", PATTERNS) == "unknown EPC of 16 bits; this kind has 96 to 496 bits"
    wide = TagPatterns(eseal=("3A",), epc_bits=TagLengths(eseal=(96, 128)))
    assert length_problem("3A" + "0" * 30, wide) is None


@pytest.mark.parametrize("bits", [[100], [512], [0], []])
def test_epc_lengths_are_whole_gen2_words(bits: list[int]) -> None:
    with pytest.raises(ValueError, match="eseal"):
        TagLengths.model_validate({"eseal": bits})


def test_an_ascii_reader_default_antenna_is_one_of_its_ports() -> None:
    with pytest.raises(ValueError, match="default_antenna 5 is not one of antennas"):
        AsciiRfidConfig(port="loop://", default_antenna=5)
