"""The base of every config model: unknown keys are errors, values are immutable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A config section: ``extra="forbid"`` so a misspelt key is an error that names it."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
