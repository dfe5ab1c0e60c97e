"""The evidence image: the best plate crop as a small JPEG, linked by passage_id, lowest priority."""

from __future__ import annotations

import base64
import io
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_agent.config.storage import StorageConfig
from edge_agent.domain import DecidedPassage, Decision, PlateRead
from edge_agent.evidence import encode_jpeg, evidence_message
from edge_agent.ids import new_id
from edge_agent.journal import Journal, passage_payload
from edge_agent.plate_vote import vote
from edge_agent.schemas import validate
from edge_agent.store import Outbox, Priority, Store
from hw_sim.render import PLATE_ROI, render_frame, roi_box
from hw_sim.world import Scene
from tests.edge_agent.test_decision import passage
from tests.mosquitto import async_test

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _crop(text: str, seed: int) -> np.ndarray:
    frame = render_frame(Scene(text, None), "plate", seed=seed, size=(1280, 720))
    x0, y0, x1, y1 = roi_box(PLATE_ROI, 1280, 720)
    return frame[y0:y1, x0:x1]


def _decided(crops: list[tuple[str, float, np.ndarray | None]]) -> DecidedPassage:
    plates = tuple(PlateRead(t, c, "front", 10.0 + i, crop) for i, (t, c, crop) in enumerate(crops))
    p = replace(passage(plate=None), passage_id=new_id(), plates=plates, plate_vote=vote(plates, 0.6))
    return DecidedPassage(p, Decision.refer())


def _jpeg(message: dict[str, object]) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(str(message["image_b64"]))))


def test_the_voted_reads_crop_goes_as_a_small_jpeg_matching_its_schema() -> None:
    sharp, other = _crop("KZT4821", 1), _crop("KZT4821", 2)
    p = _decided([("KZT4821", 0.7, other), ("KZT4821", 0.9, sharp), ("", 0.0, other)])
    msg = evidence_message(p.passage, site_id="S", lane_id="L", now_mono=12.0, now_utc=NOW)
    assert msg is not None
    validate("evidence", msg)
    assert msg["passage_id"] == p.passage_id and msg["text"] == "KZT4821" and msg["confidence"] == 0.9
    assert msg["captured_at"] == "2026-11-28T11:59:59.000Z"  # the best frame was taken at lane time 11 s
    img = _jpeg(msg)
    assert img.format == "JPEG" and max(img.size) == 320 and img.size == (msg["width"], msg["height"])
    assert len(base64.b64decode(str(msg["image_b64"]))) < 40_000


def test_an_unread_plate_still_sends_its_most_confident_frame_with_no_text() -> None:
    p = _decided([("ABC123", 0.4, _crop("ABC123", 3)), ("", 0.0, _crop("ABC123", 4))])
    msg = evidence_message(p.passage, site_id="S", lane_id="L", now_mono=12.0, now_utc=NOW)
    assert msg is not None and msg["text"] is None and msg["confidence"] == 0.4
    validate("evidence", msg)


def test_no_crop_means_no_evidence_and_a_bad_crop_is_refused() -> None:
    assert (
        evidence_message(
            _decided([("ABC123", 0.9, None)]).passage, site_id="S", lane_id="L", now_mono=0, now_utc=NOW
        )
        is None
    )
    with pytest.raises(ValueError, match="uint8"):
        encode_jpeg(np.zeros((10, 10), dtype=np.float32))
    with pytest.raises(ValueError, match="empty"):
        encode_jpeg(np.zeros((1, 10, 3), dtype=np.uint8))


@async_test
async def test_evidence_is_dropped_before_any_passage_when_the_store_is_short(tmp_path: Path) -> None:
    from edge_agent.uplink.messages import encode

    cfg = StorageConfig(path=tmp_path / "lane.sqlite3", quota_mb=0.25)
    async with Store(cfg) as store, Outbox(store) as outbox:
        journal = Journal(store, outbox, topic="l/S/L/passage", priority=Priority.DECISION)
        await journal.open()
        crops = [_crop(f"KZT48{i:02d}", 10 + i) for i in range(4)]
        for i in range(60):
            p = _decided([(f"KZT48{i % 4:02d}", 0.9, crops[i % 4])])
            await journal.commit(passage_payload(p, site_id="S", lane_id="L", decided_at=NOW, latency_ms=1))
            msg = evidence_message(p.passage, site_id="S", lane_id="L", now_mono=11.0, now_utc=NOW)
            assert msg is not None
            await outbox.put(
                msg_id=msg["evidence_id"],
                topic="l/S/L/evidence",
                payload=encode(msg),
                priority=Priority.BULK,
                kind="evidence",
            )
        stats = await outbox.stats()
        assert stats.pending["passage"] == 60  # every passage kept
        assert stats.dropped["evidence"] > 0 and "passage" not in stats.dropped
        assert stats.pending.get("evidence", 0) + stats.dropped["evidence"] == 60
