# ruff: noqa: E501  (the card template is markdown: its table rows are long lines)
"""The container models' cards (``models/container_reader.md``, ``models/container_locator.md``).

Called by :func:`card.write_card` for metrics files whose ``model`` is ``container`` or
``container_locator``. Numbers come only from the metrics file; the figures of the whole pipeline
(localiser, reader and ISO 6346 validation together, as the lane runs them) come from
``training/eval_container.py``, stored in the metrics file under ``pipeline``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPRODUCE = {
    "container": "nice -n 19 .train-venv/bin/python training/train.py --model container --out models/container_reader.tflite "
    "--train-count {train_samples} --val-count {val_samples} --epochs {epochs} --batch {batch}{drop}",
    "container_locator": "nice -n 19 .train-venv/bin/python training/train_locator.py --target container "
    "--out models/container_locator.tflite --train-count {train_frames} --val-count {val_frames} --epochs {epochs}",
}


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _pipeline(m: dict[str, Any]) -> str:
    """The whole pipeline's figures on held-out pictures, when ``eval_container.py`` measured them."""
    runs = m.get("pipeline")
    if not runs:
        return "\nThe whole pipeline (localiser + reader + validation) has not been measured for this file.\n"
    rows = "\n".join(
        f"| {name} | {r['images']} | {_pct(r['exact'])} | {_pct(r['wrong_accepted'])} | {_pct(r['unread'])} | "
        f"{_pct(r['size_type_exact'])} | {r['ms_per_image']:.1f} |"
        for name, r in runs.items()
    )
    return f"""
## The whole pipeline (what the lane and `edge-agent read container` do)

`training/eval_container.py` runs `edge_agent.recognition_container.ContainerReader` (LiteRT, one
thread) on held-out renders (`held_out=True`: faces, paints and styles training never sees):
`pictures` are whole doors and sides (the localiser finds the code), `crops` are loose crops of the
code read directly. A code is accepted only when its check digit agrees (`edge_agent.container_code`).

| set | images | exact | wrong code accepted | unread | size/type exact | ms per image |
|---|---|---|---|---|---|---|
{rows}
"""


def reader_card(m: dict[str, Any], path: Path) -> str:
    """The container reader's card."""
    f32, seen = m["float"], m["int8_seen_style"]
    rows = "\n".join(
        f"| {f} | {_pct(r['legible_exact'])} | {_pct(r['legible_wrong_read'])} | {_pct(r['legible_unread'])} |"
        for f, r in m["int8_floors"].items()
    )
    dropped = (
        "; left out of training with `--drop-empty`: validation refuses what is not a code, and "
        "illegible reads are still measured on the validation set"
        if m.get("drop_empty")
        else ""
    )
    return f"""# Model card: `{path.name}` (ISO 6346 container code reader)

Reads the painted container code (owner, category, serial, check digit) or the size/type code from a
crop around it. Run on the CPU by LiteRT (`ai-edge-litert`) or `tflite-runtime` through
`drivers/inference.py`, called by `edge_agent/recognition_container.py: ContainerReader`; the boxes
in a whole picture come from `container_locator.tflite`.

| | |
|---|---|
| File | `models/{path.stem}.tflite`, {m["file_bytes"]:,} bytes, full-integer int8 |
| sha256 | `{m["sha256"]}` |
| Input | `[1, 32, 256, 1]` int8, scale 1/255, zero point -128 (grey in [0, 1]) |
| Output | `[1, 64, 37]` int8 softmax: per 4-pixel column step, P(class) |
| Classes | 0-35 = `0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ`, 36 = CTC blank |
| Decoding | greedy CTC (`edge_agent.recognition.ctc_greedy`); confidence = the weakest character's probability; then `edge_agent.container_code.validate` (shape, category, check digit, unambiguous corrections only) |
| Network | stride-2 stem (16 ch), conv stages 32/64/96 ch (BN, ReLU, max-pool), height-fold conv to 128 ch, global context, 2 x 1-D conv (k=5), dense; no recurrent layers (`training/model.py: build_crop_reader`) |
| Speed | {m["ms_per_inference_1_thread"]} ms per crop, one thread, this machine (x86, TensorFlow's interpreter) |
| Training | TensorFlow {m["tensorflow"]}, CTC loss, Adam with cosine decay, {m["epochs"]} epochs over {m["train_samples"]:,} crops, {m["wall_s"] // 60} min wall on 2 CPU cores |
| Reproduce | `{REPRODUCE["container"].format(**{"batch": 128, **m, "drop": " --drop-empty" if m.get("drop_empty") else ""})}` |

## Preprocessing (the agent's code, used in training too)

`edge_agent.recognition_container.container_input(crop)`: a crop at least twice as tall as wide is a
vertical code, cut into its characters by row energy (`vertical_rows`) and laid end to end; any other
crop has its one or two lines found (`edge_agent.recognition.find_lines`) and laid end to end
(`preprocess_lines`); the strip is scaled to 32 pixels high, padded or squeezed to 256 wide and
stretched between its 2nd and 98th percentiles.

## Training data (all synthetic; no real container photo was used)

`training/synth_container.py: crop_sample`, seeds {m["train_seed"]:,} and up, pictures painted by
`hw_sim/render_container.py` (doors and sides, corrugation, real paint colours, rust, dents, dirt,
operator names and logos, weight tables, CSC plates, hazard labels, a second box's code as a
distractor; codes in one line, two lines or vertical, check digit often boxed, stencil and DIN-like
faces; perspective, blur, glare, shadow, low light, IR, noise, JPEG). 72 % of crops are around the
code (label: its 11 characters), 18 % around the size/type code (label: e.g. `45G1`), 10 % elsewhere
on the picture (label empty{dropped}). Crops are jittered and loose, as the localiser's boxes are.

## Measured (int8 `.tflite`, raw reads on held-out crops, before validation)

Validation: seeds {m["val_seed"]:,}+, crops painted in the renderer's held-out faces and styles. Float
model before conversion: {_pct(f32["legible_exact"])} exact. Unseen seeds in the training style: {_pct(seen["legible_exact"])} exact.

| confidence floor | exact | wrong read | unread |
|---|---|---|---|
{rows}
{_pipeline(m)}
`models/{path.stem}.metrics.json` holds every figure.

## Limits

Trained and measured on renders only: no real container photo has been seen. Expect lower accuracy
on a real lane's camera until the renderer is checked against it. A wrong read is almost always
refused by the check digit (it catches every single wrong character except between owner letters
whose values differ by 11 or 22, and a check digit of 0 standing for 10): the model's raw wrong-read
rate above is far higher than the wrong codes the pipeline accepts.
"""


def locator_card(m: dict[str, Any], path: Path) -> str:
    """The container localiser's card."""
    i8, f32 = m["int8"], m["float"]
    return f"""# Model card: `{path.name}` (container code localiser)

Finds the painted ISO 6346 code (the whole block: one line, two lines or a vertical column) and the
size/type code in a whole picture of a container's doors or side, so that `container_reader.tflite`
can read them. Called by `edge_agent/recognition_container.py: ContainerReader`; decoded in numpy by
`edge_agent/recognition_locate.py: decode`, the plate localiser's decoding.

| | |
|---|---|
| File | `models/{path.stem}.tflite`, {m["file_bytes"]:,} bytes, full-integer int8 |
| sha256 | `{m["sha256"]}` |
| Input | `[1, 144, 256, 1]` int8, scale 1/255, zero point -128: the picture as grey, letterboxed (`locator_input`) |
| Output | `[1, 36, 64, 3]` int8: per 4-pixel cell, P(text block centre), ln(width / 4), ln(height / 4) |
| Network | CenterNet-style, as `plate_locator.tflite` (`training/train_locator.py: build`) |
| Speed | {m["ms_per_frame_model_1_thread"]} ms per picture for the model, one thread, this machine; the letterbox adds a few ms for large pictures |
| Training | TensorFlow {m["tensorflow"]}, focal loss + L1 on log sizes, {m["epochs"]} epochs over {m["train_frames"]:,} pictures, {m["wall_s"] // 60} min wall on 2 CPU cores |
| Reproduce | `{REPRODUCE["container_locator"].format(**m)}` |

## Training data (all synthetic)

`training/synth_container.py: frame_sample` (seeds {m["train_seed"]:,}+): pictures from
`hw_sim/render_container.py`, 512-960 pixels wide; targets are the code block's and the size/type
code's boxes. Distractor text (operator names, weight tables, plates, a second box's code) is not a
target: the localiser learns to pass it by.

## Measured (int8, held-out pictures: seeds {m["val_seed"]:,}+, unseen faces and styles)

| | float | int8 |
|---|---|---|
| code found, best candidate (IoU >= 0.5) | {_pct(f32["recall_top1_iou50"])} | {_pct(i8["recall_top1_iou50"])} |
| code found among the top 4 | {_pct(f32["recall_top3_iou50"])} | {_pct(i8["recall_top3_iou50"])} |
| size/type found among the top 4 | {_pct(f32.get("other_recall_iou50", 0.0))} | {_pct(i8.get("other_recall_iou50", 0.0))} |
| candidates matching neither, per picture (threshold 0.3) | {f32["false_candidates_per_frame"]:.2f} | {i8["false_candidates_per_frame"]:.2f} |

{i8["frames"]} pictures, {i8["plates"]} with a legible code. A false candidate costs one more read
(about a millisecond) and is refused by validation unless it reads as a valid code.

## Limits

Renders only; a real lane's camera and boxes will differ.
"""
