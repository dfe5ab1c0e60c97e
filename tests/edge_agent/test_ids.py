import time
import uuid

from edge_agent.ids import new_id, uuid7


def test_ids_are_version_7_and_sort_in_creation_order() -> None:
    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    u = uuid.UUID(ids[0])
    assert u.version == 7 and u.variant == uuid.RFC_4122


def test_timestamp_is_the_leading_48_bits() -> None:
    future_ms = int(time.time() * 1000) + 10_000_000
    assert uuid7(now_ms=future_ms).int >> 80 == future_ms


def test_a_clock_step_backwards_still_increases() -> None:
    a = uuid7()
    b = uuid7(now_ms=1)  # wall clock stepped back (NTP): ids must not go backwards
    assert str(a) < str(b)
