import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.codes import check_digit, container_valid, normalise_container, normalise_plate


@pytest.mark.parametrize("code", ["CSQU3054383", "MWCU6059784", "BICU1234565"])
def test_published_container_codes_are_valid(code: str) -> None:
    assert container_valid(code)


@pytest.mark.parametrize("code", ["CSQU3054384", "CSQX3054383", "CSQU305438", "csqu3054383", ""])
def test_wrong_digit_category_length_or_case_is_invalid(code: str) -> None:
    assert not container_valid(code)


def test_normalise_container_drops_separators() -> None:
    assert normalise_container("csqu 305438-3") == "CSQU3054383"


@given(st.from_regex(r"[A-Z]{3}[UJZ][0-9]{6}", fullmatch=True))
def test_any_single_digit_change_breaks_the_check(code10: str) -> None:
    good = code10 + str(check_digit(code10))
    assert container_valid(good)
    bad = code10 + str((check_digit(code10) + 1) % 10)
    assert not container_valid(bad)


def test_check_digit_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="10 characters"):
        check_digit("ABC")
    with pytest.raises(ValueError, match="invalid character"):
        check_digit("AB!U123456")


@pytest.mark.parametrize(
    ("raw", "want"),
    [("abc-123", "ABC123"), (" 7 XYZ 99 ", "7XYZ99"), ("--", None), ("ABCDEFGHIJ", "ABCDEFGH")],
)
def test_normalise_plate(raw: str, want: str | None) -> None:
    assert normalise_plate(raw) == want
