"""Container codes: our shipped models against Tesseract on the same images.

    .venv/bin/python bench/container_bench.py [--n 200] [--seed 8600000] [--threads 1]

Images are renders of ``hw_sim.render_container`` in its held-out style (faces, paints and layouts
training never sees), from seeds no training or test uses (training's are 1,000,000+, 3,000,000+,
5,000,000+, 6,000,000+, 7,500,000+; ``training/eval_container.py`` 9,500,000+): 8,600,000+ by default.

* ``crops``: loose crops of the painted code (one line, two lines or vertical), read by both readers;
* ``pictures``: whole doors and sides, read by ours only (the localiser finds the code; Tesseract has
  no localiser, so it is not scored on them).

Tesseract 5 (Debian ``tesseract-ocr``, through pytesseract) reads each crop grey and upscaled 2x as a
block (``--psm 6``; ``--psm 5`` for a vertical crop) with the whitelist ``A-Z0-9``; its text goes
through the same ISO 6346 validation as ours (``edge_agent.container_code.validate``), so both are
scored as the lane would use them: exact (the right code accepted), wrong (a wrong code accepted),
ms per image, and ours / Tesseract as ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_agent.container_code import ContainerCode, validate
from edge_agent.read import container_locator_model
from edge_agent.recognition_container import ContainerReader, is_vertical
from hw_sim.render_container import code_crop, render_container

WHITELIST = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
MODELS = Path(__file__).resolve().parent.parent / "models"
Image = np.ndarray
Sample = tuple[Image, str | None]


def crops(n: int, seed: int) -> list[Sample]:
    """Loose crops of the painted code, held-out style."""
    out: list[Sample] = []
    i = 0
    while len(out) < n:
        rng = np.random.default_rng([seed + i, 29])
        pic = render_container(rng, (800, 450), held_out=True)
        i += 1
        if pic.code_box is not None and pic.code is not None:
            out.append((code_crop(rng, pic), pic.code))
    return out


def pictures(n: int, seed: int) -> list[Sample]:
    """Whole doors and sides, held-out style (some without a legible code: truth ``None``)."""
    sizes = ((640, 360), (1280, 720), (800, 450), (640, 480))
    out: list[Sample] = []
    for i in range(n):
        rng = np.random.default_rng([seed + i, 31])
        pic = render_container(rng, sizes[i % len(sizes)], held_out=True)
        out.append((pic.image, pic.code))
    return out


def tesseract_reader() -> Callable[[Image], str]:
    """Tesseract on one crop: grey, 2x, a block of text, whitelist; then our ISO 6346 validation."""
    import pytesseract
    from PIL import Image as PilImage

    def read(crop: Image) -> str:
        img = PilImage.fromarray(np.ascontiguousarray(crop[:, :, ::-1])).convert("L")
        img = img.resize((img.width * 2, img.height * 2), PilImage.Resampling.BICUBIC)
        psm = 5 if is_vertical(crop) else 6
        raw = pytesseract.image_to_string(img, config=f"--psm {psm} -c tessedit_char_whitelist={WHITELIST}")
        got = validate(raw)
        return got.code if isinstance(got, ContainerCode) else ""

    return read


def score(read: Callable[[Image], str], images: list[Sample]) -> tuple[float, float, float]:
    """Exact rate, wrong-code-accepted rate, median ms per image."""
    hits = wrong = 0
    times: list[float] = []
    for image, code in images:
        t0 = time.perf_counter()
        got = read(image)
        times.append((time.perf_counter() - t0) * 1000.0)
        hits += bool(got) and got == code
        wrong += bool(got) and got != code
    n = max(1, len(images))
    return hits / n, wrong / n, statistics.median(times)


def main() -> None:
    """Print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="images per set (default 200)")
    ap.add_argument("--seed", type=int, default=8_600_000, help="first seed (default 8,600,000)")
    ap.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    ap.add_argument("--model", type=Path, default=MODELS / "container_reader.tflite")
    a = ap.parse_args()
    locator = container_locator_model(a.model)
    ours = ContainerReader.open(a.model, locator if locator.is_file() else None, num_threads=a.threads)

    def read_ours(image: Image) -> str:
        return ours.read(image).code

    print(f"container bench: {a.n} images per set, seeds {a.seed}+, {a.threads} thread(s), model {a.model}")
    print(f"{'set':9} {'reader':10} {'exact':>7} {'wrong':>7} {'ms/image':>9}")
    crop_set = crops(a.n, a.seed)
    o_exact, o_wrong, o_ms = score(read_ours, crop_set)
    print(f"{'crops':9} {'ours':10} {o_exact:7.1%} {o_wrong:7.1%} {o_ms:9.2f}")
    try:
        tess = tesseract_reader()
        t_exact, t_wrong, t_ms = score(tess, crop_set)
    except ImportError as exc:
        print(f"{'crops':9} {'tesseract':10} (skipped: {exc})")
    else:
        print(f"{'crops':9} {'tesseract':10} {t_exact:7.1%} {t_wrong:7.1%} {t_ms:9.2f}")
        ratio = o_exact / t_exact if t_exact else float("inf")
        print(f"{'crops':9} {'ratio':10} {ratio:6.2f}x {'':7} {t_ms / o_ms:8.1f}x  (exact, speed)")
    p_exact, p_wrong, p_ms = score(read_ours, pictures(a.n, a.seed + 100_000))
    print(f"{'pictures':9} {'ours':10} {p_exact:7.1%} {p_wrong:7.1%} {p_ms:9.2f}  (whole doors and sides)")
    ours.close()


if __name__ == "__main__":
    main()
