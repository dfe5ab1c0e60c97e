"""Technician diagnostics behind ``edge-agent diag ...``.

Each module here exposes ``register(subparsers)``, which adds one ``diag`` sub-command whose parser
sets ``func=run`` with ``run(args: argparse.Namespace) -> int`` (the exit status).
"""
