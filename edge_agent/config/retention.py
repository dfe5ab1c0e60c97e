"""How long personal data stays in the lane's store after central has confirmed it."""

from __future__ import annotations

from pydantic import Field

from edge_agent.config.base import Model


class RetentionConfig(Model):
    """Per-site retention of personal identifiers (plates, EPCs, officer ids) and images in the store.

    A passage row is purged ``days`` after central confirmed it (the broker's PUBACK of its latest
    revision), never before; images and other upstream messages leave the store at their PUBACK. The
    technician's event log (events and faults, which name officers) is purged at the same age.
    """

    days: float = Field(
        30.0,
        ge=0,
        le=3650,
        description="Days a confirmed passage (and an event log row) stays in the store; 0 = purge at "
        "the next run after confirmation; at most 10 years.",
    )
    interval_s: float = Field(
        3600.0, ge=60, le=86_400, description="How often the running agent purges (seconds, 60 s - 1 day)."
    )
