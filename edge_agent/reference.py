"""Reference data pushed down by central: pre-arrival records and trusted-trader ids.

Persisted in the store's SQLite file and mirrored in memory for the decision's hot path. Updates arrive
as MQTT commands: a full snapshot replaces everything; a versioned delta applies on top of the exact
version it was made from. Both apply atomically (one transaction) or not at all.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge_agent.errors import CommandRejected
from edge_agent.store.db import Store

log = logging.getLogger(__name__)

SCHEMA_NAME = "reference"
SCHEMA_DDL = """
CREATE TABLE IF NOT EXISTS reference_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS prearrival (
    record_id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trusted_trader (
    carrier_id TEXT NOT NULL,
    program TEXT NOT NULL,
    valid_until TEXT,
    PRIMARY KEY (carrier_id, program)
);
"""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class PreArrival(_Strict):
    """One truck announced by its carrier and screened by central."""

    record_id: str = Field(min_length=1, max_length=64)
    carrier_id: str = Field(min_length=1, max_length=64)
    transponder: str | None = Field(None, pattern=r"^[0-9A-F]{4,64}$")
    plate: str | None = Field(None, pattern=r"^[A-Z0-9]{1,8}$")
    driver_fast_card: str | None = Field(None, pattern=r"^[0-9A-F]{4,64}$")
    container: str | None = Field(None, pattern=r"^[A-Z]{3}[UJZ][0-9]{7}$")  # None = declared empty
    seals: tuple[str, ...] = ()
    declared_gross_kg: float = Field(gt=0, le=200_000)
    releasable: bool


class TrustedTrader(_Strict):
    """A carrier enrolled in a trusted-trader programme."""

    carrier_id: str = Field(min_length=1, max_length=64)
    program: str = Field(min_length=1, max_length=32)
    valid_until: date | None = None


class Snapshot(_Strict):
    """A full replacement of the reference data."""

    version: int = Field(ge=0)
    prearrivals: tuple[PreArrival, ...]
    trusted_traders: tuple[TrustedTrader, ...]


class Delta(_Strict):
    """Changes from ``base_version`` to ``version``."""

    base_version: int = Field(ge=0)
    version: int = Field(ge=1)
    upsert_prearrivals: tuple[PreArrival, ...] = ()
    delete_prearrivals: tuple[str, ...] = ()
    upsert_trusted_traders: tuple[TrustedTrader, ...] = ()
    delete_trusted_traders: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReferenceView:
    """An immutable in-memory copy of the reference data, indexed for the decision."""

    version: int
    by_id: dict[str, PreArrival]
    by_transponder: dict[str, tuple[PreArrival, ...]]
    by_plate: dict[str, tuple[PreArrival, ...]]
    by_fast_card: dict[str, tuple[PreArrival, ...]]
    programs: dict[str, tuple[TrustedTrader, ...]]

    @classmethod
    def build(cls, version: int, records: list[PreArrival], traders: list[TrustedTrader]) -> ReferenceView:
        """Index ``records`` and ``traders``."""

        def index(key: str) -> dict[str, tuple[PreArrival, ...]]:
            out: dict[str, list[PreArrival]] = {}
            for r in records:
                value = getattr(r, key)
                if value:
                    out.setdefault(value, []).append(r)
            return {k: tuple(v) for k, v in out.items()}

        programs: dict[str, list[TrustedTrader]] = {}
        for t in traders:
            programs.setdefault(t.carrier_id, []).append(t)
        return cls(
            version=version,
            by_id={r.record_id: r for r in records},
            by_transponder=index("transponder"),
            by_plate=index("plate"),
            by_fast_card=index("driver_fast_card"),
            programs={k: tuple(v) for k, v in programs.items()},
        )

    def candidates(
        self, *, transponder: str | None, plate: str | None, fast_card: str | None
    ) -> list[PreArrival]:
        """Records that any of the read identifiers points at (deduplicated, stable order)."""
        found: dict[str, PreArrival] = {}
        for table, key in (
            (self.by_transponder, transponder),
            (self.by_plate, plate),
            (self.by_fast_card, fast_card),
        ):
            if key:
                for r in table.get(key, ()):
                    found.setdefault(r.record_id, r)
        return list(found.values())

    def trusted(self, carrier_id: str, accepted: tuple[str, ...], today: date) -> bool:
        """Whether the carrier holds a current membership of an accepted programme."""
        return any(
            t.program in accepted and (t.valid_until is None or t.valid_until >= today)
            for t in self.programs.get(carrier_id, ())
        )


EMPTY = ReferenceView.build(0, [], [])


def _parse(model: type[_Strict], body: object) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(body)"
        raise CommandRejected(
            "malformed", f"{where}: {first['msg']} ({exc.error_count()} error(s))"
        ) from None


def _load(conn: sqlite3.Connection) -> ReferenceView:
    row = conn.execute("SELECT version FROM reference_meta WHERE id = 1").fetchone()
    version = int(row[0]) if row else 0
    records = [PreArrival.model_validate_json(b) for (b,) in conn.execute("SELECT body FROM prearrival")]
    traders = [
        TrustedTrader(carrier_id=c, program=p, valid_until=date.fromisoformat(v) if v else None)
        for c, p, v in conn.execute("SELECT carrier_id, program, valid_until FROM trusted_trader")
    ]
    return ReferenceView.build(version, records, traders)


def _put_records(conn: sqlite3.Connection, records: tuple[PreArrival, ...]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO prearrival (record_id, body) VALUES (?, ?)",
        [(r.record_id, r.model_dump_json()) for r in records],
    )


def _put_traders(conn: sqlite3.Connection, traders: tuple[TrustedTrader, ...]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO trusted_trader (carrier_id, program, valid_until) VALUES (?, ?, ?)",
        [(t.carrier_id, t.program, t.valid_until.isoformat() if t.valid_until else None) for t in traders],
    )


def _set_version(conn: sqlite3.Connection, version: int) -> None:
    conn.execute("INSERT OR REPLACE INTO reference_meta (id, version) VALUES (1, ?)", (version,))


class ReferenceData:
    """The lane's reference data: SQLite-backed, served from an in-memory :class:`ReferenceView`."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.view: ReferenceView = EMPTY
        self.updated_at: datetime | None = None
        """When central's last snapshot or delta was applied (None: the data predates this start)."""

    async def load(self) -> ReferenceView:
        """Create the tables if needed and load what the store holds (at start-up)."""
        await self._store.ensure_schema(SCHEMA_NAME, SCHEMA_DDL)
        self.view = await self._store.read(_load)
        log.info(
            "reference data version %d: %d pre-arrival records, %d carriers",
            self.view.version,
            len(self.view.by_id),
            len(self.view.programs),
        )
        return self.view

    async def apply_snapshot(self, body: dict[str, Any]) -> dict[str, Any]:
        """Replace everything with ``body`` (a :class:`Snapshot`); returns a result for the response."""
        snap: Snapshot = _parse(Snapshot, body)

        def txn(conn: sqlite3.Connection) -> ReferenceView:
            conn.execute("DELETE FROM prearrival")
            conn.execute("DELETE FROM trusted_trader")
            _put_records(conn, snap.prearrivals)
            _put_traders(conn, snap.trusted_traders)
            _set_version(conn, snap.version)
            return _load(conn)

        self.view = await self._store.write(txn)
        self.updated_at = datetime.now(UTC)
        return self._result()

    async def apply_delta(self, body: dict[str, Any]) -> dict[str, Any]:
        """Apply a :class:`Delta` made from the current version; a version gap is rejected unchanged."""
        delta: Delta = _parse(Delta, body)
        if delta.version <= delta.base_version:
            raise CommandRejected("malformed", "version must be greater than base_version")

        def txn(conn: sqlite3.Connection) -> ReferenceView:
            row = conn.execute("SELECT version FROM reference_meta WHERE id = 1").fetchone()
            current = int(row[0]) if row else 0
            if current != delta.base_version:
                raise CommandRejected(
                    "version_conflict", f"delta is from version {delta.base_version}, lane holds {current}"
                )
            conn.executemany(
                "DELETE FROM prearrival WHERE record_id = ?", [(r,) for r in delta.delete_prearrivals]
            )
            conn.executemany(
                "DELETE FROM trusted_trader WHERE carrier_id = ?",
                [(c,) for c in delta.delete_trusted_traders],
            )
            _put_records(conn, delta.upsert_prearrivals)
            _put_traders(conn, delta.upsert_trusted_traders)
            _set_version(conn, delta.version)
            return _load(conn)

        self.view = await self._store.write(txn)
        self.updated_at = datetime.now(UTC)
        return self._result()

    def _result(self) -> dict[str, Any]:
        return {
            "version": self.view.version,
            "prearrivals": len(self.view.by_id),
            "carriers": len(self.view.programs),
        }


def snapshot_json(view: ReferenceView) -> str:
    """The view as a snapshot body (for diagnostics)."""
    return json.dumps(
        {
            "version": view.version,
            "prearrivals": [r.model_dump(mode="json") for r in view.by_id.values()],
            "trusted_traders": [t.model_dump(mode="json") for ts in view.programs.values() for t in ts],
        }
    )
