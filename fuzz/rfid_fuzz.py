"""Atheris fuzz target for the RFID parsers (R2000 frames and ASCII lines).

Run from the repository root, bounded: ``python fuzz/rfid_fuzz.py -atheris_runs=100000``.
Checks that no input makes a parser raise, that feeding the same bytes in two pieces (cut anywhere)
gives the same frames as feeding them at once, and that every decoded frame re-encodes to its bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports():
    from drivers.rfid import r2000
    from drivers.rfid.ascii import LineParser


def test_one_input(data: bytes) -> None:
    """One fuzz case: the first two bytes choose a cut point, the rest is the stream."""
    if len(data) < 2:
        return
    cut = int.from_bytes(data[:2], "big") % (len(data) - 1)
    stream = data[2:]
    whole = r2000.FrameParser()
    frames = whole.feed(stream)
    pieces = r2000.FrameParser()
    split = pieces.feed(stream[:cut]) + pieces.feed(stream[cut:])
    if split != frames:
        raise AssertionError(f"split at {cut} parsed differently")
    if whole.junk_bytes > len(stream):
        raise AssertionError("more junk than input")
    for frame in frames:
        r2000.decode_reply(frame)
        if r2000.encode_frame(frame.addr, frame.cmd, frame.data) not in stream:
            raise AssertionError("a frame that was not in the input")
    lines = LineParser()
    tags = lines.feed(stream[:cut]) + lines.feed(stream[cut:])
    if tags != LineParser().feed(stream):
        raise AssertionError(f"lines split at {cut} parsed differently")


def main() -> None:
    """Entry point: atheris takes libFuzzer options from the command line."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
