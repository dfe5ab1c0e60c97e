"""Train the plate localiser on rendered truck fronts and ship it as a full-integer (int8) ``.tflite``.

    python training/train_locator.py --out models/plate_locator.tflite

Frames come from :func:`hw_sim.render_scene.truck_front` (plates among USDOT and fleet numbers,
company names and badges) damaged by :func:`hw_sim.render_damage.camera_damage`, turned into the
model input by the agent's own :func:`edge_agent.recognition_locate.locator_input`. The net predicts,
per 4-pixel cell, a plate-centre probability (Gaussian targets, focal loss) and the plate's log width
and height (L1 at the centres). The int8 model is evaluated with the agent's :func:`decode`: recall
at IoU 0.5, false candidates per frame, ms per frame. Validation frames use held-out registration
faces and plate pictures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import tensorflow as tf  # noqa: E402

from edge_agent.recognition_locate import LOCATOR_INPUT, STRIDE, Letterbox, box_iou, decode, locator_input  # noqa: E402
from hw_sim import render_fonts  # noqa: E402
from hw_sim.render_damage import camera_damage  # noqa: E402
from hw_sim.render_plate import BACKGROUNDS_HELD_OUT, BACKGROUNDS_TRAIN  # noqa: E402
from hw_sim.render_scene import truck_front  # noqa: E402

TRAIN_SEED = 2_000_000
VAL_SEED = 7_000_000
SIZES = ((512, 288), (512, 288), (512, 288), (384, 288), (640, 360))
"""Rendered frame sizes (16:9 mostly, some 4:3); the input letterboxes them."""
NO_PLATE_SHARE = 0.08


def frame_sample(
    seed: int, held_out: bool = False
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float] | None]:
    """One rendered frame: (input uint8, the input-space box as [cx, cy, w, h] or zeros, frame box)."""
    rng = np.random.default_rng([seed, 13])
    size = SIZES[int(rng.integers(len(SIZES)))]
    has_plate = rng.random() >= NO_PLATE_SHARE
    front = truck_front(
        rng,
        size,
        None,
        plate=has_plate,
        registration_fonts=render_fonts.REGISTRATION_HELD_OUT if held_out else None,
        backgrounds=BACKGROUNDS_HELD_OUT if held_out else BACKGROUNDS_TRAIN,
    )
    bgr = camera_damage(
        rng,
        front.image,
        blur_ref=max(20.0, (front.plate_box[3] - front.plate_box[1]) if front.plate_box else 40.0),
    )
    x, lb = locator_input(bgr)
    target = np.zeros(4, dtype=np.float32)
    if front.plate_box is not None:
        x0, y0, x1, y1 = (v * lb.scale for v in front.plate_box)
        target[:] = ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)
    return np.round(x * 255).astype(np.uint8), target, front.plate_box


def container_frame_sample(seed: int, held_out: bool = False) -> tuple[np.ndarray, np.ndarray, object]:
    """One container picture (``synth_container.frame_sample``): input, code and size/type boxes."""
    sys.path.insert(0, str(HERE))
    import synth_container

    return synth_container.frame_sample(seed, held_out=held_out)


TARGETS = {
    "plate": (frame_sample, TRAIN_SEED, VAL_SEED),
    "container": (container_frame_sample, 3_000_000, 7_500_000),
}
"""What a localiser finds: its frame sampler and its training and validation seeds."""


def _work(args: tuple[str, int, int, bool]) -> tuple[np.ndarray, np.ndarray]:
    target, start, count, held_out = args
    sample = TARGETS[target][0]
    xs, ts = [], []
    for i in range(count):
        x, t, _ = sample(start + i, held_out)
        xs.append(x)
        ts.append(np.asarray(t, dtype=np.float32).reshape(-1, 4))
    return np.stack(xs), np.stack(ts)


def synthesise(
    count: int, seed: int, held_out: bool, workers: int, target: str = "plate"
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` frames from seeds ``seed..``: inputs (uint8) and boxes (n, k, 4; input pixels)."""
    chunk = max(1, count // (workers * 8))
    jobs = [(target, seed + s, min(chunk, count - s), held_out) for s in range(0, count, chunk)]
    if workers <= 1:
        parts = [_work(j) for j in jobs]
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_work, jobs)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def cached(
    data_dir: Path, count: int, seed: int, held_out: bool, workers: int, target: str = "plate"
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`synthesise`, cached in ``data_dir`` by count, seed, style (delete after a renderer change)."""
    prefix = "locator" if target == "plate" else f"{target}-locator"
    path = data_dir / f"{prefix}-{count}-{seed}-{'held' if held_out else 'train'}.npz"
    if path.is_file():
        d = np.load(path)
        return d["x"], d["boxes"].reshape(len(d["x"]), -1, 4)
    xs, boxes = synthesise(count, seed, held_out, workers, target)
    data_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, x=xs, boxes=boxes)
    return xs, boxes


def targets(boxes: np.ndarray) -> np.ndarray:
    """Per-cell targets (n, ch, cw, 4): centre heat, log w, log h (cells), and the size-loss weight.

    ``boxes`` is (n, 4) or (n, k, 4) as ``[cx, cy, w, h]`` in input pixels (``w <= 0``: absent); where
    two objects' heat overlaps, the hotter one's size is the target there.
    """
    boxes = boxes.reshape(len(boxes), -1, 4)
    ch, cw = LOCATOR_INPUT[0] // STRIDE, LOCATOR_INPUT[1] // STRIDE
    out = np.zeros((len(boxes), ch, cw, 4), dtype=np.float32)
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32) + 0.5
    for i in range(len(boxes)):
        for cx, cy, w, h in boxes[i]:
            if w <= 0:
                continue
            gx, gy = cx / STRIDE, cy / STRIDE
            sx, sy = max(0.7, w / STRIDE / 6), max(0.5, h / STRIDE / 6)
            heat = np.exp(-((xx - gx) ** 2) / (2 * sx * sx) - ((yy - gy) ** 2) / (2 * sy * sy))
            iy, ix = min(ch - 1, int(gy)), min(cw - 1, int(gx))
            heat[iy, ix] = 1.0
            mine = heat > out[i, ..., 0]
            out[i, ..., 0] = np.maximum(out[i, ..., 0], heat)
            out[i, ..., 1] = np.where(mine, np.log(max(w, 1.0) / STRIDE), out[i, ..., 1])
            out[i, ..., 2] = np.where(mine, np.log(max(h, 1.0) / STRIDE), out[i, ..., 2])
            out[i, ..., 3] = np.where(mine, (heat > 0.5).astype(np.float32), out[i, ..., 3])
    return out


def _conv(x: tf.Tensor, filters: int, kernel: int = 3, strides: int = 1) -> tf.Tensor:
    x = tf.keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    return tf.keras.layers.ReLU()(x)


def build() -> tf.keras.Model:
    """(batch, 144, 256, 1) -> (batch, 36, 64, 3): centre logit, log w, log h."""
    inp = tf.keras.Input((*LOCATOR_INPUT, 1), name="frame")
    x = _conv(inp, 16, strides=2)  # 72 x 128
    s4 = _conv(_conv(x, 24, strides=2), 24)  # 36 x 64
    s8 = _conv(_conv(s4, 48, strides=2), 48)  # 18 x 32
    s16 = _conv(_conv(s8, 64, strides=2), 64)  # 9 x 16
    u = tf.keras.layers.UpSampling2D(2)(s16)
    u = _conv(tf.keras.layers.Concatenate()([u, s8]), 48, kernel=1)
    u = _conv(u, 48)
    u = tf.keras.layers.UpSampling2D(2)(u)
    u = _conv(tf.keras.layers.Concatenate()([u, s4]), 32, kernel=1)
    u = _conv(u, 24)
    out = tf.keras.layers.Conv2D(3, 1, name="head")(u)
    return tf.keras.Model(inp, out)


def shipped(model: tf.keras.Model) -> tf.keras.Model:
    """The shipped form: sigmoid on the centre channel, sizes as they are."""
    out = model.output
    heat = tf.keras.layers.Activation("sigmoid")(out[..., :1])
    return tf.keras.Model(model.input, tf.keras.layers.Concatenate(name="boxes")([heat, out[..., 1:]]))


def loss_fn(y: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """CenterNet focal loss on the centres plus L1 on the log sizes at the centres."""
    heat, p = y[..., 0], tf.sigmoid(logits[..., 0])
    p = tf.clip_by_value(p, 1e-4, 1 - 1e-4)
    pos = tf.cast(heat >= 0.999, tf.float32)
    pos_loss = -tf.math.log(p) * (1 - p) ** 2 * pos
    neg_loss = -tf.math.log(1 - p) * p**2 * (1 - heat) ** 4 * (1 - pos)
    n = tf.maximum(1.0, tf.reduce_sum(pos))
    focal = (tf.reduce_sum(pos_loss) + tf.reduce_sum(neg_loss)) / n
    wsz = y[..., 3]
    size = tf.reduce_sum(tf.abs(logits[..., 1:3] - y[..., 1:3]) * wsz[..., None]) / tf.maximum(
        1.0, tf.reduce_sum(wsz)
    )
    return focal + size


def evaluate(predict: object, xs: np.ndarray, boxes: np.ndarray, top_k: int = 3) -> dict[str, float]:
    """Recall at IoU 0.5 of the first object, the other objects' recall, false candidates per frame.

    The first object's recall is of the best candidate and of any of the top ``top_k``; the others'
    of any candidate; a false candidate matches no object.
    """
    assert callable(predict)
    boxes = boxes.reshape(len(boxes), -1, 4)
    lb = Letterbox(1.0, LOCATOR_INPUT[1], LOCATOR_INPUT[0])
    top1 = topk = plates = false = others = others_found = 0
    for i in range(len(xs)):
        out = predict(xs[i : i + 1].astype(np.float32)[..., None] / 255.0)[0]
        cands = decode(out, lb, threshold=0.3, top_k=top_k)
        gts = [
            (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2) if w > 0 else None for cx, cy, w, h in boxes[i]
        ]
        matched = [any(g is not None and box_iou(c.box, g) >= 0.5 for g in gts) for c in cands]
        false += sum(1 for m in matched if not m)
        if gts[0] is not None:
            plates += 1
            hits = [box_iou(c.box, gts[0]) >= 0.5 for c in cands]
            top1 += bool(hits and hits[0])
            topk += any(hits)
        for g in gts[1:]:
            if g is not None:
                others += 1
                others_found += any(box_iou(c.box, g) >= 0.5 for c in cands)
    out_m = {
        "frames": len(xs),
        "plates": plates,
        "recall_top1_iou50": top1 / max(1, plates),
        "recall_top3_iou50": topk / max(1, plates),
        "false_candidates_per_frame": false / max(1, len(xs)),
    }
    if others:
        out_m["other_objects"] = others
        out_m["other_recall_iou50"] = others_found / others
    return out_m


def convert(model: tf.keras.Model, rep: np.ndarray) -> bytes:
    """Full-integer int8 conversion with a representative set."""
    conv = tf.lite.TFLiteConverter.from_keras_model(shipped(model))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]

    def gen() -> object:
        for x in rep:
            yield [x.astype(np.float32)[None, ..., None] / 255.0]

    conv.representative_dataset = gen
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return bytes(conv.convert())


def tflite_predict(blob: bytes, threads: int = 1) -> tuple[object, object]:
    """A one-frame predictor over the int8 model, and a function timing one invoke (ms)."""
    interp = tf.lite.Interpreter(model_content=blob, num_threads=threads)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    (s_in, z_in), (s_out, z_out) = inp["quantization"], out["quantization"]

    def predict(x: np.ndarray) -> np.ndarray:
        q = np.clip(np.round(x[0] / s_in) + z_in, -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], q[None])
        interp.invoke()
        return (interp.get_tensor(out["index"]).astype(np.float32) - z_out) * s_out

    def timed() -> float:
        t0 = time.perf_counter()
        interp.invoke()
        return 1000 * (time.perf_counter() - t0)

    return predict, timed


def main() -> None:
    """Synthesise, train, convert, evaluate; write ``--out`` and its ``.metrics.json``."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--target", choices=sorted(TARGETS), default="plate", help="what the localiser finds")
    ap.add_argument("--train-count", type=int, default=6000)
    ap.add_argument("--val-count", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-train-s", type=float, default=float("inf"))
    ap.add_argument("--data-dir", type=Path, default=Path.home() / ".cache" / "lane-ocr-data")
    ap.add_argument("--synth-only", action="store_true", help="render and cache the frames, then stop")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.train_count, a.val_count, a.epochs = 256, 32, 2
    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    t_start = time.perf_counter()
    _, train_seed, val_seed = TARGETS[a.target]
    top_k = 3 if a.target == "plate" else 4
    xs, boxes = cached(a.data_dir, a.train_count, train_seed, False, a.workers, a.target)
    vx, vboxes = cached(a.data_dir, a.val_count, val_seed, True, a.workers, a.target)
    print(f"{len(xs)} + {len(vx)} frames ready in {time.perf_counter() - t_start:.0f} s", flush=True)
    if a.synth_only:
        return
    ys = targets(boxes)
    tf.keras.utils.set_random_seed(a.seed)
    model = build()
    steps = len(xs) // a.batch
    opt = tf.keras.optimizers.Adam(
        tf.keras.optimizers.schedules.CosineDecay(2e-3, a.epochs * steps, alpha=0.05)
    )

    @tf.function(jit_compile=True)
    def step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    rng = np.random.default_rng(a.seed)
    t_train = time.perf_counter()
    epochs = 0
    last = 0.0
    for epoch in range(a.epochs):
        if time.perf_counter() - t_train + last > a.max_train_s:  # the next epoch would overrun
            print(f"stopping after {epoch} epochs: --max-train-s reached", flush=True)
            break
        t0 = time.perf_counter()
        order = rng.permutation(len(xs))
        total = 0.0
        for b in range(steps):
            sel = order[b * a.batch : (b + 1) * a.batch]
            x = xs[sel].astype(np.float32)[..., None] / 255.0
            if rng.random() < 0.5:  # mirror: plates are not mirrored, but where they sit is
                x, y = x[:, :, ::-1], ys[sel][:, :, ::-1]
                y = np.ascontiguousarray(y)
            else:
                y = ys[sel]
            total += float(step(tf.constant(np.ascontiguousarray(x)), tf.constant(y)))
        epochs += 1
        last = time.perf_counter() - t0
        print(
            f"epoch {epoch + 1}/{a.epochs}: loss {total / max(1, steps):.4f} "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    float_metrics = evaluate(lambda x: shipped(model)(x, training=False).numpy(), vx, vboxes, top_k)
    blob = convert(model, xs[:300])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_bytes(blob)
    predict, timed = tflite_predict(blob)
    int8 = evaluate(predict, vx, vboxes, top_k)
    ms = float(np.median([timed() for _ in range(50)]))
    metrics = {
        "model": f"{a.target}_locator",
        "file_bytes": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "train_frames": a.train_count,
        "train_seed": train_seed,
        "val_frames": a.val_count,
        "val_seed": val_seed,
        "epochs": epochs,
        "float": float_metrics,
        "int8": int8,
        "ms_per_frame_model_1_thread": round(ms, 2),
        "wall_s": round(time.perf_counter() - t_start),
        "tensorflow": tf.__version__,
        "smoke": a.smoke,
    }
    metrics_path = a.out.with_suffix(".metrics.json")
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    sys.path.insert(0, str(HERE))
    import card

    print(f"card: {card.write_card(metrics_path)}")


if __name__ == "__main__":
    main()
