"""Register maps: encode/decode round trips per type and word order, read planning."""

from __future__ import annotations

import itertools
import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.modbus.regmap import (
    MAX_BITS_PER_READ,
    MAX_REGISTERS_PER_READ,
    Point,
    PointType,
    RegisterMapError,
    Table,
    check_unique,
    decode,
    decode_value,
    encode_value,
    image_of,
    plan_reads,
)

RANGES = {
    PointType.U16: (0, 0xFFFF),
    PointType.I16: (-0x8000, 0x7FFF),
    PointType.U32: (0, 0xFFFFFFFF),
    PointType.I32: (-0x80000000, 0x7FFFFFFF),
}
orders = st.sampled_from(["big", "little"])


@given(st.sampled_from(list(RANGES)), orders, st.data())
def test_integer_round_trip(kind: PointType, order: str, data: st.DataObject) -> None:
    lo, hi = RANGES[kind]
    value = data.draw(st.integers(lo, hi))
    p = Point("x", Table.HOLDING, 10, kind, order)
    words = encode_value(p, value)
    assert len(words) == p.width
    assert all(0 <= w <= 0xFFFF for w in words)
    assert decode_value(p, words) == value


@given(orders, st.floats(width=32, allow_nan=False))
def test_f32_round_trip(order: str, value: float) -> None:
    p = Point("x", Table.INPUT, 0, PointType.F32, order)
    assert decode_value(p, encode_value(p, value)) == value


def test_word_order_is_cdab_for_little() -> None:
    big = Point("x", Table.HOLDING, 0, PointType.U32, "big")
    little = Point("x", Table.HOLDING, 0, PointType.U32, "little")
    assert encode_value(big, 0x12345678) == [0x1234, 0x5678]
    assert encode_value(little, 0x12345678) == [0x5678, 0x1234]
    # bytes inside a register stay big-endian: 1.0f is 3F80 0000
    f = Point("f", Table.HOLDING, 0, PointType.F32, "little")
    assert encode_value(f, 1.0) == [0x0000, 0x3F80]


@given(
    st.sampled_from([PointType.U16, PointType.I16, PointType.U32, PointType.I32]),
    st.sampled_from([0.1, 0.01, 10.0, 0.5]),
    st.sampled_from([0.0, -40.0, 3.5]),
    st.data(),
)
def test_scaled_round_trip(kind: PointType, scale: float, offset: float, data: st.DataObject) -> None:
    lo, hi = RANGES[kind]
    raw = data.draw(st.integers(lo, hi))
    p = Point("x", Table.HOLDING, 0, kind, scale=scale, offset=offset)
    value = raw * scale + offset
    decoded = decode_value(p, encode_value(p, value))
    assert isinstance(decoded, float)
    assert math.isclose(decoded, value, rel_tol=1e-9, abs_tol=1e-6)


printable = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


@given(st.text(alphabet=printable, max_size=20), st.integers(1, 20))
def test_string_round_trip(text: str, length: int) -> None:
    p = Point("s", Table.HOLDING, 0, PointType.STRING, length=length)
    if len(text) > length:
        with pytest.raises(ValueError, match="exceed"):
            encode_value(p, text)
        return
    assert decode_value(p, encode_value(p, text)) == text


def test_bool_points() -> None:
    coil = Point("c", Table.COIL, 3, PointType.BOOL)
    assert encode_value(coil, True) == [1]
    assert decode_value(coil, [0]) is False
    bit = Point("b", Table.INPUT, 0, PointType.BOOL, bit=3)
    assert encode_value(bit, True) == [8]
    assert decode_value(bit, [0b1000]) is True
    assert decode_value(bit, [0b0111]) is False


def test_out_of_range_values_are_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        encode_value(Point("x", Table.HOLDING, 0, PointType.U16), 70000)
    with pytest.raises(ValueError, match="does not fit"):
        encode_value(Point("x", Table.HOLDING, 0, PointType.U16), -1)
    with pytest.raises(ValueError, match="number"):
        encode_value(Point("x", Table.HOLDING, 0, PointType.U16), "12")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"table": Table.COIL, "type": PointType.U16}, "must be of type bool"),
        ({"type": PointType.STRING}, "length"),
        ({"type": PointType.U16, "bit": 2}, "bit"),
        ({"address": 70000}, "address"),
        ({"address": 65535, "type": PointType.U32}, "past address"),
        ({"scale": 0.0}, "scale"),
        ({"word_order": "middle"}, "word_order"),
    ],
)
def test_inconsistent_points_are_refused(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"name": "p", "table": Table.HOLDING, "address": 0} | kwargs
    with pytest.raises(RegisterMapError, match=message):
        Point(**args)  # type: ignore[arg-type]


def test_plan_merges_contiguous_and_small_gaps_per_table() -> None:
    pts = [
        Point("a", Table.HOLDING, 0),
        Point("b", Table.HOLDING, 1, PointType.U32),
        Point("c", Table.HOLDING, 10),  # gap of 7 after b (3..9)
        Point("d", Table.HOLDING, 40),  # gap of 29: new request
        Point("e", Table.INPUT, 0),
        Point("f", Table.COIL, 5, PointType.BOOL),
        Point("g", Table.COIL, 6, PointType.BOOL),
    ]
    plan = plan_reads(pts, max_gap=8)
    assert [(r.table, r.address, r.count) for r in plan] == [
        (Table.COIL, 5, 2),
        (Table.HOLDING, 0, 11),
        (Table.HOLDING, 40, 1),
        (Table.INPUT, 0, 1),
    ]
    assert [(r.table, r.address, r.count) for r in plan_reads(pts, max_gap=0)][1:3] == [
        (Table.HOLDING, 0, 3),
        (Table.HOLDING, 10, 1),
    ]


def test_plan_respects_the_request_limit() -> None:
    pts = [Point(f"r{i}", Table.HOLDING, i) for i in range(300)]
    plan = plan_reads(pts)
    assert [r.count for r in plan] == [125, 125, 50]
    with pytest.raises(RegisterMapError, match="exceed one request"):
        plan_reads([Point("s", Table.HOLDING, 0, PointType.STRING, length=252)])


point_strategy = st.builds(
    lambda table, address, kind: Point(
        f"p{address}{table.value}{kind.value}", table, address, PointType.BOOL if table.is_bits else kind
    ),
    st.sampled_from(list(Table)),
    st.integers(0, 3000),
    st.sampled_from([PointType.U16, PointType.U32, PointType.F32, PointType.I16]),
)


@settings(max_examples=200)
@given(st.lists(point_strategy, max_size=40), st.integers(0, 20))
def test_plan_covers_every_point_within_limits(points: list[Point], gap: int) -> None:
    plan = plan_reads(points, max_gap=gap)
    for req in plan:
        assert req.count <= (MAX_BITS_PER_READ if req.table.is_bits else MAX_REGISTERS_PER_READ)
        for p in req.points:
            assert req.address <= p.address
            assert p.end <= req.end
            assert p.table is req.table
    assert sorted(id(p) for r in plan for p in r.points) == sorted(id(p) for p in points)
    # requests of one table never overlap and are in address order
    for a, b in itertools.pairwise(plan):
        if a.table is b.table:
            assert a.end <= b.address


def test_decode_through_an_image() -> None:
    speed = Point("speed", Table.INPUT, 15, PointType.F32, "little", unit="km/h")
    gross = Point("gross", Table.INPUT, 19, PointType.U32, unit="kg")
    flag = Point("fault", Table.INPUT, 0, PointType.BOOL, bit=0)
    f = struct.unpack(">HH", struct.pack(">f", 12.5))
    image = {Table.INPUT: {0: 1, 15: f[1], 16: f[0], 19: 0, 20: 36_000}}
    assert decode([speed, gross, flag], image) == {"speed": 12.5, "gross": 36_000, "fault": True}
    with pytest.raises(RegisterMapError, match="was not read"):
        decode([Point("x", Table.HOLDING, 0)], image)


def test_image_of_requests() -> None:
    plan = plan_reads([Point("a", Table.HOLDING, 4), Point("b", Table.COIL, 1, PointType.BOOL)])
    assert [r.table for r in plan] == [Table.COIL, Table.HOLDING]
    image = image_of(plan, [[1, 0], [7]])
    assert image[Table.HOLDING] == {4: 7}
    assert image[Table.COIL] == {1: 1}
    with pytest.raises(ValueError, match="values for"):
        image_of(plan, [[], []])


def test_names_must_be_unique() -> None:
    check_unique([Point("a", Table.HOLDING, 0), Point("b", Table.HOLDING, 1)])
    with pytest.raises(RegisterMapError, match="twice"):
        check_unique([Point("a", Table.HOLDING, 0), Point("a", Table.INPUT, 1)])
