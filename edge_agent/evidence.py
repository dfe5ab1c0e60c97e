"""Evidence images: the best plate crop of a passage, sent upstream as a low-priority JPEG.

The crop is the pixels the voted read came from (:attr:`edge_agent.domain.PlateVote.best`), scaled so
its longer side is at most :data:`MAX_SIDE` pixels and JPEG-encoded (quality :data:`QUALITY`, a few
kilobytes). The message (``lane.evidence/1``, ``edge_agent/schemas/evidence.json``) is queued at
``Priority.BULK``: it goes after every passage, fault and event, counts against the store's quota, and
is the first thing dropped when space is short; a passage is never dropped for it.
"""

from __future__ import annotations

import base64
import io
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from edge_agent.domain import Passage
from edge_agent.ids import new_id
from edge_agent.uplink.messages import utc_iso

EVIDENCE_SCHEMA = "lane.evidence/1"
MAX_SIDE = 320
QUALITY = 80
MAX_JPEG_BYTES = 192 * 1024


def encode_jpeg(crop: Any, *, max_side: int = MAX_SIDE, quality: int = QUALITY) -> tuple[bytes, int, int]:
    """``crop`` (h, w, 3 uint8, B, G, R) as a JPEG no larger than ``max_side``: ``(jpeg, width, height)``."""
    from PIL import Image

    if not isinstance(crop, np.ndarray) or crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
        raise ValueError("an evidence crop must be an (h, w, 3) uint8 array")
    if crop.shape[0] < 2 or crop.shape[1] < 2:
        raise ValueError(f"an evidence crop of {crop.shape[1]}x{crop.shape[0]} pixels is empty")
    img = Image.fromarray(np.ascontiguousarray(crop[:, :, ::-1]))
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    data = buf.getvalue()
    if len(data) > MAX_JPEG_BYTES:
        raise ValueError(f"evidence JPEG of {len(data)} bytes is over {MAX_JPEG_BYTES}")
    return data, img.width, img.height


def evidence_message(
    passage: Passage, *, site_id: str, lane_id: str, now_mono: float, now_utc: datetime
) -> dict[str, Any] | None:
    """The ``lane.evidence/1`` message for ``passage``'s best plate crop, or ``None`` when it has none.

    The best crop is the voted read's; for an unread plate, the most confident frame's (``text`` null).

    Runs the JPEG encoder: call it off the event loop. The capture time is the crop's lane time
    mapped onto UTC through ``now_mono`` / ``now_utc``.
    """
    vote = passage.plate_vote
    if vote is None:
        return None
    best = vote.best  # an unread plate still shows why: its most confident frame
    if best is None or best.crop is None:
        best = max(
            (r for r in passage.plates if r.crop is not None), key=lambda r: r.confidence, default=None
        )
    if best is None or best.crop is None:
        return None
    jpeg, width, height = encode_jpeg(best.crop)
    captured = now_utc - timedelta(seconds=max(0.0, now_mono - best.mono))
    return {
        "schema": EVIDENCE_SCHEMA,
        "evidence_id": new_id(),
        "passage_id": passage.passage_id,
        "site_id": site_id,
        "lane_id": lane_id,
        "captured_at": utc_iso(captured),
        "camera": best.camera,
        "kind": "plate",
        "text": vote.text,
        "confidence": round(min(1.0, max(0.0, best.confidence)), 4),
        "content_type": "image/jpeg",
        "width": width,
        "height": height,
        "image_b64": base64.b64encode(jpeg).decode("ascii"),
    }
