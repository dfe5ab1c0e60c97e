"""The ASCII line protocol backend of :class:`drivers.rfid.reader.TagReader`: listen, parse lines.

ASCII readers report tags on their own, one line each; there is nothing to ask. With
``idle_timeout_s`` (for readers that send heartbeats) a quiet line means a silent reader.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from drivers.rfid.ascii import LineParser
from drivers.rfid.link import SerialLink
from drivers.rfid.reader import Silent, TagSeen

if TYPE_CHECKING:
    from drivers.rfid.reader import TagReader


class AsciiSession:
    """The ASCII line protocol for one :class:`TagReader`."""

    def __init__(self, reader: TagReader) -> None:
        self.reader = reader
        self._lines = LineParser()

    def reset(self) -> None:
        """A new link: no partial line."""
        self._lines = LineParser()

    def feed(self, data: bytes) -> None:
        """Parse lines, count garbage, hand reads on."""
        reader, p = self.reader, self._lines
        junk, bad = p.junk_bytes, p.bad_lines
        tags = p.feed(data)
        if p.junk_bytes - junk:
            reader.stats["junk_bytes"] += p.junk_bytes - junk
        if p.bad_lines - bad:
            reader.stats["bad_lines"] += p.bad_lines - bad
            reader.throttle.warn(
                "bad_line",
                "%s: bad line on %s: %s (chunk %r)",
                reader.name,
                reader.port_in_use,
                p.last_error,
                data[:64],
            )
        reader.stats["frames"] += len(tags)
        for tag in tags:
            reader.hand_on(TagSeen(tag.epc, tag.antenna, tag.rssi_dbm), reader.settings.ports)

    async def converse(self, link: SerialLink) -> None:
        """Listen until the link is lost (or, with ``idle_timeout_s``, the line falls quiet)."""
        reader = self.reader
        s = reader.settings
        reader.link_up(link, "ASCII line reader")
        if s.idle_timeout_s is None:
            raise await link.lost
        loop = asyncio.get_running_loop()
        while True:
            left = reader.last_rx + s.idle_timeout_s - loop.time()
            if left <= 0:
                reader.stats["timeouts"] += 1
                raise Silent(f"nothing from {link.name} for {s.idle_timeout_s:g} s")
            await asyncio.wait({link.lost}, timeout=left)
            if link.lost.done():
                raise link.lost.result()
