# ruff: noqa: E501  (the card template is markdown: its table rows are long lines)
"""Write a model card (``models/<name>.md``) from the figures training measured (``<name>.metrics.json``).

    python training/card.py models/plate_ocr.metrics.json
    python training/card.py models/plate_locator.metrics.json

The training scripts call :func:`write_card` when they finish; the card's prose (architecture, data,
input spec) lives here, next to the code that makes those things, and its numbers come only from the
metrics file. Needs no TensorFlow.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPRODUCE = {
    "plate": "nice -n 19 .train-venv/bin/python training/train.py --model plate --out models/plate_reader.tflite "
    "--train-count {train_samples} --val-count {val_samples} --epochs {epochs}",
    "plate_locator": "nice -n 19 .train-venv/bin/python training/train_locator.py --out models/plate_locator.tflite "
    "--train-count {train_frames} --val-count {val_frames} --epochs {epochs}",
}


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _previous(m: dict[str, Any]) -> str:
    """The comparison with the model this one replaced, when it was measured."""
    prev = m.get("previous_model")
    if not prev:
        return ""
    return (
        f"\n\nThe model this one replaced ({prev['name']}) reads {_pct(prev['exact'])} of the first {prev['crops']} held-out crops"
        f" exactly; this one {_pct(prev['this_model_exact'])} ({prev['how']})."
    )


def _reader(m: dict[str, Any], path: Path) -> str:
    i8, f32, seen = m["int8"], m["float"], m["int8_seen_style"]
    rows = "\n".join(
        f"| {f} | {_pct(r['legible_exact'])} | {_pct(r['legible_wrong_read'])} | {_pct(r['legible_unread'])} | "
        f"{_pct(r['legible_exact_o0_folded'])} | {_pct(r['illegible_false_read'])} |"
        for f, r in m["int8_floors"].items()
    )
    return f"""# Model card: `{path.name}` (licence plate crop reader)

Reads the registration on a crop of a North American licence plate. Run on the CPU by LiteRT
(`ai-edge-litert`) or `tflite-runtime` through `drivers/inference.py`, called by
`edge_agent/recognition_plate.py: PlateReader` (a frame's plate boxes come from
`plate_locator.tflite`; a crop given directly is read whole). It replaces the fixed-ROI
`plate_ocr.tflite` once the agent's plate path opens it (`PlateReader.open`); until then
`plate_ocr.tflite` stays the default `recognition.plate_model`.

| | |
|---|---|
| File | `models/{path.stem}.tflite`, {m["file_bytes"]:,} bytes, full-integer int8 |
| sha256 | `{m["sha256"]}` |
| Input | `[1, 64, 128, 1]` int8, scale 1/255, zero point -128 (grey in [0, 1]) |
| Output | `[1, 32, 37]` int8 softmax: per 4-pixel column step, P(class) |
| Classes | 0-35 = `0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ`, 36 = CTC blank |
| Decoding | greedy CTC (`edge_agent.recognition.ctc_greedy`); confidence = the weakest character's probability |
| Network | stride-2 stem (16 ch), conv stages 32/64/96 ch (BN, ReLU, max-pool), height-fold conv to 128 ch, global context, 2 x 1-D conv (k=5), dense; ~0.32 M parameters, no recurrent layers (`training/model.py: build_crop_reader`) |
| Speed | {m["ms_per_inference_1_thread"]} ms per crop, one thread, this machine (x86, TensorFlow's interpreter) |
| Confidence floor | {m["min_confidence"]} (calibrated on held-out synthetic data: the lowest floor at which confident wrong reads are rarer than unread ones) |
| Training | TensorFlow {m["tensorflow"]}, CTC loss, Adam with cosine decay, {m["epochs"]} epochs over {m["train_samples"]:,} crops, {m["wall_s"] // 60} min wall on 2 CPU cores |
| Reproduce | `{REPRODUCE["plate"].format(**m)}` |

## Preprocessing (the agent's code, used in training too)

`edge_agent.recognition.preprocess_crop(crop)`: the whole crop, B, G, R to luma, area-resampled to
64 x 128 (the aspect is not kept: plate crops are about 2:1), stretched between the 2nd and 98th
percentiles into [0, 1] (a flat crop is not stretched, so noise does not turn into text).

## Training data (all synthetic; no real plate image was used or looked at)

`training/synth.py: crop_sample`, seeds {m["train_seed"]:,} and up. A plate painted by
`hw_sim/render_plate.py`: US state and Canadian province styles with flat, gradient or picture
backgrounds (mountains, skyline, sun, emblem, bands), state/province names and slogans in serif,
sans and script faces at the top or bottom, the registration (1-8 characters) flat or embossed in one
of {len(m.get("train_fonts", [])) or 29} condensed sans faces (Debian and PyPI `fontpkg-*` packages), horizontally
squeezed 0.62-1.05x, with a space, dash, dot or small emblem between groups; small stacked characters
beside it (not in the label), stickers, bolts, mud, plain and dealer frames with text. The plate is put
on a bumper, tilted in 3-D (`hw_sim/render_damage.py`), cut tight or loose, scaled to 48-240 pixels
wide and damaged: blur, motion blur, glare, shadow, low light, IR grey, colour cast, noise, JPEG.
4 % of crops show a plate without a registration (label empty). The label is the registration only.

## Measured accuracy (int8 `.tflite`, the agent's preprocessing and decoding)

Held-out validation: seeds {m["val_seed"]:,}+, {i8["legible"] + i8["illegible"]:,} crops painted with registration faces
(DejaVu Sans Condensed Bold, Routed Gothic Narrow, Fjalla One, Barlow Condensed) and background
pictures (waves, dots) that training never sees. Float model before conversion: {_pct(f32["legible_exact"])} exact.
Unseen seeds in the training style: {_pct(seen["legible_exact"])} exact.

| confidence floor | exact | wrong read | unread | exact, O = 0 | blank plate read as text |
|---|---|---|---|---|---|
{rows}

`models/{path.stem}.metrics.json` holds every figure written by `training/train.py`.{_previous(m)}

## Limits

Trained on renders only: no real plate has been seen, and none was used to pick this model; expect
lower accuracy on real crops than on the held-out renders, and validate on the lane's own camera
before relying on it. Reads one line: plates whose registration is stacked in two lines are not read
correctly. O and 0 are hard to tell apart in many plate faces (see the O = 0 column).
"""


def _locator(m: dict[str, Any], path: Path) -> str:
    i8, f32 = m["int8"], m["float"]
    return f"""# Model card: `plate_locator.tflite` (licence plate localiser)

Finds licence plates in a whole lane frame, so that `plate_ocr.tflite` can read them. Called by
`edge_agent/recognition_plate.py: PlateReader`; its output is decoded in numpy by
`edge_agent/recognition_locate.py: decode` (peak picking, box decoding, non-maximum suppression).

| | |
|---|---|
| File | `models/{path.stem}.tflite`, {m["file_bytes"]:,} bytes, full-integer int8 |
| sha256 | `{m["sha256"]}` |
| Input | `[1, 144, 256, 1]` int8, scale 1/255, zero point -128: the frame as grey, letterboxed (`locator_input`) |
| Output | `[1, 36, 64, 3]` int8: per 4-pixel cell, P(plate centre), ln(width / 4), ln(height / 4) |
| Network | CenterNet-style: 4 stride-2 stages (16/24/48/64 ch), two upsampling stages with skips back to stride 4, 1x1 head (`training/train_locator.py: build`) |
| Speed | {m["ms_per_frame_model_1_thread"]} ms per frame for the model, one thread, this machine; the letterbox of a 1280 x 720 frame adds about 6-12 ms in numpy |
| Training | TensorFlow {m["tensorflow"]}, focal loss on Gaussian centre targets + L1 on log sizes, Adam with cosine decay, {m["epochs"]} epochs over {m["train_frames"]:,} frames, {m["wall_s"] // 60} min wall on 2 CPU cores |
| Reproduce | `{REPRODUCE["plate_locator"].format(**m)}` |

## Training data (all synthetic)

`hw_sim/render_scene.py: truck_front` (seeds {m["train_seed"]:,}+): a cab with windscreen, visor,
grille, maker's badge (words, rings), headlights and bumper in a yard, a plate from
`hw_sim/render_plate.py` mounted on the bumper at 7-22 % of the frame width, tilted in 3-D, and
distractors: USDOT numbers, fleet unit numbers, company names, phone numbers. 8 % of frames have no
plate. Frames 512 x 288, 640 x 360 and 384 x 288, damaged by `hw_sim/render_damage.py: camera_damage`.

## Measured (int8, held-out frames: seeds {m["val_seed"]:,}+, unseen plate faces and pictures)

| | float | int8 |
|---|---|---|
| plate found, best candidate (IoU >= 0.5) | {_pct(f32["recall_top1_iou50"])} | {_pct(i8["recall_top1_iou50"])} |
| plate found among the top 3 | {_pct(f32["recall_top3_iou50"])} | {_pct(i8["recall_top3_iou50"])} |
| false candidates per frame (threshold 0.3, top 3) | {f32["false_candidates_per_frame"]:.2f} | {i8["false_candidates_per_frame"]:.2f} |
{_thresholds(m)}
{i8["frames"]} frames, {i8["plates"]} with a plate. False candidates are harmless when the reader reads them as nothing
or with low confidence: `PlateReader` keeps the most confident read.

## Limits

Trained on renders of truck fronts only; a real lane's camera, mount and vehicles will differ.
Plates much smaller than 7 % of the frame width (about 90 pixels of a 1280-wide frame) were not trained.
"""


def _thresholds(m: dict[str, Any]) -> str:
    """The int8 model's recall and false candidates at each centre threshold, when measured."""
    rows = m.get("int8_by_threshold")
    if not rows:
        return ""
    lines = "\n".join(
        f"| {t} | {_pct(r['recall_top1_iou50'])} | {r['false_candidates_per_frame']:.2f} |"
        for t, r in rows.items()
    )
    return (
        "\nThe int8 model's centre probabilities sit higher than the float model's (quantisation), so the agent"
        f" uses threshold {m.get('threshold', 0.3)} (`PlateReader.locator_threshold`; measured with LiteRT on the"
        " same frames):\n\n"
        f"| threshold | plate found, best candidate | false candidates per frame |\n|---|---|---|\n{lines}\n"
    )


def write_card(metrics_path: Path) -> Path:
    """Write the card next to ``metrics_path`` (``x.metrics.json`` -> ``x.md``) and return its path."""
    m = json.loads(metrics_path.read_text())
    stem = metrics_path.name.removesuffix(".metrics.json")
    path = metrics_path.with_name(f"{stem}.md")
    import card_container

    makers = {
        "plate_locator": _locator,
        "container": card_container.reader_card,
        "container_locator": card_container.locator_card,
    }
    text = makers.get(m["model"], _reader)(m, path.with_suffix(".tflite"))
    path.write_text(text)
    return path


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(write_card(Path(arg)))
