"""The base of every config model: unknown keys are errors, values are immutable and finite.

:class:`Floor` marks a setting whose safe minimum is higher than what the code can run with: a signal
unit test may build a ``SignalConfig`` with ``amber_s = 0`` to step through its sequencer, but a lane
config file may not ask for less amber than traffic practice allows. ``LaneConfig`` (the door every
config file goes through) enforces the floors; see :func:`edge_agent.config.checks.floor_problems`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A config section: ``extra="forbid"`` so a misspelt key is an error that names it.

    ``allow_inf_nan=False``: TOML can spell ``nan`` and ``inf``, and either one slips through every
    ``ge``/``le`` bound (comparisons with NaN are false, infinity is above any floor), so no float
    setting anywhere in the config may be non-finite.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


@dataclass(frozen=True, slots=True)
class Floor:
    """``Annotated`` marker: the least a lane config may set this field to, and why.

    A config that declares ``simulation = true`` may go below the floor (its clock may run faster, its
    lamps are not real), but never to zero or below: zero does not shorten a step, it removes it.
    """

    minimum: float
    reason: str
