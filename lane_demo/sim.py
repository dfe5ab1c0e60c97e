"""``edge-agent sim --config FILE``: the simulated hardware a config expects, for ``edge-agent run``.

It reads FILE (which must declare ``simulation = true``) and serves, on the far side of each wire,
what the config's devices expect: the RFID reader on a pseudo-terminal linked at ``devices.rfid.port``,
the WIM controller and the loop card as Modbus/TCP servers on the ports of ``devices.wim.url`` and
``devices.loops.url`` (loopback), a relay board on ``signal.gpio.socket`` when the lamps are a
``simboard``, each ``sim`` camera's frames on its ``socket``, an embedded MQTT broker when nothing
listens on the loopback broker URL, and a stand-in for central that pushes the scenario's reference data
signed with the config's central HMAC key (written, 0600, if the file does not exist yet). Then it
rolls seeded trucks through, at the config's ``time_scale``, and checks every passage central receives
against the scenario's own ground truth. ``edge-agent run --config FILE`` runs the agent as on a lane.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal as os_signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from drivers.camera.simlink import SceneFrame, encode_frame
from edge_agent.clock import ScaledClock
from edge_agent.config import ConfigInvalid, LaneConfig, load_config
from hw_sim.camera import SimCamera, SimCameraRig
from hw_sim.central import Central
from hw_sim.modbus_loops import LoopCard
from hw_sim.modbus_wim import WimController
from hw_sim.player import Layout, Player
from hw_sim.rfid import SimulatedRfidReader
from hw_sim.scenario import generate
from hw_sim.world import Scene

log = logging.getLogger(__name__)

EXIT_OK, EXIT_WRONG, EXIT_USAGE = 0, 1, 2
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class SimError(Exception):
    """The config asks for something the simulator cannot serve (one line for the user)."""


@dataclass(frozen=True, slots=True)
class SimOptions:
    """``edge-agent sim`` options."""

    config: Path
    trucks: int = 10
    seed: int = 1
    speedup: float | None = None  # None: the config's time_scale
    once: bool = False
    wait_agent_s: float = 120.0


def _loopback_port(url: str, what: str) -> int:
    parts = urlsplit(url)
    if parts.scheme != "tcp" or parts.hostname not in LOOPBACK or parts.port is None:
        raise SimError(f"{what} = {url!r}: the simulator serves tcp://127.0.0.1:PORT only")
    return int(parts.port)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def central_key(cfg: LaneConfig) -> tuple[str, bytes]:
    """The config's central HMAC key (id, secret) able to sign reference snapshots; created if missing."""
    for key_id, key in cfg.commands.keys.items():
        if key.alg == "hmac-sha256" and "central" in key.roles and "reference.snapshot" in key.commands:
            assert key.secret_file is not None
            path = key.secret_file
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(secrets.token_bytes(32))
                path.chmod(0o600)
            return key_id, path.read_bytes()
    raise SimError("commands.keys: no hmac-sha256 key for role central that may sign reference.snapshot")


def layout_of(cfg: LaneConfig) -> Layout:
    """The player's layout from the config's geometry and camera names."""
    g = cfg.geometry
    cams = cfg.devices.cameras
    plate = next((n for n, c in cams.items() if c.role == "plate"), "front")
    container = next((n for n, c in cams.items() if c.role == "container"), "container")
    antenna = cfg.devices.rfid.antennas[0] if getattr(cfg.devices.rfid, "antennas", None) else 1
    return Layout(
        exit_loop_m=g.exit_loop_m,
        rfid_antenna_m=g.rfid_antenna_m,
        wim_m=g.wim_m,
        plate_camera_m=g.plate_camera_m,
        container_camera_m=g.container_camera_m,
        antenna=antenna,
        plate_camera=plate,
        container_camera=container,
    )


def _fresh_socket(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def _serve_camera(
    stack: contextlib.AsyncExitStack, camera: SimCamera, path: Path, now: Callable[[], float]
) -> None:
    async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async for frame in camera.frames():
                label = frame.label if isinstance(frame, SceneFrame) else None
                writer.write(encode_frame(now() - frame.captured, label, frame.image))
                await writer.drain()
        except (ConnectionError, OSError):
            pass  # the agent went away; the next one connects again
        except asyncio.CancelledError:
            pass  # the simulator is stopping: end this stream quietly
        finally:
            writer.close()

    _fresh_socket(path)
    server = await asyncio.start_unix_server(stream, path=str(path))
    stack.push_async_callback(server.wait_closed)
    stack.callback(server.close)


async def start_hardware(
    cfg: LaneConfig, clock: ScaledClock, stack: contextlib.AsyncExitStack, out: TextIO
) -> tuple[Any, Any, Any, SimCameraRig]:
    """Start every simulated device the config expects; return (rfid, wim, loops, cameras)."""
    dev = cfg.devices
    if dev.rfid.backend not in ("r2000", "ascii"):
        raise SimError(f"devices.rfid.backend = {dev.rfid.backend!r}: not simulated")
    if dev.wim.backend != "modbus" or dev.loops.backend != "modbus":
        raise SimError("devices.wim and devices.loops: the simulator serves the modbus backends")
    rfid_port = Path(dev.rfid.port)
    rfid_port.parent.mkdir(parents=True, exist_ok=True)
    rfid = await stack.enter_async_context(SimulatedRfidReader(dev.rfid.backend, link_path=rfid_port))
    wim = await stack.enter_async_context(WimController(port=_loopback_port(dev.wim.url, "devices.wim.url")))
    loops = await stack.enter_async_context(LoopCard(port=_loopback_port(dev.loops.url, "devices.loops.url")))
    print(f"rfid   {dev.rfid.backend} reader on {rfid.port} (linked at {rfid_port})", file=out)
    print(f"wim    Modbus/TCP {wim.url}", file=out)
    print(f"loops  Modbus/TCP {loops.url}", file=out)
    gpio = cfg.signal.gpio
    if gpio.backend == "simboard":
        from hw_sim.relay_board import RelayBoard

        pins = cfg.signal.pins
        board = RelayBoard(
            Path(gpio.socket),
            heartbeat_pin=cfg.signal.watchdog.heartbeat_pin,
            fail_on=tuple(p for p in (pins.red, pins.closed_sign) if p is not None),
        )
        await stack.enter_async_context(board)
        print(f"lamps  relay board on {gpio.socket}", file=out)
    rig = SimCameraRig()
    for name, cam in dev.cameras.items():
        sock = getattr(cam, "socket", None)
        if cam.backend != "sim" or sock is None:
            raise SimError(f"devices.cameras.{name}: a simulated camera needs backend = 'sim' and a socket")
        render = cfg.recognition.backend == "tflite" and not getattr(cam, "read_labels", False)
        sim = rig.add(
            SimCamera(
                name, clock=clock.monotonic, sleep=clock.sleep, fps=cam.fps, render=render, role=cam.role
            )
        )
        await _serve_camera(stack, sim, Path(sock), clock.monotonic)
        print(
            f"camera {name} ({cam.role}{', rendered pixels' if render else ', labels'}) on {sock}",
            file=out,
        )
    return rfid, wim, loops, rig


async def start_broker(cfg: LaneConfig, stack: contextlib.AsyncExitStack, out: TextIO) -> str:
    """The broker the config names; an embedded one on its loopback port when nothing listens there."""
    from lane_demo.demo import DemoError, embedded_broker

    url = cfg.mqtt.urls[0]
    parts = urlsplit(url)
    port = parts.port or 1883
    if parts.scheme == "mqtt" and parts.hostname in LOOPBACK and _port_free(port):
        try:
            await stack.enter_async_context(embedded_broker(port))
        except DemoError as exc:
            raise SimError(f"mqtt.urls: nothing listens on {url}, and {exc}") from None
        print(f"broker embedded MQTT 3.1.1 on {url}", file=out)
    else:
        print(f"broker {url} (already running)", file=out)
    return url


async def run_sim(opts: SimOptions, out: TextIO = sys.stdout) -> int:
    """Serve the hardware, roll the trucks, judge what central receives; the exit status."""
    try:
        cfg = load_config(opts.config)
    except ConfigInvalid as exc:
        for key, reason in exc.errors:
            print(f"{opts.config}: {key}: {reason}", file=sys.stderr)
        return EXIT_USAGE
    if not cfg.simulation:
        print(
            f"{opts.config}: simulation: the simulator serves only a config with simulation = true",
            file=sys.stderr,
        )
        return EXIT_USAGE
    speed = cfg.time_scale if opts.speedup is None else opts.speedup
    if speed != cfg.time_scale:
        print(
            f"--speedup {speed:g}: the agent runs {opts.config} at time_scale = {cfg.time_scale:g}; "
            "set time_scale in the config instead (both sides must agree)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    clock = ScaledClock(speed)
    try:
        async with contextlib.AsyncExitStack() as stack:
            rfid, wim, loops, rig = await start_hardware(cfg, clock, stack, out)
            url = await start_broker(cfg, stack, out)
            key_id, secret = central_key(cfg)
            central = await stack.enter_async_context(
                Central(url, prefix=cfg.mqtt.topic_prefix, site_id=cfg.site_id, lane_id=cfg.lane_id)
            )
            print(f"ready: start the agent with  edge-agent run --config {opts.config}", file=out, flush=True)
            if not await central.wait_for(lambda: central.availability == "online", opts.wait_agent_s):
                print(f"no agent came online within {opts.wait_agent_s:g} s", file=sys.stderr)
                return EXIT_WRONG
            await _until_devices_up(central, opts.wait_agent_s)
            return await _roll(opts, cfg, clock, central, key_id, secret, (rfid, wim, loops, rig), out)
    except SimError as exc:
        print(f"{opts.config}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, TimeoutError) as exc:
        print(f"edge-agent sim: {exc}", file=sys.stderr)
        return EXIT_WRONG


def _not_up(central: Central) -> list[str]:
    """The agent's devices its latest health message does not report up (all of them before the first)."""
    if central.health is None:
        return ["(no health message yet)"]
    devices = central.health.get("devices")
    if not isinstance(devices, list):
        return ["(health message without devices)"]
    return [
        f"{d.get('name')}={d.get('state')}" for d in devices if isinstance(d, dict) and d.get("state") != "up"
    ]


async def _until_devices_up(central: Central, limit_s: float) -> None:
    """Wait until the agent reports every device up, as a lane opens only when its sensors answer.

    A truck rolled before the agent's first WIM poll is rightly referred (``weight_missing``), which is
    the lane's behaviour, not the scenario's intent. Past ``limit_s`` the trucks roll anyway and the
    ground truth shows what that costs; the devices still not up are named on stderr.
    """
    if not await central.wait_for(lambda: not _not_up(central), limit_s):
        print(f"rolling although the agent reports not up: {', '.join(_not_up(central))}", file=sys.stderr)


async def _roll(
    opts: SimOptions,
    cfg: LaneConfig,
    clock: ScaledClock,
    central: Central,
    key_id: str,
    key: bytes,
    devices: tuple[Any, Any, Any, SimCameraRig],
    out: TextIO,
) -> int:
    rfid, wim, loops, rig = devices
    layout = layout_of(cfg)
    scenario = generate(opts.trucks, opts.seed, lane_length_m=layout.exit_loop_m)
    plate_cam = rig.cameras.get(layout.plate_camera)
    if plate_cam is not None:
        plate_cam.expect(Scene(t.plate if t.plate_legible else None, None) for t in scenario.trucks)
    container_cam = rig.cameras.get(layout.container_camera)
    if container_cam is not None and container_cam.render:
        container_cam.expect(Scene(None, t.container) for t in scenario.trucks)
    reply = await central.push_reference(scenario.reference_snapshot(version=1), key_id=key_id, key=key)
    if reply.get("status") != "accepted":
        print(
            f"reference data refused by the agent: {reply.get('reason')}: {reply.get('detail')}",
            file=sys.stderr,
        )
        return EXIT_WRONG
    print(
        f"agent online; reference data accepted; rolling {opts.trucks} trucks (seed {opts.seed})",
        file=out,
        flush=True,
    )
    player = Player(
        scenario, layout, now=clock.monotonic, tags=rfid, loops=loops, wim=wim, cameras=rig, seed=opts.seed
    )
    await player.run()
    n = len(scenario.trucks)
    await central.wait_for(lambda: len(central.passages) >= n, 60.0)
    agree = 0
    for i, (truck, pid) in enumerate(zip(scenario.trucks, central.passage_order, strict=False), start=1):
        p = central.passages[pid]
        ok = p["decision"] == truck.expected and truck.expected_reasons <= set(p["reasons"])
        agree += ok
        reasons = ",".join(p["reasons"]) or "-"
        mark = "ok" if ok else f"WRONG (expected {truck.expected}: {truck.case.value})"
        print(f"{i:3d} {pid[:13]} {p['decision']:<7} {reasons:<34} {mark}", file=out, flush=True)
    print(
        f"{len(central.passages)}/{n} passages received, {agree} agree with ground truth",
        file=out,
        flush=True,
    )
    result = EXIT_OK if agree == n == len(central.passages) else EXIT_WRONG
    if not opts.once:
        print("simulated hardware stays up (Ctrl-C to stop)", file=out, flush=True)
        await _until_stopped()
    return result


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (os_signal.SIGINT, os_signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def register(sub: Any) -> None:
    """Add ``sim`` to the CLI."""
    import argparse

    p = sub.add_parser(
        "sim",
        help="serve the simulated hardware a config expects, for edge-agent run beside it",
        description=(__doc__ or "").split("\n\n", 1)[1],
        epilog="example:\n  edge-agent sim --config config/demo.toml --trucks 20 &\n"
        "  edge-agent run --config config/demo.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, required=True, help="the lane TOML (simulation = true)")
    p.add_argument(
        "--trucks", type=int, default=10, choices=range(1, 10_001), metavar="N", help="trucks (default 10)"
    )
    p.add_argument("--seed", type=int, default=1, help="scenario seed (default 1)")
    p.add_argument(
        "--speedup", type=float, default=None, help="must equal the config's time_scale (default: it)"
    )
    p.add_argument(
        "--once", action="store_true", help="exit after the last truck's passage (default: stay up)"
    )
    p.add_argument(
        "--wait-agent", type=float, default=120.0, help="seconds to wait for the agent (default 120)"
    )

    def run(args: argparse.Namespace) -> int:
        opts = SimOptions(args.config, args.trucks, args.seed, args.speedup, args.once, args.wait_agent)
        return asyncio.run(run_sim(opts))

    p.set_defaults(func=run)
