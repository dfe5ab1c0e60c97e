"""Measure the container pipeline as the lane runs it, and write the figures into the reader's card.

    .venv/bin/python training/eval_container.py [--n 300] [--seed 9500000] [--write]

Runs :class:`edge_agent.recognition_container.ContainerReader` (the shipped reader and localiser in
``models/``, LiteRT, one thread; no TensorFlow needed) on held-out renders of
:func:`hw_sim.render_container.render_container` (``held_out=True``: faces and styles training never
sees; seeds no training set uses): ``pictures`` are whole doors and sides, ``crops`` loose crops of
the code. ``--write`` stores the figures in ``models/container_reader.metrics.json`` under
``pipeline`` and rewrites the card.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from edge_agent.recognition_container import ContainerReader  # noqa: E402
from hw_sim.render_container import code_crop, render_container  # noqa: E402

MODELS = HERE.parent / "models"
SIZES = ((640, 360), (800, 450), (640, 480), (1280, 720))


def _images(kind: str, n: int, seed: int) -> list[tuple[np.ndarray, str | None, str | None]]:
    out: list[tuple[np.ndarray, str | None, str | None]] = []
    for i in range(n):
        rng = np.random.default_rng([seed + i, 23])
        pic = render_container(rng, SIZES[i % len(SIZES)], held_out=True)
        if kind == "crops":
            if pic.code_box is None or pic.code is None:
                continue
            out.append((code_crop(rng, pic), pic.code, None))
        else:
            out.append((pic.image, pic.code, pic.size_type))
    return out


def measure(
    reader: ContainerReader, images: list[tuple[np.ndarray, str | None, str | None]]
) -> dict[str, float]:
    """Exact, wrong code accepted, unread (rates over all images), size/type exact, ms per image."""
    exact = wrong = unread = st_total = st_exact = 0
    times: list[float] = []
    for image, code, size_type in images:
        t0 = time.perf_counter()
        got = reader.read(image)
        times.append(1000 * (time.perf_counter() - t0))
        if not got.code:
            unread += 1
        elif got.code == code:
            exact += 1
        else:
            wrong += 1
        if size_type is not None:
            st_total += 1
            st_exact += got.size_type == size_type
    n = max(1, len(images))
    return {
        "images": len(images),
        "with_code": sum(1 for _, c, _ in images if c),
        "exact": round(exact / n, 4),
        "wrong_accepted": round(wrong / n, 4),
        "unread": round(unread / n, 4),
        "size_type_exact": round(st_exact / max(1, st_total), 4),
        "ms_per_image": round(float(np.median(times)), 2),
        "ms_per_image_mean": round(float(np.mean(times)), 2),
    }


def main() -> None:
    """Measure both sets; print, and with ``--write`` store the figures and rewrite the card."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=9_500_000)
    ap.add_argument("--reader", type=Path, default=MODELS / "container_reader.tflite")
    ap.add_argument("--locator", type=Path, default=MODELS / "container_locator.tflite")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    reader = ContainerReader.open(a.reader, a.locator if a.locator.is_file() else None)
    runs = {
        kind: measure(reader, _images(kind, a.n, a.seed + k * 100_000))
        for k, kind in enumerate(("pictures", "crops"))
    }
    reader.close()
    print(json.dumps(runs, indent=2))
    if a.write:
        metrics_path = a.reader.with_suffix(".metrics.json")
        m = json.loads(metrics_path.read_text())
        m["pipeline"] = runs
        metrics_path.write_text(json.dumps(m, indent=2) + "\n")
        import card

        print(f"card: {card.write_card(metrics_path)}")


if __name__ == "__main__":
    main()
