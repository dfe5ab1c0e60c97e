"""``edge-agent diag camera``: one frame from a configured camera, saved, and what the recogniser reads in it.

    edge-agent diag camera --config /etc/edge-agent/lane.toml --camera front --snapshot /tmp/front.jpg

Steps, each printed as it runs (what was tried, what answered, what to check next): open the camera the
way the agent does (its backend and settings), wait for one frame, write it (PNG or JPEG by the file's
suffix), then read it with the lane's own plate reader (the configured model) for a plate camera. It
never opens a camera the running agent holds. Exit 0 a frame was captured (whether or not a plate was
read: that is the answer), 1 no frame, 2 refused or a bad config.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from edge_agent.config import LaneConfig
from edge_agent.config.control import DEFAULT_CONFIG
from edge_agent.diag.common import REFUSED, agent_holding, load_lane, refuse

EXIT_OK, EXIT_NO_FRAME = 0, 1
SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def _say(out: TextIO, text: str) -> None:
    print(text, file=out, flush=True)


async def _one_frame(cfg: LaneConfig, name: str, limit_s: float, out: TextIO) -> Any:
    from edge_agent.camera import frame_source
    from edge_agent.clock import SystemClock

    cam = cfg.devices.cameras[name]
    where = getattr(cam, "device", None) or getattr(cam, "path", None) or getattr(cam, "socket", None) or ""
    _say(out, f"tried: open camera {name} ({cam.backend}{f' {where}' if where else ''})")
    source = frame_source(name, cam, SystemClock(), {})
    started = time.perf_counter()
    try:
        _say(out, f"tried: one frame within {limit_s:g} s")
        frames = source.frames()
        frame = await asyncio.wait_for(anext(frames), limit_s)
        closer = getattr(frames, "aclose", None)  # an async generator: let it clean up now
        if closer is not None:
            await closer()
    finally:
        source.close()
    if frame.image is None:
        raise ValueError("the frame carries no pixels (a label-only simulated camera)")
    h, w = frame.image.shape[:2]
    _say(out, f"  answered: a {w}x{h} frame ({(time.perf_counter() - started) * 1000:.0f} ms)")
    return frame.image


def _save(image: Any, path: Path, out: TextIO) -> None:
    from PIL import Image

    fmt = SUFFIXES[path.suffix.lower()]
    _say(out, f"tried: write {path}")
    Image.fromarray(image[:, :, ::-1].copy()).save(path, format=fmt)
    _say(out, f"  answered: {path.stat().st_size} bytes ({fmt})")


def _read_plate(cfg: LaneConfig, image: Any, out: TextIO) -> None:
    from edge_agent.read import locator_model, open_plate_reader

    rec = cfg.recognition
    if rec.backend != "tflite":
        _say(out, f"recognition.backend = {rec.backend!r}: no model to read the frame with")
        return
    _say(out, f"tried: read the plate with {rec.plate_model.name}")
    reader = open_plate_reader(
        rec.plate_model, rec.plate_roi.as_tuple(), locator_path=locator_model(rec.plate_model), num_threads=1
    )
    try:
        result = reader.read(image)
    finally:
        reader.close()
    floor = cfg.policy.min_plate_confidence
    if result.text and result.confidence >= floor:
        _say(out, f"  answered: {result.text} (confidence {result.confidence:.2f})")
    else:
        seen = f"{result.text!r} at {result.confidence:.2f}, " if result.text else ""
        _say(out, f"  answered: no plate read ({seen}below min_plate_confidence {floor:g})")
        _say(
            out,
            "  check next: focus, exposure and IR at night, the camera's aim (recognition.plate_roi), dirt",
        )


def run(args: argparse.Namespace) -> int:
    """``edge-agent diag camera``."""
    cfg = load_lane(args.config)
    if cfg is None:
        return REFUSED
    cams = cfg.devices.cameras
    name = args.camera or next(iter(cams), None)
    if name is None or name not in cams:
        print(
            f"--camera: choose one of {sorted(cams) or 'the configured cameras (none in this config)'}",
            file=sys.stderr,
        )
        return REFUSED
    if args.snapshot.suffix.lower() not in SUFFIXES:
        print(f"--snapshot {args.snapshot}: give a .png or .jpg file name", file=sys.stderr)
        return REFUSED
    sock = agent_holding(args.config)
    if sock is not None:
        return refuse(f"camera {name}", sock, args.config)
    out = sys.stdout
    try:
        image = asyncio.run(_one_frame(cfg, name, args.timeout, out))
    except TimeoutError:
        _say(out, f"  answered: no frame within {args.timeout:g} s")
        _say(out, "  check next: the camera's cable, power and address (RTSP URL, /dev/video*, folder)")
        return EXIT_NO_FRAME
    except Exception as exc:  # the backend's own error names what failed (BackendUnavailable, CameraError)
        _say(out, f"  answered: {exc}")
        _say(out, "  check next: the camera's backend settings in devices.cameras." + name)
        return EXIT_NO_FRAME
    _save(image, args.snapshot, out)
    if cams[name].role == "plate":
        _read_plate(cfg, image, out)
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add the ``camera`` diagnostic to ``edge-agent diag``."""
    p = subparsers.add_parser(
        "camera",
        help="a frame from a configured camera, saved, and what the recogniser reads in it",
        description=(__doc__ or "").split("\n\n", 2)[2],
        epilog="example: edge-agent diag camera --config /etc/edge-agent/lane.toml --camera front "
        "--snapshot /tmp/front.jpg",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, default=None, help=f"lane TOML (default {DEFAULT_CONFIG})")
    p.add_argument("--camera", default=None, help="camera name under devices.cameras (default: the first)")
    p.add_argument("--snapshot", type=Path, required=True, help="where to save the frame (.png or .jpg)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a frame (default 10)")
    p.set_defaults(func=run)
