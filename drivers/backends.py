"""The one mechanism behind every device kind's backend table: ``name -> "module:Class"``, imported late.

Each device kind (GPIO, cameras, RFID reader protocols) keeps its own table; this resolves a name in
it, importing the module only then (python-can's ``Bus(interface=...)`` pattern), so a missing vendor
library fails only for the user who selected that backend.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, cast

from drivers.errors import BackendUnavailable, ConfigError


def load_backend(table: Mapping[str, str], name: str, kind: str) -> type[Any]:
    """The class ``table[name]`` names, its module imported now.

    :class:`ConfigError` for an unknown name (listing the choices); :class:`BackendUnavailable` when the
    backend's module cannot be imported on this machine.
    """
    try:
        target = table[name]
    except KeyError:
        raise ConfigError(f"unknown {kind} backend {name!r}; choose one of {sorted(table)}") from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendUnavailable(f"{kind} backend {name!r} cannot be loaded: {exc}") from exc
    return cast(type[Any], getattr(module, class_name))
