"""What the lane did, from its store: ``edge-agent passages``, ``edge-agent outbox``, ``edge-agent events``.

Read-only and safe while the agent runs: the SQLite file is opened with ``mode=ro`` (WAL lets a reader
see the last committed state without blocking the agent's writes), and every query is bounded by
``--limit``. ``passages --follow`` polls for newly decided passages, as ``tail -f`` does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from edge_agent.config.control import DEFAULT_CONFIG

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
FOLLOW_POLL_S = 0.5
MAX_LIMIT = 100_000


class HistoryError(Exception):
    """The store cannot be read (the message says which file and why)."""


@contextlib.contextmanager
def open_store(path: Path) -> Iterator[sqlite3.Connection]:
    """The lane's store, read-only."""
    if not path.exists():
        raise HistoryError(f"no store at {path} (storage.path in the config)")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        raise HistoryError(f"cannot open {path}: {exc}") from None
    try:
        conn.execute("PRAGMA query_only=ON")
        yield conn
    except sqlite3.Error as exc:
        raise HistoryError(f"cannot read {path}: {exc}") from None
    finally:
        conn.close()


def parse_since(text: str, now: datetime | None = None) -> str:
    """``--since``: an ISO 8601 time (UTC if no offset) or an age (``30m``, ``2h``, ``1d``), as ISO UTC."""
    now = now or datetime.now(UTC)
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units and text[:-1].replace(".", "", 1).isdigit():
        at = now - timedelta(seconds=float(text[:-1]) * units[text[-1]])
    else:
        try:
            at = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--since {text!r}: give a time (2026-12-01T08:00:00Z) or an age (30m, 2h, 1d)"
            ) from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def passages(
    conn: sqlite3.Connection, *, since: str | None, decision: str | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    """Decided passages, oldest first (``after``: only those decided after that passage's row)."""
    where, params = ["1 = 1"], []
    if since is not None:
        where.append("decided_at >= ?")
        params.append(since)
    if decision is not None:
        where.append("decision = ?")
        params.append(decision)
    if after is not None:
        where.append("rowid > (SELECT rowid FROM passage WHERE passage_id = ?)")
        params.append(after)
    clauses = " AND ".join(where)  # only fixed clauses are joined; every value is a parameter
    query = (
        "SELECT payload, closed_at FROM (SELECT rowid, payload, closed_at FROM passage "  # noqa: S608
        f"WHERE {clauses} ORDER BY rowid DESC LIMIT ?) ORDER BY rowid"
    )
    rows = conn.execute(query, (*params, limit)).fetchall()
    out = []
    for payload, closed_at in rows:
        p = json.loads(payload)
        p["closed_at"] = closed_at
        out.append(p)
    return out


def outbox(conn: sqlite3.Connection) -> dict[str, Any]:
    """What waits to go upstream, by kind, and how old the oldest is."""
    by_kind = {
        str(k): {"count": int(n), "bytes": int(b or 0), "oldest_age_s": round(time.time() - float(t), 1)}
        for k, n, b, t in conn.execute(
            "SELECT kind, count(*), sum(length(payload)), min(created_at) FROM outbox GROUP BY kind"
        )
    }
    counts = {str(n): int(v) for n, v in conn.execute("SELECT name, value FROM outbox_counts")}
    return {
        "pending_total": sum(v["count"] for v in by_kind.values()),
        "pending": by_kind,
        "dropped": {k.partition(":")[2]: v for k, v in counts.items() if k.startswith("dropped:")},
    }


def events(conn: sqlite3.Connection, *, since: str | None, limit: int) -> list[dict[str, Any]]:
    """Events and faults sent upstream (the store keeps the latest 10,000), oldest first."""
    floor = 0.0 if since is None else datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp()
    rows = conn.execute(
        "SELECT kind, payload FROM (SELECT id, kind, payload FROM event_log WHERE at >= ? "
        "ORDER BY id DESC LIMIT ?) ORDER BY id",
        (floor, limit),
    ).fetchall()
    return [{**json.loads(payload), "message": str(kind)} for kind, payload in rows]


# --- printing --------------------------------------------------------------------------------------------
def _passage_line(p: dict[str, Any]) -> str:
    v = p.get("vehicle") or {}
    reasons = ",".join(p.get("reasons") or []) or "-"
    wim = p.get("wim") or {}
    gross = f"{wim['gross_kg']:.0f} kg" if wim.get("gross_kg") is not None else "-"
    return (
        f"{p['decided_at']}  {p['passage_id']}  {p['decision']:<7}  {reasons:<32}  "
        f"plate {v.get('plate') or '-'}  container {v.get('container') or '-'}  {gross}"
        + (f"  (revision {p['revision']})" if p.get("revision") else "")
    )


def _event_line(e: dict[str, Any]) -> str:
    if e["message"] == "fault":
        state = "ACTIVE " if e.get("active") else "cleared"
        what = f"{e.get('device')}/{e.get('kind')}"
        return f"{e.get('at')}  fault  {state} {what}  {e.get('detail') or ''}".rstrip()
    data = json.dumps(e.get("data"), separators=(",", ":"), sort_keys=True)
    return f"{e.get('at')}  event  {e.get('type')}  {data[:200]}"


def _store_path(args: argparse.Namespace) -> Path:
    from edge_agent.config import load_config

    return load_config(args.config or DEFAULT_CONFIG).storage.path


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """``passages``, ``outbox`` and ``events``."""
    from edge_agent.config import ConfigInvalid

    try:
        path = _store_path(args)
    except (ConfigInvalid, OSError) as exc:
        print(f"error: cannot read the config {args.config or DEFAULT_CONFIG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "outbox":
            with open_store(path) as conn:
                box = outbox(conn)
            if args.json:
                print(json.dumps(box, sort_keys=True), file=out)
            else:
                print(f"{box['pending_total']} messages waiting in {path}", file=out)
                for kind, v in sorted(box["pending"].items()):
                    print(
                        f"  {kind:<18} {v['count']:>7}  {v['bytes']:>10} B  oldest {v['oldest_age_s']} s",
                        file=out,
                    )
                for kind, n in sorted(box["dropped"].items()):
                    print(f"  dropped {kind:<10} {n:>7} (quota)", file=out)
            return EXIT_OK
        if args.command == "events":
            with open_store(path) as conn:
                rows = events(conn, since=args.since, limit=args.limit)
            for e in rows:
                print(json.dumps(e, sort_keys=True) if args.json else _event_line(e), file=out)
            return EXIT_OK
        return _passages(args, path, out)
    except HistoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _passages(args: argparse.Namespace, path: Path, out: TextIO) -> int:
    last: str | None = None
    first = True
    while True:
        with open_store(path) as conn:
            rows = passages(
                conn,
                since=args.since if first else None,
                decision=args.decision,
                after=last,
                limit=args.limit,
            )
        for p in rows:
            print(json.dumps(p, sort_keys=True) if args.json else _passage_line(p), file=out, flush=True)
        if rows:
            last = rows[-1]["passage_id"]
        if not args.follow:
            return EXIT_OK
        if first and last is None:
            last = _newest(path)
        first = False
        try:
            time.sleep(FOLLOW_POLL_S)
        except KeyboardInterrupt:
            return EXIT_OK


def _newest(path: Path) -> str | None:
    with open_store(path) as conn:
        row = conn.execute("SELECT passage_id FROM passage ORDER BY rowid DESC LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def _limit(text: str) -> int:
    n = int(text)
    if not 1 <= n <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"--limit must be 1-{MAX_LIMIT}")
    return n


def register(sub: Any) -> None:
    """Add ``passages``, ``outbox`` and ``events`` to the CLI."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=None, help=f"lane TOML (default {DEFAULT_CONFIG})")
    common.add_argument("--json", action="store_true", help="one JSON object per line, for scripts")
    p = sub.add_parser(
        "passages",
        parents=[common],
        help="decided passages from the journal",
        description="Decided passages from the lane's journal (read-only; safe while the agent runs).",
        epilog="example: edge-agent passages --since 2h --decision refer\n"
        "         edge-agent passages --follow --json | jq .reasons",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--since", type=parse_since, default=None, help="a time (ISO 8601) or an age (30m, 2h, 1d)"
    )
    p.add_argument("--decision", choices=["release", "refer"], default=None)
    p.add_argument("--follow", action="store_true", help="keep printing passages as they are decided")
    p.add_argument("--limit", type=_limit, default=200, help="at most this many (the latest; default 200)")
    p.set_defaults(func=run)
    o = sub.add_parser(
        "outbox",
        parents=[common],
        help="messages waiting to go upstream",
        description="What waits in the store-and-forward outbox, by kind, and what the quota dropped.",
        epilog="example: edge-agent outbox --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    o.set_defaults(func=run)
    e = sub.add_parser(
        "events",
        parents=[common],
        help="events and faults the lane reported",
        description="Events (overrides, gaps, reference updates) and device faults sent upstream, "
        "oldest first.",
        epilog="example: edge-agent events --since 1d",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument(
        "--since", type=parse_since, default=None, help="a time (ISO 8601) or an age (30m, 2h, 1d)"
    )
    e.add_argument("--limit", type=_limit, default=200, help="at most this many (the latest; default 200)")
    e.set_defaults(func=run)
