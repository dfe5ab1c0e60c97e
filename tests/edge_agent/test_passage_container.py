"""The passage's container code once voted: right or absent."""

from __future__ import annotations

from datetime import UTC, datetime

from edge_agent.container_code import vote
from edge_agent.domain import ContainerRead, Passage

A, B = "CSQU3054383", "MSKU9070323"  # both pass their check digit


def _passage(*reads: ContainerRead) -> Passage:
    when = datetime(2026, 12, 1, tzinfo=UTC)
    return Passage("p1", 0.0, when, containers=reads, container_vote=vote(reads, 0.0))


def _read(code: str, ok: bool, conf: float = 0.9) -> ContainerRead:
    return ContainerRead(code, ok, conf, "cam", 1.0)


def test_the_code_most_frames_agree_on_is_the_passage_s() -> None:
    best = _passage(_read(A, True), _read(B, True, 0.99), _read(A, True)).best_container
    assert best is not None and (best.code, best.check_ok) == (A, True)


def test_two_valid_codes_read_as_often_leave_the_passage_unread() -> None:
    assert _passage(_read(A, True), _read(B, True)).best_container is None


def test_reads_that_all_failed_the_check_digit_say_so() -> None:
    best = _passage(_read("CSQU3054384", False, 0.7), _read("CSQU3054385", False, 0.8)).best_container
    assert best is not None and (best.code, best.check_ok) == ("CSQU3054385", False)


def test_an_invalid_read_never_outvotes_a_valid_one() -> None:
    best = _passage(_read("CSQU3054384", False, 0.99), _read(A, True, 0.6)).best_container
    assert best is not None and best.code == A


def test_no_reads_no_container() -> None:
    assert _passage().best_container is None
