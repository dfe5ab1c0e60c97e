"""``edge-agent diag signal``: show the signal's recorded state; ``--test`` cycles each lamp.

``--test`` drives the lamps itself, so it is refused (exit 2) unless the lane is known to be closed
and no agent holds the pins:

* the signal's state file (``signal.state_file``, written by the running agent) names a live agent
  process -> refused: the agent owns the pins; close the lane by officer command, stop the service;
* the state file says the lane was closed when the agent stopped -> allowed;
* otherwise only ``--lane-closed-confirm`` (the technician has coned the lane off) allows it.

Each lamp is lit alone for ``--hold-s`` (break before make), its read-back shown when configured,
and the test ends with red lit. Exit 0 when every read-back matched, 1 on a mismatch, 2 if refused.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tomllib
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from drivers.errors import EdgeAgentError
from drivers.gpio.base import DigitalIO
from edge_agent import signal_state
from edge_agent.config.signal import SignalConfig
from edge_agent.diag.common import agent_holding, refuse, state_file_of
from edge_agent.signal import open_gpio

REFUSED = 2


def register(subparsers: Any) -> None:
    """Add the ``signal`` diagnostic to ``edge-agent diag``."""
    p = subparsers.add_parser(
        "signal",
        help="show the lane signal's state; --test cycles each lamp",
        description="Show the signal state the agent recorded; --test lights each lamp alone and shows its "
        "read-back, only with the agent stopped and the lane closed. Exit 0 ok, 1 mismatch, 2 refused.",
        epilog="example: edge-agent diag signal --config /etc/edge-agent/lane.toml\n"
        "         edge-agent diag signal --config /etc/edge-agent/lane.toml --test --lane-closed-confirm",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--test", action="store_true", help="light red, amber, green in turn (the lane must be closed)"
    )
    p.add_argument("--config", type=Path, help="lane config file (its [signal] table is used)")
    p.add_argument("--state-file", type=Path, help="signal state file (default: signal.state_file)")
    p.add_argument("--hold-s", type=float, default=1.5, help="how long each lamp stays lit (default 1.5)")
    p.add_argument(
        "--lane-closed-confirm",
        action="store_true",
        help="the lane is physically closed (coned off) and no agent runs",
    )
    p.set_defaults(func=run)


def load_signal_config(path: Path | None) -> SignalConfig:
    """Read the ``[signal]`` table of a lane config file (defaults when no file is given)."""
    if path is None:
        return SignalConfig()
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return SignalConfig.model_validate(data.get("signal", {}))


def read_state(path: Path | None) -> dict[str, Any] | None:
    """Read the signal state file, or None when there is none (unreadable counts as none)."""
    if path is None:
        return None
    try:
        return signal_state.read_state(path)
    except (OSError, ValueError):
        return None


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def may_test(state: dict[str, Any] | None, confirmed: bool) -> tuple[bool, str]:
    """Whether the lamp test may run, and why (or why not)."""
    if state is not None and _alive(state.get("pid")):
        return False, (
            f"the agent (pid {state['pid']}) is running and owns the signal: close the lane with an "
            "officer 'close' command, stop the service (systemctl stop edge-agent), then rerun"
        )
    if state is not None and state.get("closed"):
        return True, f"lane closed when the agent stopped ({state.get('closed_reason')})"
    if confirmed:
        return True, "technician confirmed the lane is closed (--lane-closed-confirm)"
    return False, (
        "the lane is not known to be closed: close it by officer command before stopping the agent, "
        "or cone it off and pass --lane-closed-confirm"
    )


def lamp_test(cfg: SignalConfig, io: DigitalIO, hold_s: float, out: TextIO) -> int:
    """Light each lamp alone, show its read-back; end with red. Returns the number of mismatches."""
    pins, rb, off = cfg.pins, cfg.readback, cfg.pins.active_low
    lamps = {"red": pins.red, "amber": pins.amber, "green": pins.green}
    io.setup_output(pins.red, initial=not off)
    io.setup_output(pins.amber, initial=off)
    io.setup_output(pins.green, initial=off)
    if pins.closed_sign is not None:
        io.setup_output(pins.closed_sign, initial=not off)
    inputs = {name: getattr(rb, name) for name in lamps} if rb is not None else {}
    for pin in inputs.values():
        if pin is not None and rb is not None:
            io.setup_input(pin, pull_up=rb.active_low)
    settle = max(hold_s, (rb.settle_ms / 1000.0) if rb is not None else 0.0)
    mismatches = 0
    for lit in lamps:
        for pin in lamps.values():
            io.write(pin, off)
        time.sleep(cfg.dark_ms / 1000.0)
        io.write(lamps[lit], not off)
        time.sleep(settle)
        seen = []
        for name, pin in inputs.items():
            if pin is None or rb is None:
                continue
            reads_lit = io.read(pin) != rb.active_low
            ok = reads_lit == (name == lit)
            mismatches += not ok
            seen.append(f"{name}={'lit' if reads_lit else 'dark'}{'' if ok else ' MISMATCH'}")
        readback = ", ".join(seen) if seen else "no read-back configured"
        print(f"{lit:<5}  commanded on   read-back: {readback}", file=out)
    for pin in lamps.values():
        io.write(pin, off)
    time.sleep(cfg.dark_ms / 1000.0)
    io.write(pins.red, not off)
    print("red lit again", file=out)
    return mismatches


def run(args: Any) -> int:
    """Run the diagnostic; see the module docstring for the exit statuses."""
    try:
        cfg = load_signal_config(args.config)
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        print(f"error: cannot read the signal config: {exc}", file=sys.stderr)
        return REFUSED
    state_path = args.state_file or cfg.state_file or (state_file_of(args.config) if args.config else None)
    state = read_state(state_path)
    if not args.test:
        if state is None:
            print(f"no signal state recorded ({state_path})")
        else:
            print(json.dumps(state, indent=2, sort_keys=True))
        return 0
    sock = agent_holding(args.config)
    if sock is not None:  # even with no state file: the agent answers on its socket
        return refuse("the lamp outputs", sock, args.config)
    allowed, why = may_test(state, args.lane_closed_confirm)
    if not allowed:
        print(f"refused: {why}", file=sys.stderr)
        return REFUSED
    print(f"lamp test: {why}")
    try:
        io = open_gpio(cfg.gpio)
    except EdgeAgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return REFUSED
    try:
        mismatches = lamp_test(cfg, io, max(0.0, args.hold_s), sys.stdout)
    except (EdgeAgentError, OSError, ValueError) as exc:
        print(f"error: lamp test stopped: {exc}", file=sys.stderr)
        return 1
    finally:
        io.close()
    if mismatches:
        print(f"{mismatches} read-back mismatch(es): check lamps, relays and read-back wiring")
        return 1
    print("all lamps answered as commanded" if cfg.readback else "done (no read-back to check)")
    return 0
