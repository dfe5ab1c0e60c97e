"""``edge-agent``: the service, the simulated demo, config checks and technician diagnostics."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from edge_agent import __version__
from edge_agent.config import ConfigInvalid, LaneConfig, load_config
from edge_agent.config.checks import simulated_backends
from edge_agent.config.preflight import preflight

log = logging.getLogger("edge_agent")
EXIT_CONFIG = 2
_DIAG_MODULES = (
    "edge_agent.diag.rfid",
    "edge_agent.diag.modbus",
    "edge_agent.diag.signal",
    "edge_agent.diag.mqtt",
    "edge_agent.diag.camera",
)


def _checked(path: Path, *, files: bool = True, prefix: str = "") -> LaneConfig | None:
    """Load ``path`` and (``files``) preflight it; print every problem and return None if there is any."""
    try:
        cfg = load_config(path)
    except ConfigInvalid as exc:
        problems = exc.errors
    else:
        problems = preflight(cfg) if files else []
        if not problems:
            return cfg
    for key, reason in problems:
        print(f"{prefix}{key}: {reason}", file=sys.stderr)
    return None


def _config_check(args: argparse.Namespace) -> int:
    if _checked(args.file, files=not args.schema_only) is None:
        return EXIT_CONFIG
    print("OK")
    return 0


def _announce_simulation(cfg: LaneConfig) -> None:
    """A simulated lane says so at start, as a WARNING and on stderr whatever the log level."""
    if not cfg.simulation:
        return
    sims = ", ".join(f"{key} = {backend!r}" for key, backend in simulated_backends(cfg)) or "none named"
    msg = f"SIMULATED LANE: {cfg.site_id}/{cfg.lane_id} declares simulation = true; simulated devices: {sims}"
    if log.isEnabledFor(logging.WARNING):
        log.warning("%s", msg)
    else:
        print(f"WARNING: {msg}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from edge_agent.app import run_service

    prefix = f"{args.config}: "
    cfg = _checked(args.config, files=False, prefix=prefix)
    if cfg is None:
        return EXIT_CONFIG
    from edge_agent.logs import apply_config, officer_identifiers

    apply_config(cfg.logging, known_personal=officer_identifiers(cfg.commands))
    _announce_simulation(cfg)
    problems = preflight(cfg)
    for key, reason in problems:
        print(f"{prefix}{key}: {reason}", file=sys.stderr)
    if problems:
        return EXIT_CONFIG
    return asyncio.run(run_service(cfg, args.config))


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = argparse.ArgumentParser(
        prog="edge-agent", description="Edge agent for a FAST secure-corridor lane."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="run the lane (the systemd service)",
        description="Run the lane agent until SIGTERM; a config that fails its checks exits 2 naming keys.",
        epilog="example: edge-agent run --config /etc/edge-agent/lane.toml\n"
        "         (on a lane: systemctl start edge-agent; beside edge-agent sim: --config config/demo.toml)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", required=True, type=Path, help="lane TOML file")
    run.set_defaults(func=_run)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser(
        "check",
        help="validate a config file",
        description="Validate a lane config: every bad key at once, then every file it names (exit 0 or 2).",
        epilog="example: edge-agent config check /etc/edge-agent/lane.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("file", type=Path)
    check.add_argument(
        "--schema-only",
        action="store_true",
        help="check the file alone, not the secrets, keys, models and paths it names (off the lane)",
    )
    check.set_defaults(func=_config_check)

    from edge_agent.read import register as register_read
    from edge_agent.retention import register as register_purge
    from edge_agent.update import register as register_update

    register_read(sub)
    register_purge(sub)
    register_update(sub)
    from edge_agent.history import register as register_history
    from edge_agent.status import register as register_status

    register_status(sub)
    register_history(sub)
    for plugin in entry_points(group="edge_agent.commands"):  # the demo's commands, when it is installed
        plugin.load()(sub)

    diag = sub.add_parser("diag", help="technician diagnostics for each device")
    diag_sub = diag.add_subparsers(dest="diag_command", required=True)
    for name in _DIAG_MODULES:
        importlib.import_module(name).register(diag_sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``edge-agent`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from edge_agent.logs import configure as configure_logs

    configure_logs(args.log_level)  # journald priorities, rate limit, no personal data above DEBUG
    if args.log_level != "DEBUG":
        # pymodbus logs every timeout with a frame dump; the agent counts them and logs each episode once
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `edge-agent passages | head`: the reader has seen enough
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - no flush error at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
