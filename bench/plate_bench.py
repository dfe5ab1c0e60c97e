"""Plate reading: our shipped model against Tesseract on the same images; the localiser per frame.

    .venv/bin/python bench/plate_bench.py [--n 200] [--seed 8000000] [--threads 1]

Images are synthetic, from seeds no training or test uses (training's are 1,000,000+, 2,000,000+,
5,000,000+, 6,000,000+ and 7,000,000+; the tests' 100-399 and 9,100,000+; see ``training/train.py``,
``training/train_locator.py``): 8,000,000+ by default. Two sets, each read by both readers:

* ``lane``: the plate camera's region of interest cut from frames ``hw_sim.render.render_frame`` draws
  (what the lane's plate camera and the demo show);
* ``variety``: plate crops from ``hw_sim.render_plate`` (US and Canadian plate styles) with camera
  damage, in the registration faces and backgrounds training holds out.

Tesseract 5 (Debian ``tesseract-ocr``, through pytesseract) reads each crop as one line (``--psm 7``)
with the whitelist ``A-Z0-9``, grey and upscaled 2x, which is its best setting for plates. Figures:
exact-match rate and ms per image for each reader, and ours / Tesseract as ratios. With a localiser
model in ``models/`` (``plate_locator.tflite``), its ms per 1280x720 frame (input preparation, model
and decoding). Never run this on the OpenALPR benchmark images: they are the project's held-out judge.
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

from edge_agent.codes import normalise_plate
from edge_agent.config.camera import TfliteRecognitionConfig
from edge_agent.read import locator_model, open_plate_reader
from hw_sim.render import PLATE_ROI, render_frame, roi_box
from hw_sim.world import Scene

WHITELIST = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
Crop = np.ndarray


def lane_set(n: int, seed: int) -> list[tuple[Crop, str]]:
    """ROI crops of rendered lane frames (640x360 and 1280x720) with their plate text."""
    from training.synth import random_plate

    out: list[tuple[Crop, str]] = []
    for i in range(n):
        rng = np.random.default_rng([seed + i, 3])
        text = random_plate(rng)
        size = (1280, 720) if i % 2 else (640, 360)
        frame = render_frame(Scene(text, None), "plate", seed=seed + i, size=size)
        x0, y0, x1, y1 = roi_box(PLATE_ROI, *size)
        out.append((np.ascontiguousarray(frame[y0:y1, x0:x1]), text))
    return out


def variety_set(n: int, seed: int) -> list[tuple[Crop, str]]:
    """Damaged crops of varied plates, in the faces and backgrounds training holds out."""
    from hw_sim import render_fonts
    from hw_sim.render_damage import plate_crop
    from hw_sim.render_plate import BACKGROUNDS_HELD_OUT, render_plate

    out: list[tuple[Crop, str]] = []
    for i in range(n):
        rng = np.random.default_rng([seed + i, 11])
        plate = render_plate(
            rng, None, registration_fonts=render_fonts.REGISTRATION_HELD_OUT, backgrounds=BACKGROUNDS_HELD_OUT
        )
        out.append((plate_crop(rng, plate), plate.text))
    return out


def tesseract_reader() -> Callable[[Crop], str]:
    """Tesseract on one crop: grey, 2x, one line, whitelist."""
    import pytesseract
    from PIL import Image

    config = f"--psm 7 -c tessedit_char_whitelist={WHITELIST}"

    def read(crop: Crop) -> str:
        img = Image.fromarray(np.ascontiguousarray(crop[:, :, ::-1])).convert("L")
        img = img.resize((img.width * 2, img.height * 2), Image.Resampling.BICUBIC)
        return normalise_plate(pytesseract.image_to_string(img, config=config)) or ""

    return read


def score(read: Callable[[Crop], str], images: list[tuple[Crop, str]]) -> tuple[float, float]:
    """Exact-match rate and median ms per image."""
    hits, times = 0, []
    for crop, text in images:
        t0 = time.perf_counter()
        got = read(crop)
        times.append((time.perf_counter() - t0) * 1000.0)
        hits += got == text
    return hits / len(images), statistics.median(times)


def locator_ms(threads: int, path: Path, n: int = 50) -> float | None:
    """Median ms per 1280x720 frame for the localiser at ``path`` (input, model, decoding), if it exists."""
    if not path.is_file():
        return None
    from drivers.inference import open_interpreter
    from edge_agent.recognition_locate import decode, locator_input

    model = open_interpreter(path, threads)
    frames = [
        render_frame(Scene("ABC1234", None), "plate", seed=8_500_000 + i, size=(1280, 720)) for i in range(5)
    ]
    times = []
    for i in range(n + 5):
        t0 = time.perf_counter()
        x, box = locator_input(frames[i % len(frames)])
        out = model.invoke(x[None, :, :, None])
        decode(out.reshape(out.shape[1:]), box)
        if i >= 5:
            times.append((time.perf_counter() - t0) * 1000.0)
    model.close()
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="images per set (default 200)")
    ap.add_argument("--seed", type=int, default=8_000_000, help="first seed (default 8,000,000)")
    ap.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    ap.add_argument("--model", type=Path, default=None, help="plate model (default: the shipped one)")
    a = ap.parse_args()
    cfg = TfliteRecognitionConfig(backend="tflite")
    model_path = a.model or cfg.plate_model
    ours = open_plate_reader(
        model_path, cfg.plate_roi.as_tuple(), locator_path=locator_model(model_path), num_threads=a.threads
    )

    def read_ours(crop: Crop) -> str:
        got = ours.read(crop)
        return got.text if got.confidence >= cfg.min_confidence else ""

    tess = tesseract_reader()
    sets: dict[str, Callable[[int, int], list[tuple[Crop, str]]]] = {"lane": lane_set, "variety": variety_set}
    print(f"plate bench: {a.n} images per set, seeds {a.seed}+, {a.threads} thread(s), model {model_path}")
    print(f"{'set':8} {'reader':10} {'exact':>7} {'ms/image':>9}")
    for k, (name, make) in enumerate(sets.items()):
        try:
            images = make(a.n, a.seed + k * 100_000)
        except ImportError as exc:
            print(f"{name:8} (skipped: {exc})")
            continue
        ours_exact, ours_ms = score(read_ours, images)
        tess_exact, tess_ms = score(tess, images)
        print(f"{name:8} {'ours':10} {ours_exact:7.1%} {ours_ms:9.2f}")
        print(f"{name:8} {'tesseract':10} {tess_exact:7.1%} {tess_ms:9.2f}")
        ratio = ours_exact / tess_exact if tess_exact else float("inf")
        print(f"{name:8} {'ratio':10} {ratio:6.1f}x {tess_ms / ours_ms:8.1f}x  (exact ours/tesseract, speed)")
    ours.close()
    ms = locator_ms(a.threads, locator_model(model_path))
    print(
        "localiser: none beside the plate model"
        if ms is None
        else f"localiser: {ms:.2f} ms per 1280x720 frame"
    )


if __name__ == "__main__":
    main()
