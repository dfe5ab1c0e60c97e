"""Log lines for journald: priority prefix, component and device, per-component levels, rate limit, no PII.

The in-process tests drive the real logging machinery (the handler ``edge_agent.logs.configure``
installs, on a real stream) with the messages the agent's modules log. The last one runs a real
``edge-agent run`` with its stderr on a file named by ``$JOURNAL_STREAM``, as systemd connects it, and
checks every line the agent wrote, including an officer's override.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.config import parse_config
from edge_agent.config.logs import LogsConfig
from edge_agent.logs import RateLimitFilter, apply_config, configure, officer_identifiers, personal
from hw_sim.central import Central
from hw_sim.modbus_loops import LoopCard
from hw_sim.modbus_wim import WimController
from hw_sim.rfid import SimulatedRfidReader
from tests.edge_agent.test_command_intake import answer, officer_config, override
from tests.mosquitto import Mosquitto

EPC = "35C0FFEE0123456789ABCDEF"
LINE = re.compile(r"^<[2-7]>[a-z_][a-z0-9_.]* \[[^\]]+\] .+$")


@pytest.fixture
def journal() -> Iterator[io.StringIO]:
    """The agent's handler on a string stream, in journald form; the root logger restored after."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    out = io.StringIO()
    handler = configure("INFO", stream=out, journald=True)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)
    for h in handlers:
        if h not in root.handlers:
            root.addHandler(h)
    for name in ("edge_agent.rfid", "edge_agent.uplink"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def test_one_line_per_event_with_priority_component_and_device(journal: io.StringIO) -> None:
    log = logging.getLogger("edge_agent.wim")
    log.warning("no reply from unit %d", 1, extra={"device": "wim"})
    logging.getLogger("edge_agent.lane").error("lane: passage %s not journaled", "p-1")
    try:
        raise OSError("disk I/O error\nsecond line")
    except OSError:
        logging.getLogger("edge_agent.store.db").exception("store failed")
    logging.getLogger("edge_agent").critical("stopping")
    got = lines(journal)
    assert got[0] == "<4>wim [wim] no reply from unit 1"
    assert got[1] == "<3>lane [-] lane: passage p-1 not journaled"
    assert got[2].startswith("<3>store.db [-] store failed | Traceback (most recent call last):")
    assert "OSError: disk I/O error | second line" in got[2]
    assert got[3] == "<2>agent [-] stopping"
    assert len(got) == 4 and all(LINE.match(g) for g in got)


def test_no_epc_or_officer_id_above_debug(journal: io.StringIO) -> None:
    cfg = parse_config(
        (Path(__file__).resolve().parents[2] / "config" / "lane.example.toml").read_text(), "example"
    )
    known = officer_identifiers(cfg.commands)
    assert "officer-1234" in known
    apply_config(LogsConfig(levels={"rfid": "DEBUG"}), known_personal=known)
    rfid = logging.getLogger("edge_agent.rfid")
    # what the RFID source and the reader driver log about bad reads and junk
    rfid.warning("%s: impossible read of %s dropped: %s", "rfid", EPC, "an EPC of 62 bytes")
    rfid.warning("rfid: 3 junk bytes in chunk %s", bytes.fromhex("A0 13 01 89" + EPC).hex(" "))
    rfid.warning("bad line (chunk %r)", f"{EPC},1,-50\n".encode())
    logging.getLogger("edge_agent.override").warning("override hold by %s (%s)", personal("officer:x9"), "t")
    logging.getLogger("edge_agent.uplink.commands").warning(
        "command rejected (unauthorised): key 'officer-1234' may not sign for role 'central'"
    )
    rfid.debug("tag %s seen", EPC)  # DEBUG keeps it: a technician asked for it
    got = lines(journal)
    above = [g for g in got if not g.startswith("<7>")]
    assert len(above) == 5
    for g in above:
        assert EPC not in g and EPC.lower() not in g and "a0 13 01 89" not in g, g
        assert "officer-1234" not in g and "officer:x9" not in g, g
    assert "<epc:" in above[0] and "<personal:" in above[3] and "<personal:" in above[4]
    assert above[0].split("<epc:")[1][:6] == above[2].split("<epc:")[1][:6], "one tag, one pseudonym"
    assert got[-1] == f"<7>rfid [rfid] tag {EPC} seen"


def test_levels_per_component(journal: io.StringIO) -> None:
    apply_config(LogsConfig(levels={"rfid": "DEBUG", "uplink": "ERROR"}))
    logging.getLogger("edge_agent.rfid").debug("rfid detail")
    logging.getLogger("edge_agent.wim").debug("wim detail")  # root is INFO
    logging.getLogger("edge_agent.uplink.link").warning("link warning")  # uplink is ERROR
    logging.getLogger("edge_agent.uplink.link").error("link error")
    assert lines(journal) == ["<7>rfid [rfid] rfid detail", "<3>uplink.link [-] link error"]


def test_a_flapping_device_is_rate_limited_with_a_count() -> None:
    now = [0.0]
    limiter = RateLimitFilter(burst=3, window_s=60, clock=lambda: now[0])
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(limiter)
    log = logging.getLogger("test.flap")
    log.propagate = False
    log.addHandler(handler)
    try:
        for i in range(1000):
            log.warning("reader down on %s", f"/dev/ttyUSB{i % 2}")
        log.warning("another kind of message")
        now[0] = 61.0
        log.warning("reader down on %s", "/dev/ttyUSB0")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    got = out.getvalue().splitlines()
    assert got[:3] == [
        "reader down on /dev/ttyUSB0",
        "reader down on /dev/ttyUSB1",
        "reader down on /dev/ttyUSB0",
    ]
    assert got[3] == "another kind of message"
    assert got[4] == "reader down on /dev/ttyUSB0 [997 similar suppressed in the last 60 s]"
    assert len(got) == 5 and limiter.suppressed_total == 997


def test_messages_of_ever_new_kinds_are_bounded_too() -> None:
    now = [0.0]
    limiter = RateLimitFilter(burst=3, total=50, window_s=60, clock=lambda: now[0])
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(limiter)
    log = logging.getLogger("test.kinds")
    log.propagate = False
    log.addHandler(handler)
    try:
        for i in range(1000):
            log.warning(f"frame {i} garbled")  # an f-string: a new kind every time
        now[0] = 61.0
        log.warning("next window")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    got = out.getvalue().splitlines()
    assert len(got) == 51
    assert got[-1] == "next window [950 lines of all kinds suppressed in the last 60 s]"


def test_component_names_are_checked() -> None:
    with pytest.raises(ValueError, match="component names"):
        LogsConfig(levels={"RFID; rm -rf": "DEBUG"})
    assert LogsConfig(levels={"rfid": "DEBUG", "drivers.rfid.reader": "INFO"}).logger_names() == {
        "edge_agent.rfid": "DEBUG",
        "drivers.rfid.reader": "INFO",
    }


@pytest.mark.timeout(120)
def test_a_real_agent_writes_journald_lines_without_the_officers_id(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    log_file = tmp_path / "stderr.log"

    async def main() -> None:
        async with (
            SimulatedRfidReader("r2000", link_path=tmp_path / "rfid0") as rfid,
            WimController() as wim,
            LoopCard() as loops,
            Central(mosquitto.url, prefix="lanes", site_id="TEST", lane_id="L9") as central,
        ):
            cfg = tmp_path / "lane.toml"
            cfg.write_text(officer_config(tmp_path, rfid.port, wim.url, loops.url, mosquitto.url))
            with log_file.open("w") as err:
                st = os.fstat(err.fileno())
                env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
                proc = await asyncio.create_subprocess_exec(
                    *(sys.executable, "-m", "edge_agent.cli", "--log-level", "INFO", "run", "--config"),
                    str(cfg),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=err,
                    env=env,
                )
                try:
                    assert await central.wait_for(lambda: central.availability == "online", 30)
                    hold = override("hold")
                    central.publish_raw(json.dumps(hold).encode())
                    assert (await answer(central, str(hold["command_id"])))["status"] == "accepted"
                finally:
                    proc.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(proc.wait(), 20)

    asyncio.run(main())
    got = log_file.read_text().splitlines()
    assert got, "the agent logged nothing"
    bad = [g for g in got if not LINE.match(g)]
    assert not bad, bad
    assert next(g for g in got if "SIMULATED LANE" in g).startswith("<4>agent [-] SIMULATED LANE")
    holds = [g for g in got if "override hold" in g]
    assert len(holds) == 1 and holds[0].startswith("<4>override [-] ")
    assert "<personal:" in holds[0]
    assert not [g for g in got if "officer-1234" in g]
