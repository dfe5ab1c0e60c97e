"""The upstream contract: one JSON Schema (draft 2020-12) per payload, each with a versioned ``schema``.

``load_schema(name)`` needs only the standard library. ``validate(name, payload)`` imports
``jsonschema`` lazily (a test dependency), so the agent runs without it.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from edge_agent.errors import EdgeAgentError

NAMES: tuple[str, ...] = (
    "passage",
    "event",
    "fault",
    "health",
    "availability",
    "command",
    "command_response",
    "reference_snapshot",
    "reference_delta",
    "evidence",
)
"""Every schema shipped in this package (file ``{name}.json``, ``$id`` ``urn:lane-schema:{name}``)."""


class PayloadSchemaError(EdgeAgentError, ValueError):
    """A payload does not match its schema; ``errors`` lists ``(json.path, message)``."""

    def __init__(self, name: str, errors: list[tuple[str, str]]) -> None:
        self.name = name
        self.errors = errors
        super().__init__(f"{name}: " + "; ".join(f"{p}: {m}" for p, m in errors))


@cache
def _load(name: str) -> str:
    if name not in NAMES:
        raise KeyError(f"no schema named {name!r}; known: {', '.join(NAMES)}")
    return resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")


def load_schema(name: str) -> dict[str, Any]:
    """Return the schema document ``name`` (a fresh copy)."""
    doc: dict[str, Any] = json.loads(_load(name))
    return doc


def schema_id(name: str) -> str:
    """Return the versioned id payloads of this kind carry in ``schema``, e.g. ``lane.passage/1``."""
    return str(load_schema(name)["properties"]["schema"]["const"])


@cache
def _validator(name: str) -> Any:
    import jsonschema  # test dependency, imported only when validating
    from referencing import Registry, Resource

    registry: Registry[Any] = Registry().with_resources(
        (f"urn:lane-schema:{n}", Resource.from_contents(load_schema(n))) for n in NAMES
    )
    cls = jsonschema.validators.validator_for(load_schema(name))
    cls.check_schema(load_schema(name))
    return cls(load_schema(name), registry=registry)


def validate(name: str, payload: Any) -> None:
    """Raise :class:`PayloadSchemaError` (naming every problem) unless ``payload`` matches schema ``name``."""
    validator = _validator(name)
    errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    if errors:
        raise PayloadSchemaError(name, [(e.json_path, e.message) for e in errors])
