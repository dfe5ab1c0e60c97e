"""Reference data: snapshots and versioned deltas apply atomically; bad ones are rejected, nothing changed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config.storage import StorageConfig
from edge_agent.errors import CommandRejected
from edge_agent.reference import ReferenceData
from edge_agent.store.db import Store

T1 = "30" + "A" * 22


def rec(rid: str, **over: Any) -> dict[str, Any]:
    base = {
        "record_id": rid,
        "carrier_id": "CARR1",
        "transponder": T1,
        "plate": "ABC123",
        "driver_fast_card": "35" + "B" * 22,
        "container": "CSQU3054383",
        "seals": ["3A" + "C" * 22],
        "declared_gross_kg": 30000,
        "releasable": True,
    }
    base.update(over)
    return base


SNAP = {
    "version": 4,
    "prearrivals": [rec("PA-1"), rec("PA-2", transponder="30" + "D" * 22, plate="XYZ9")],
    "trusted_traders": [{"carrier_id": "CARR1", "program": "FAST", "valid_until": "2027-01-01"}],
}


def run(path: Path, fn: Any) -> Any:
    async def main() -> Any:
        async with Store(StorageConfig(path=path)) as store:
            ref = ReferenceData(store)
            await ref.load()
            return await fn(ref)

    return asyncio.run(main())


def test_snapshot_then_delta_then_restart_keeps_the_data(tmp_path: Path) -> None:
    db = tmp_path / "lane.sqlite3"

    async def apply(ref: ReferenceData) -> None:
        assert (await ref.apply_snapshot(SNAP))["version"] == 4
        await ref.apply_delta(
            {
                "base_version": 4,
                "version": 5,
                "upsert_prearrivals": [rec("PA-3", plate="NEW1")],
                "delete_prearrivals": ["PA-1"],
            }
        )

    run(db, apply)

    async def check(ref: ReferenceData) -> None:
        v = ref.view
        assert v.version == 5 and set(v.by_id) == {"PA-2", "PA-3"}
        assert [r.record_id for r in v.candidates(transponder=None, plate="NEW1", fast_card=None)] == ["PA-3"]

    run(db, check)


@pytest.mark.parametrize(
    ("body", "reason", "detail"),
    [
        ({"base_version": 3, "version": 5}, "version_conflict", "lane holds 4"),
        ({"base_version": 4, "version": 4}, "malformed", "greater than base_version"),
        (
            {"base_version": 4, "version": 5, "upsert_prearrivals": [rec("X", container="CSQU30543")]},
            "malformed",
            "upsert_prearrivals.0.container",
        ),
        ({"base_version": 4, "version": 5, "surprise": 1}, "malformed", "surprise"),
    ],
)
def test_bad_delta_is_rejected_and_changes_nothing(
    tmp_path: Path, body: dict[str, Any], reason: str, detail: str
) -> None:
    async def go(ref: ReferenceData) -> None:
        await ref.apply_snapshot(SNAP)
        before = ref.view
        with pytest.raises(CommandRejected) as info:
            await ref.apply_delta(body)
        assert info.value.reason == reason and detail in info.value.detail
        assert ref.view is before

    run(tmp_path / "lane.sqlite3", go)


def test_malformed_snapshot_leaves_the_old_data(tmp_path: Path) -> None:
    async def go(ref: ReferenceData) -> None:
        await ref.apply_snapshot(SNAP)
        with pytest.raises(CommandRejected, match="declared_gross_kg"):
            await ref.apply_snapshot(
                {"version": 9, "prearrivals": [rec("PA-9", declared_gross_kg=-5)], "trusted_traders": []}
            )
        assert ref.view.version == 4 and len(ref.view.by_id) == 2

    run(tmp_path / "lane.sqlite3", go)
