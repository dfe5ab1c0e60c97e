"""The reader's protocol backends: the same contract run against every backend in the table.

Each backend (``PROTOCOLS``) reads tags from its simulated reader on a real pty, hands them on with
antenna and RSSI, counts garbage without passing it on, and comes back after an unplug.
"""

from __future__ import annotations

import pytest

from drivers.rfid.reader import PROTOCOLS, LinkDown, LinkUp, TagSeen
from hw_sim.world import FieldTag
from tests.drivers.rfid.support import run, until
from tests.drivers.rfid.test_reader import lane

CAR = "300833B2DDD9014000000001"


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_every_protocol_backend_keeps_the_reader_contract(tmp_path, protocol: str) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with lane(tmp_path, protocol=protocol) as (sim, h):
            sim.set_tags([FieldTag(CAR, 1, -50.0)])
            await until(lambda: len(h.of(TagSeen)) >= 2, what=f"{protocol} tag reads")
            assert {e.epc for e in h.of(TagSeen)} == {CAR}
            assert h.of(LinkUp) and h.reader.ever_answered
            sim.inject_junk(b"\x00\xff garbage \xfe")
            await until(
                lambda: h.reader.stats["junk_bytes"] + h.reader.stats["bad_lines"] > 0, what="junk counted"
            )
            assert {e.epc for e in h.of(TagSeen)} == {CAR}
            sim.unplug()
            await until(lambda: bool(h.of(LinkDown)), what=f"{protocol} link down")
            sim.replug()
            seen = len(h.of(TagSeen))
            await until(lambda: len(h.of(TagSeen)) > seen, what=f"{protocol} reads after replug")

    run(main())


def test_an_unknown_protocol_names_the_choices() -> None:
    from drivers.rfid.reader import ReaderSettings, TagReader

    with pytest.raises(ValueError, match="choose one of"):
        TagReader(ReaderSettings(port="", protocol="r3000"), lambda e: None)  # type: ignore[arg-type]
