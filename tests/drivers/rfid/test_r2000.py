"""R2000 frames: known bytes, decoding, and properties of the streaming parser."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.rfid import r2000
from drivers.rfid.r2000 import Cmd, FrameParser


def test_documented_example_frame() -> None:
    assert r2000.real_time_inventory(0x01, 1) == bytes.fromhex("A0 04 01 89 01 D1")


def test_checksum_makes_byte_sum_zero() -> None:
    frame = r2000.session_inventory(0xFF, 2, "B", 3)
    assert sum(frame) & 0xFF == 0
    assert frame[:4] == bytes((0xA0, 6, 0xFF, 0x8B))
    assert frame[4:7] == bytes((2, 1, 3))


def test_command_encoders() -> None:
    assert r2000.set_work_antenna(1, 3)[4] == 2  # 0-based on the wire
    assert r2000.set_rf_power(1, 30)[4] == 30
    assert r2000.get_firmware_version(1)[1] == 3
    bad: list[Callable[[], bytes]] = [
        lambda: r2000.set_work_antenna(1, 5),
        lambda: r2000.set_rf_power(1, 34),
        lambda: r2000.session_inventory(1, 4, "A"),
        lambda: r2000.real_time_inventory(1, 0),
        lambda: r2000.encode_frame(256, 1),
        lambda: r2000.encode_frame(1, 1, bytes(253)),
    ]
    for call in bad:
        with pytest.raises(ValueError, match=r"\d"):
            call()


def test_tag_report_decodes() -> None:
    raw = r2000.encode_tag_report(1, Cmd.REAL_TIME_INVENTORY, 3, "300833b2ddd9014000000001", -47.0, freq=5)
    (frame,) = FrameParser().feed(raw)
    rep = r2000.decode_reply(frame)
    assert rep == r2000.TagReport(1, 0x89, 3, 5, 0x3000, "300833B2DDD9014000000001", -47)


def test_round_end_status_and_version_decode() -> None:
    p = FrameParser()
    raw = (
        r2000.encode_round_end(1, 0x8B, 2, 40, 123456)
        + r2000.encode_status(1, 0x89, 0x36)
        + r2000.encode_firmware_version(1, 2, 7)
        + r2000.encode_status(1, 0x74, 0x10)
        + r2000.encode_frame(1, 0x77, b"\x1e")
    )
    replies = [r2000.decode_reply(f) for f in p.feed(raw)]
    assert replies[0] == r2000.RoundEnd(1, 0x8B, 2, 40, 123456)
    assert replies[1] == r2000.StatusReply(1, 0x89, 0x36)
    assert replies[1].name == "no_tag"
    assert not replies[1].ok
    assert replies[2] == r2000.FirmwareVersion(1, 2, 7)
    assert replies[2].cmd == 0x72
    assert isinstance(replies[3], r2000.StatusReply)
    assert replies[3].ok
    assert replies[4] == r2000.OtherReply(1, 0x77, b"\x1e")
    assert r2000.status_name(0x41) == "code 0x41"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (bytes((0, 0x30, 0x00)) + bytes(10) + b"\x50", "PC declares 12 EPC bytes, frame carries 10"),
        (b"\x00\x30", "inventory reply of 2 bytes"),
        (bytes((0, 0x08, 0x00, 0x50)), "PC declares 2 EPC bytes, frame carries 0"),
    ],
)
def test_malformed_tag_reports(data: bytes, reason: str) -> None:
    (frame,) = FrameParser().feed(r2000.encode_frame(1, 0x89, data))
    rep = r2000.decode_reply(frame)
    assert isinstance(rep, r2000.Malformed)
    assert rep.reason == reason


def test_parser_resyncs_after_junk_and_bad_checksum() -> None:
    good = r2000.encode_status(1, 0x89, 0x10)
    bad = bytearray(r2000.encode_firmware_version(1, 1, 1))
    bad[-1] ^= 0xFF
    p = FrameParser()
    frames = p.feed(b"\x00\x01garbage" + bytes(bad) + good + b"\xa0\x02" + good)
    assert frames == [r2000.Frame(1, 0x89, b"\x10")] * 2
    assert p.checksum_errors == 1
    assert p.junk_bytes == 9 + (len(bad) - 1) + 2
    assert p.frames == 2


def test_partial_frame_waits_then_discard_counts_junk() -> None:
    p = FrameParser()
    assert p.feed(b"\xa0\xff\x01") == []
    assert p.pending == 3
    assert p.discard_partial() == 3
    assert p.junk_bytes == 3
    assert p.pending == 0


# ---- properties ---------------------------------------------------------------------------------

addrs = st.integers(0, 255)
epcs = st.integers(1, 31).flatmap(lambda words: st.binary(min_size=2 * words, max_size=2 * words))


@st.composite
def reply_frames(draw: st.DrawFn) -> bytes:
    addr = draw(addrs)
    kind = draw(st.sampled_from(["tag", "end", "status", "version", "other"]))
    cmd = draw(st.sampled_from([0x89, 0x8B]))
    if kind == "tag":
        return r2000.encode_tag_report(
            addr,
            cmd,
            draw(st.integers(1, 4)),
            draw(epcs).hex(),
            draw(st.integers(-129, -2)),
            draw(st.integers(0, 63)),
        )
    if kind == "end":
        return r2000.encode_round_end(
            addr, cmd, draw(st.integers(1, 4)), draw(st.integers(0, 0xFFFF)), draw(st.integers(0, 0xFFFFFFFF))
        )
    if kind == "status":
        return r2000.encode_status(addr, cmd, draw(st.integers(0, 255)))
    if kind == "version":
        return r2000.encode_firmware_version(addr, draw(st.integers(0, 255)), draw(st.integers(0, 255)))
    return r2000.encode_frame(addr, draw(st.integers(0, 255)), draw(st.binary(max_size=r2000.MAX_DATA)))


@given(addrs, st.integers(0, 255), st.binary(max_size=r2000.MAX_DATA))
def test_encode_then_parse_round_trips(addr: int, cmd: int, data: bytes) -> None:
    p = FrameParser()
    assert p.feed(r2000.encode_frame(addr, cmd, data)) == [r2000.Frame(addr, cmd, data)]
    assert (p.junk_bytes, p.checksum_errors, p.pending) == (0, 0, 0)


INVENTORY = st.sampled_from([0x89, 0x8B])


@given(addrs, st.integers(1, 4), epcs, st.integers(-129, -2), st.integers(0, 63), INVENTORY)
def test_tag_report_round_trips(addr: int, ant: int, epc: bytes, rssi: int, freq: int, cmd: int) -> None:
    (frame,) = FrameParser().feed(r2000.encode_tag_report(addr, cmd, ant, epc.hex(), rssi, freq))
    rep = r2000.decode_reply(frame)
    assert rep == r2000.TagReport(addr, cmd, ant, freq, r2000.pc_for(epc), epc.hex().upper(), rssi)


@given(st.binary(max_size=2000))
@settings(max_examples=300)
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    p = FrameParser()
    for frame in p.feed(data):
        r2000.decode_reply(frame)  # decoding never raises either
    assert p.junk_bytes + p.pending + p.checksum_errors <= len(data) + p.checksum_errors
    assert p.junk_bytes <= len(data)


@given(st.lists(reply_frames(), min_size=1, max_size=6), st.data())
@settings(max_examples=60)
def test_split_and_glued_at_every_offset_parse_identically(frames: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(frames)
    whole = FrameParser().feed(stream)
    assert [r2000.encode_frame(f.addr, f.cmd, f.data) for f in whole] == frames
    for cut in range(len(stream) + 1):
        p = FrameParser()
        assert p.feed(stream[:cut]) + p.feed(stream[cut:]) == whole
    chunks = data.draw(st.lists(st.integers(1, 8), min_size=1, max_size=len(stream)))
    p, got, i, k = FrameParser(), [], 0, 0
    while i < len(stream):
        step = chunks[k % len(chunks)]
        got += p.feed(stream[i : i + step])
        i, k = i + step, k + 1
    assert got == whole


NO_HEADER = st.binary(max_size=40).filter(lambda b: 0xA0 not in b)


@given(st.lists(reply_frames(), min_size=1, max_size=4), NO_HEADER)
@settings(max_examples=100)
def test_junk_without_header_byte_between_frames_is_skipped(frames: list[bytes], junk: bytes) -> None:
    p = FrameParser()
    got = p.feed(junk + junk.join(frames) + junk)
    assert [r2000.encode_frame(f.addr, f.cmd, f.data) for f in got] == frames
    assert p.junk_bytes == len(junk) * (len(frames) + 1)
