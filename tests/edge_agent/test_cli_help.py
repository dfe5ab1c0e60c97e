"""Every ``edge-agent`` command's ``--help`` is good enough to work without the README: an example each."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from edge_agent.cli import build_parser


def leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
        return
    for action in subs:
        for name, child in action.choices.items():
            yield from leaves(child, (*path, name))


def test_every_command_has_a_description_of_what_it_does_and_an_example() -> None:
    commands = dict(leaves(build_parser()))
    assert {"run", "demo", "sim", "status", "passages", "config check", "diag mqtt"} <= set(commands)
    missing = [name for name, p in commands.items() if "example" not in p.format_help().lower()]
    assert not missing, f"--help without an example: {missing}"
