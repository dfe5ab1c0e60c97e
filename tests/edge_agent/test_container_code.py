import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.container_code import (
    DIGIT_FOR_LETTER,
    LETTER_FOR_DIGIT,
    ContainerCode,
    ContainerVote,
    Correction,
    Rejected,
    normalise,
    validate,
    validate_size_type,
    vote,
)
from edge_agent.domain import ContainerRead

# Written out from the standard, independently of edge_agent.codes: A=10, multiples of 11 skipped.
VALUE = {
    **{d: int(d) for d in string.digits},
    **dict(zip("ABCDEFGHIJK", [10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21], strict=True)),
    **dict(zip("LMNOPQRSTU", range(23, 33), strict=True)),
    **dict(zip("VWXYZ", range(34, 39), strict=True)),
}
ALPHABET = string.ascii_uppercase + string.digits


def remainder(code10: str) -> int:
    return sum(VALUE[ch] << i for i, ch in enumerate(code10)) % 11


def is_valid(code: str) -> bool:
    """Independent oracle: well-formed and the check digit agrees."""
    well_formed = (
        len(code) == 11
        and all(c in string.ascii_uppercase for c in code[:3])
        and code[3] in "UJZ"
        and code[4:].isdigit()
        and code[4:].isascii()
    )
    return well_formed and remainder(code[:10]) % 10 == int(code[10])


def make(code10: str) -> str:
    return code10 + str(remainder(code10) % 10)


def same_kind(a: str, b: str) -> bool:
    return a.isdigit() == b.isdigit()


valid_codes = st.builds(
    lambda owner, cat, serial: make(owner + cat + serial),
    st.text(string.ascii_uppercase, min_size=3, max_size=3),
    st.sampled_from("UJZ"),
    st.text(string.digits, min_size=6, max_size=6),
)

PUBLISHED = ["CSQU3054383", "MWCU6059784", "BICU1234565"]
# a J and a Z code, one whose check digit 0 stands for remainder 0 and one for remainder 10
EXHAUSTIVE = [*PUBLISHED, make("OSBJ215800"), make("ZIPZ508112"), "ABCU0000090", "ABCU0000070", "ABCU0000110"]


def test_exhaustive_codes_are_what_they_claim() -> None:
    assert all(is_valid(c) for c in EXHAUSTIVE)
    assert remainder("ABCU000009") == 0
    assert remainder("ABCU000007") == remainder("ABCU000011") == 10


@pytest.mark.parametrize("code", PUBLISHED)
def test_published_codes_are_accepted_unchanged(code: str) -> None:
    assert validate(code) == ContainerCode(code)


@given(valid_codes)
def test_every_valid_code_is_accepted_unchanged(code: str) -> None:
    result = validate(code)
    assert result == ContainerCode(code)
    assert (result.owner, result.category, result.serial) == (code[:3], code[3], code[4:10])


@pytest.mark.parametrize(
    "raw", ["csqu 305438 3", "CSQU-305438-3", "CSQU.305438[3]", "CSQU 305438 │3│", "CSQU 305438 □3"]
)
def test_separators_case_and_check_digit_box_are_normalised_away(raw: str) -> None:
    assert validate(raw) == ContainerCode("CSQU3054383")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("CSQU305438", "length 10, need 11"),
        ("CSQU3054383 45G1", "length 15, need 11"),
        ("", "length 0, need 11"),
        ("CSQX3054383", "position 4: category must be U, J or Z, read 'X'"),
        ("CSQ03054383", "position 4: category must be U, J or Z, read '0'"),
        ("C3QU3054383", "position 2: owner code must be a letter, read '3'"),
        ("CSQU30A4383", "position 7: serial must be a digit, read 'A'"),
        ("CSQU305438X", "position 11: check digit must be a digit, read 'X'"),
        ("CSQU30#4383", "position 7: serial must be a digit, read '#'"),
        ("CSQU3054384", "check digit: read 4, computed 3"),
        ("CSQU305O383", "check digit: read 3, computed 8 (with position 8 'O' read as '0')"),
        ("C5QU3054383", "position 2: read '5', the check digit agrees with 'S' and also with 'I'"),
        ("C5QU30S4383", "positions 2 ('5'), 7 ('S'): more than one correction, the check digit confirms one"),
    ],
)
def test_rejections_say_why(raw: str, reason: str) -> None:
    assert validate(raw) == Rejected(reason, normalise(raw))


@pytest.mark.parametrize(
    ("raw", "fix"),
    [
        ("CSQU30S4383", Correction(7, "S", "5")),
        ("CSQU305438B", None),  # B stands for 8, but the check digit is 3
        ("BICU123456S", Correction(11, "S", "5")),
        ("MWCU6O59784", Correction(6, "O", "0")),
        ("BICUI234565", Correction(5, "I", "1")),
        ("BICU1234S6S", None),
    ],
)
def test_a_letter_in_the_serial_is_corrected_only_when_confirmed(raw: str, fix: Correction | None) -> None:
    result = validate(raw)
    if fix is None:
        assert isinstance(result, Rejected)
    else:
        assert result == ContainerCode(raw[: fix.position - 1] + fix.corrected + raw[fix.position :], fix)
        assert is_valid(result.code)


def test_a_two_read_as_the_category_is_corrected_to_z() -> None:
    code = make("ZIPZ508112")
    assert validate(code[:3] + "2" + code[4:]) == ContainerCode(code, Correction(4, "2", "Z"))


def test_a_digit_in_the_owner_code_is_never_corrected() -> None:
    # the check digit cannot tell O from E and Y: every letter shares its remainder with another
    code = make("OSBJ215800")
    for i, digit in ((0, "0"), (1, "5"), (2, "8")):
        assert isinstance(validate(code[:i] + digit + code[i + 1 :]), Rejected)
    by_remainder: dict[int, list[str]] = {}
    for letter in string.ascii_uppercase:
        by_remainder.setdefault(VALUE[letter] % 11, []).append(letter)
    assert all(len(group) >= 2 for group in by_remainder.values())


def test_check_digit_zero_for_remainder_ten_cannot_confirm_a_serial_correction() -> None:
    # ABCU0000110: remainder 10 checks as 0; a 3 in position 10 gives remainder 0, which checks as 0 too
    code = "ABCU0000110"
    assert [d for d in string.digits if is_valid(code[:9] + d + code[10])] == ["1", "3"]
    assert validate(code[:9] + "I" + code[10]) == Rejected(
        "position 10: read 'I', the check digit agrees with '1' and also with '3'", "ABCU00001I0"
    )


def classify(original: str, position: int, ch: str) -> str:
    """What a single substitution of ``original`` did: 'rejected', 'corrected' or 'undetected'."""
    read = original[:position] + ch + original[position + 1 :]
    result = validate(read)
    if isinstance(result, Rejected):
        return "rejected"
    if result.correction is not None:
        # a correction lands on what was painted, and only from its confusable partner of the wrong kind
        assert result.code == original, (read, result)
        assert result.correction == Correction(position + 1, ch, original[position])
        assert not same_kind(ch, original[position])
        assert {**LETTER_FOR_DIGIT, **DIGIT_FOR_LETTER}[ch] == original[position]
        return "corrected"
    # accepted unchanged: only possible when the substitution itself is a valid code the check digit misses
    assert result.code == read
    assert is_valid(read)
    assert same_kind(ch, original[position])
    return "undetected"


def check_all_substitutions(original: str) -> dict[str, int]:
    seen: dict[str, int] = {"rejected": 0, "corrected": 0, "undetected": 0}
    for position in range(11):
        for ch in ALPHABET:
            if ch != original[position]:
                outcome = classify(original, position, ch)
                seen[outcome] += 1
                if outcome == "undetected":
                    a, b = original[position], ch
                    blind_letters = position < 3 and (VALUE[a] - VALUE[b]) % 11 == 0
                    blind_ten = original[10] == "0" and {
                        remainder(original[:10]),
                        remainder((original[:position] + ch + original[position + 1 :])[:10]),
                    } == {0, 10}
                    assert blind_letters or blind_ten, (original, position, ch)
    return seen


@pytest.mark.parametrize("code", EXHAUSTIVE)
def test_every_single_substitution_is_rejected_corrected_back_or_a_known_blind_spot(code: str) -> None:
    seen = check_all_substitutions(code)
    assert sum(seen.values()) == 11 * 35
    assert seen["rejected"] > 300


def test_the_substitution_check_sees_corrections_and_blind_spots() -> None:
    # the classifier above is not vacuous: CSQU3054383 has serial 5/0/8 and check 3, so S, O, B are corrected
    seen = check_all_substitutions("CSQU3054383")
    assert seen["corrected"] == 3  # O at 6 (0), S at 7 (5), B at 10 (8)
    # owner letters 11 or 22 apart in value: C=13, M=24 and W=35; S=30 and I=19; Q=28 and G=17
    assert seen["undetected"] == 4
    assert validate("MSQU3054383") == ContainerCode("MSQU3054383")


@given(valid_codes, st.integers(0, 10), st.sampled_from(ALPHABET))
def test_sampled_single_substitutions_are_never_corrected_into_another_code(
    code: str, position: int, ch: str
) -> None:
    if ch != code[position]:
        classify(code, position, ch)


@given(valid_codes, st.integers(4, 10))
def test_a_confusable_letter_in_the_serial_is_corrected_back_unless_check_zero(
    code: str, position: int
) -> None:
    digit = code[position]
    if digit not in LETTER_FOR_DIGIT:
        return
    result = validate(code[:position] + LETTER_FOR_DIGIT[digit] + code[position + 1 :])
    if code[10] != "0":  # only the remainder-10 fold can leave a second digit that agrees
        assert result == ContainerCode(code, Correction(position + 1, LETTER_FOR_DIGIT[digit], digit))


@given(st.text(ALPHABET, min_size=11, max_size=11))
def test_any_accepted_read_is_valid_and_at_most_one_confusable_from_the_input(raw: str) -> None:
    result = validate(raw)
    if isinstance(result, ContainerCode):
        assert is_valid(result.code)
        diff = [i for i in range(11) if raw[i] != result.code[i]]
        if result.correction is None:
            assert diff == []
        else:
            assert diff == [result.correction.position - 1]


def transpositions(code: str) -> list[tuple[int, str]]:
    return [
        (i, code[:i] + code[i + 1] + code[i] + code[i + 2 :]) for i in range(10) if code[i] != code[i + 1]
    ]


@pytest.mark.parametrize("code", EXHAUSTIVE)
def test_adjacent_transpositions_are_rejected_or_a_blind_spot_never_a_correction(code: str) -> None:
    for _, swapped in transpositions(code):
        result = validate(swapped)
        if isinstance(result, ContainerCode):
            assert result.correction is None, (swapped, result)
            assert result.code == swapped
            assert is_valid(swapped)


@given(valid_codes)
def test_sampled_transpositions_never_create_a_code_by_correcting(code: str) -> None:
    for _, swapped in transpositions(code):
        result = validate(swapped)
        assert isinstance(result, Rejected) or (result.correction is None and result.code == swapped)


def test_a_transposition_the_check_digit_cannot_see_reads_as_the_other_code() -> None:
    # A=10 and K=21 are 11 apart: swapping them leaves the sum's remainder unchanged (documented limit)
    code = make("AKCU123456")
    swapped = "KA" + code[2:]
    assert is_valid(swapped)
    assert validate(swapped) == ContainerCode(swapped)
    # a category/serial swap needs two corrections, so it is unread even when it would check
    z_code = make("ABCZ212345")
    assert isinstance(validate(z_code[:3] + "2Z" + z_code[5:]), Rejected)


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("45G1", "45G1"),
        ("22G1", "22G1"),
        ("22R1", "22R1"),
        ("L5G1", "L5G1"),
        ("45 g1", "45G1"),
        ("45GI", "45G1"),
        ("22TO", "22T0"),
        ("4561", None),  # a digit where the group letter goes: 6 for G is not one of the pairs
        ("4551", None),
        ("45X1", None),
        ("05G1", None),
        ("4IG1", None),
        ("45GA", None),
        ("45G", None),
        ("45G1X", None),
        ("", None),
    ],
)
def test_size_type(raw: str, want: str | None) -> None:
    assert validate_size_type(raw) == want


@given(
    st.sampled_from("1234ABCDEFGHKLMNP"),
    st.sampled_from("0245689CDEFLMNP"),
    st.sampled_from("GVBSRHUPTAK"),
    st.sampled_from(string.digits),
)
def test_every_table_size_type_is_accepted(length: str, height: str, group: str, detail: str) -> None:
    assert validate_size_type(length + height + group + detail) == length + height + group + detail


def read(code: str, confidence: float = 0.9, *, check_ok: bool = True, mono: float = 0.0) -> ContainerRead:
    return ContainerRead(code, check_ok, confidence, "container-cam", mono)


A, B = "CSQU3054383", "MWCU6059784"


def test_vote_majority_wins_with_mean_confidence_of_agreeing_reads() -> None:
    reads = [read(A, 0.8), read(B, 0.99), read(A, 0.9, mono=1.0), read(A, 0.7)]
    result = vote(reads, 0.5)
    assert result == ContainerVote(A, 0.8, 4, 3, 0, reads[2])
    assert result.to_payload() == {"frames": 4, "agreeing": 3, "rejected": 0}


def test_vote_tie_between_valid_codes_is_unread() -> None:
    assert vote([read(A), read(B), read(A), read(B)], 0.5) == ContainerVote(None, None, 4, 0, 0)


def test_vote_ignores_reads_below_the_floor() -> None:
    # below the floor, B's two reads would beat A's one
    reads = [read(A, 0.6), read(B, 0.4), read(B, 0.3)]
    assert vote(reads, 0.5) == ContainerVote(A, 0.6, 3, 1, 2, reads[0])
    assert vote(reads, 0.3).code == B


def test_vote_ignores_invalid_reads_even_when_they_claim_check_ok() -> None:
    reads = [
        read(A),
        read("CSQU3054384"),
        read("CSQU3054384"),
        read(B, check_ok=False),
        read(B, check_ok=False),
    ]
    assert vote(reads, 0.5) == ContainerVote(A, 0.9, 5, 1, 4, reads[0])


def test_vote_without_counted_reads_is_unread() -> None:
    assert vote([], 0.5) == ContainerVote(None, None, 0, 0, 0)
    assert vote([read(A, float("nan"))], 0.5) == ContainerVote(None, None, 1, 0, 1)
