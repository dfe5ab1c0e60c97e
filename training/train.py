"""Train a recognition model on synthetic renders and ship it as a full-integer (int8) ``.tflite`` file.

    python training/train.py --model plate --out models/plate_ocr.tflite
    python training/train.py --model container --out models/container_ocr.tflite

Runs on a CPU (TensorFlow in its own virtualenv, see ``training/README.md``). Steps: synthesise the
training and validation sets (``training/synth.py``; cached in ``--data-dir``), train the CTC model
(``training/model.py``), convert it with ``tf.lite.TFLiteConverter`` to int8 with a representative
data set, then evaluate the ``.tflite`` file on the held-out set with the agent's own preprocessing and
CTC decoding, and write the figures next to the model (``<out>.metrics.json``).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import model as net  # noqa: E402
import synth  # noqa: E402
import tensorflow as tf  # noqa: E402

from edge_agent import recognition  # noqa: E402
from edge_agent.recognition import CHARSET, ctc_greedy  # noqa: E402

TRAIN_SEED = 1_000_000
VAL_SEED = 5_000_000
SEEN_SEED = 6_000_000  # unseen seeds in the training style (fonts and pictures training does see)
FLOORS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def _data_key() -> str:
    """Hash of everything that shapes a sample: synthesis, renderer, the agent's preprocessing."""
    h = hashlib.sha256()
    renderers = sorted(str(f.relative_to(HERE.parent)) for f in (HERE.parent / "hw_sim").glob("render*.py"))
    for rel in (
        "training/synth.py",
        "training/synth_container.py",
        *renderers,
        "edge_agent/recognition_container.py",
    ):
        h.update((HERE.parent / rel).read_bytes())
    for fn in (
        recognition.roi_pixels,
        recognition._area_weights,
        recognition.preprocess,
        recognition._luma_roi,
        recognition._stretch,
        recognition._resample,
        recognition.find_lines,
        recognition.preprocess_lines,
        recognition.preprocess_crop,
    ):
        h.update(inspect.getsource(fn).encode())
    return h.hexdigest()[:12]


def load_or_make(
    name: str, count: int, seed: int, augment: bool, data_dir: Path, workers: int, key: str | None = None
) -> tuple[np.ndarray, list[str]]:
    """A synthetic set, cached under ``data_dir`` by its parameters and the renderer's source hash.

    ``key`` names a cache made by an earlier revision of the renderer (reuse it knowingly).
    """
    path = data_dir / f"{name}-{count}-{seed}-{'aug' if augment else 'clean'}-{key or _data_key()}.npz"
    if path.is_file():
        d = np.load(path)
        return d["x"], [str(s) for s in d["y"]]
    t0 = time.perf_counter()
    xs, labels = synth.synthesise(name, count, seed, augment=augment, workers=workers)
    data_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, x=xs, y=np.array(labels))
    print(f"synthesised {count} {name} samples in {time.perf_counter() - t0:.0f} s -> {path}", flush=True)
    return xs, labels


def encode(labels: list[str], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense label matrix (padded with 0) and lengths."""
    idx = {c: i for i, c in enumerate(CHARSET)}
    dense = np.zeros((len(labels), max_len), dtype=np.int32)
    lengths = np.zeros(len(labels), dtype=np.int32)
    for i, s in enumerate(labels):
        dense[i, : len(s)] = [idx[c] for c in s]
        lengths[i] = len(s)
    return dense, lengths


def train(
    name: str,
    xs: np.ndarray,
    labels: list[str],
    val: tuple[np.ndarray, list[str]],
    epochs: int,
    batch: int,
    seed: int,
    max_train_s: float = float("inf"),
) -> tf.keras.Model:
    """Train the logits model with CTC loss; prints validation exact-match after each epoch."""
    shape = synth.SHAPES[name]
    tf.keras.utils.set_random_seed(seed)
    model = net.build_crop_reader(shape.input_hw) if shape.crops else net.build(shape.input_hw, shape.step_px)
    dense, lengths = encode(labels, shape.max_len)
    steps_per_epoch = len(labels) // batch
    schedule = tf.keras.optimizers.schedules.CosineDecay(
        3e-3, epochs * steps_per_epoch, alpha=0.02, warmup_target=None
    )
    opt = tf.keras.optimizers.Adam(schedule)
    seq_len = model.output_shape[1]

    @tf.function(jit_compile=True)
    def step(x: tf.Tensor, y: tf.Tensor, n: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.nn.ctc_loss(
                y, logits, n, tf.fill([tf.shape(x)[0]], seq_len), logits_time_major=False, blank_index=-1
            )
            loss = tf.reduce_mean(loss)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    rng = np.random.default_rng(seed)
    t_train = time.perf_counter()
    last = 0.0
    for epoch in range(epochs):
        if time.perf_counter() - t_train + last > max_train_s:  # the next epoch would overrun
            print(f"stopping after {epoch} epochs: --max-train-s reached", flush=True)
            break
        t0 = time.perf_counter()
        order = rng.permutation(len(labels))
        total = 0.0
        for b in range(steps_per_epoch):
            sel = order[b * batch : (b + 1) * batch]
            x = xs[sel].astype(np.float32)[..., None] / 255.0
            total += float(step(tf.constant(x), tf.constant(dense[sel]), tf.constant(lengths[sel])))
            if b % 100 == 99:
                rate = (b + 1) * batch / (time.perf_counter() - t0)
                mean = total / (b + 1)
                print(f"  step {b + 1}/{steps_per_epoch} loss {mean:.4f} ({rate:.0f} samples/s)", flush=True)
        last = time.perf_counter() - t0
        acc = exact_match(lambda x: tf.nn.softmax(model(x, training=False)).numpy(), *val)
        print(
            f"epoch {epoch + 1}/{epochs}: loss {total / steps_per_epoch:.4f} "
            f"val exact {acc['legible_exact']:.4f} ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    return model


def ctc_val_loss(model: tf.keras.Model, xs: np.ndarray, labels: list[str], max_len: int) -> dict[str, float]:
    """Mean CTC loss of ``model`` on a set, and of a uniform predictor (what chance scores)."""
    dense, lengths = encode(labels, max_len)
    x = xs.astype(np.float32)[..., None] / 255.0
    logits = model(x, training=False)
    steps = tf.fill([len(labels)], logits.shape[1])
    loss = tf.nn.ctc_loss(dense, logits, lengths, steps, logits_time_major=False, blank_index=-1)
    flat = tf.nn.ctc_loss(
        dense, tf.zeros_like(logits), lengths, steps, logits_time_major=False, blank_index=-1
    )
    return {"model": float(tf.reduce_mean(loss)), "uniform": float(tf.reduce_mean(flat))}


def exact_match(
    predict: object, xs: np.ndarray, labels: list[str], floor: float = 0.0, batch: int = 256
) -> dict[str, float]:
    """Exact-string accuracy on legible samples, and how often an illegible one still gave a read."""
    assert callable(predict)
    reads: list[tuple[str, float]] = []
    for b in range(0, len(labels), batch):
        probs = predict(xs[b : b + batch].astype(np.float32)[..., None] / 255.0)
        reads.extend(ctc_greedy(p) for p in probs)
    legible = [(r, s) for r, s in zip(reads, labels, strict=True) if s]
    illegible = [r for r, s in zip(reads, labels, strict=True) if not s]
    ok = sum(1 for (text, conf), s in legible if text == s and conf >= floor)
    wrong = sum(1 for (text, conf), s in legible if text != s and text and conf >= floor)
    o0 = str.maketrans("O", "0")
    ok_o0 = sum(1 for (text, conf), s in legible if text.translate(o0) == s.translate(o0) and conf >= floor)
    false_reads = sum(1 for text, conf in illegible if text and conf >= floor)
    return {
        "legible": len(legible),
        "legible_exact": ok / max(1, len(legible)),
        "legible_wrong_read": wrong / max(1, len(legible)),
        "legible_unread": (len(legible) - ok - wrong) / max(1, len(legible)),
        "legible_exact_o0_folded": ok_o0 / max(1, len(legible)),
        "illegible": len(illegible),
        "illegible_false_read": false_reads / max(1, len(illegible)),
    }


def convert(model: tf.keras.Model, representative: np.ndarray) -> bytes:
    """Full-integer int8 conversion (int8 input and output) with a representative data set."""
    shipped = net.with_softmax(model)
    converter = tf.lite.TFLiteConverter.from_keras_model(shipped)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def rep() -> object:
        for x in representative:
            yield [x.astype(np.float32)[None, ..., None] / 255.0]

    converter.representative_dataset = rep
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def tflite_predict(blob: bytes) -> object:
    """A batch predictor over the converted model (TensorFlow's own interpreter, one sample at a time)."""
    interp = tf.lite.Interpreter(model_content=blob, num_threads=2)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    (s_in, z_in), (s_out, z_out) = inp["quantization"], out["quantization"]

    def predict(x: np.ndarray) -> np.ndarray:
        res = []
        for one in x:
            q = np.clip(np.round(one / s_in) + z_in, -128, 127).astype(np.int8)
            interp.set_tensor(inp["index"], q[None])
            interp.invoke()
            res.append((interp.get_tensor(out["index"])[0].astype(np.float32) - z_out) * s_out)
        return np.stack(res)

    return predict


def ms_per_inference(blob: bytes, xs: np.ndarray) -> float:
    """Median milliseconds per ``invoke`` on one thread (TensorFlow's interpreter, this machine)."""
    interp = tf.lite.Interpreter(model_content=blob, num_threads=1)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    times = []
    for one in xs:
        interp.set_tensor(inp["index"], (one[None, ..., None].astype(np.int16) - 128).astype(inp["dtype"]))
        t0 = time.perf_counter()
        interp.invoke()
        times.append(time.perf_counter() - t0)
    return round(1000 * float(np.median(times)), 3)


def calibrate_floor(floors: dict[str, dict[str, float]]) -> float:
    """The lowest floor at which confident wrong reads are rarer than unread ones, on held-out data."""
    for f, m in sorted(floors.items(), key=lambda kv: float(kv[0])):
        if m["legible_wrong_read"] < m["legible_unread"] and m["illegible_false_read"] <= 0.05:
            return float(f)
    return max(float(f) for f in floors)


def main() -> None:
    """Train, convert, evaluate, write ``--out`` and ``--out``.metrics.json."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(synth.SHAPES), required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--train-count", type=int, default=36000)
    ap.add_argument("--val-count", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=None, help="default: the shipped model's")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--max-train-s", type=float, default=float("inf"), help="stop starting epochs after")
    ap.add_argument("--data-key", default=None, help="reuse the cached data sets made under this key")
    ap.add_argument(
        "--drop-empty",
        action="store_true",
        help="train without the empty-label samples (validation keeps them: false reads are still measured)",
    )
    ap.add_argument("--smoke", action="store_true", help="a tiny run (< 1 min): the pipeline works")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads")
    ap.add_argument("--data-dir", type=Path, default=Path.home() / ".cache" / "lane-ocr-data")
    a = ap.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    if a.smoke:
        a.train_count, a.val_count, a.epochs, a.batch, a.workers = 768, 96, 3, 32, 1
    t_start = time.perf_counter()
    k = a.data_key
    xs, labels = load_or_make(a.model, a.train_count, TRAIN_SEED, True, a.data_dir, a.workers, k)
    val = load_or_make(a.model, a.val_count, VAL_SEED, False, a.data_dir, a.workers, k)
    seen = load_or_make(a.model, max(64, a.val_count // 3), SEEN_SEED, True, a.data_dir, a.workers, k)
    if a.drop_empty:
        keep = [i for i, s in enumerate(labels) if s]
        xs, labels = xs[keep], [labels[i] for i in keep]
    epochs = a.epochs or synth.SHAPES[a.model].epochs
    model = train(a.model, xs, labels, val, epochs, a.batch, a.seed, a.max_train_s)
    float_metrics = exact_match(lambda x: tf.nn.softmax(model(x, training=False)).numpy(), *val)
    blob = convert(model, xs[:400])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_bytes(blob)
    predict = tflite_predict(blob)
    metrics = {
        "model": a.model,
        "file_bytes": len(blob),
        "train_samples": a.train_count,
        "train_seed": TRAIN_SEED,
        "val_samples": a.val_count,
        "val_seed": VAL_SEED,
        "epochs": epochs,
        "batch": a.batch,
        "drop_empty": a.drop_empty,
        "float": float_metrics,
        "val_ctc_loss": ctc_val_loss(model, val[0][:512], val[1][:512], synth.SHAPES[a.model].max_len),
        "int8": exact_match(predict, *val),
        "int8_seen_style": exact_match(predict, *seen),
        "int8_floors": {str(f): exact_match(predict, *val, floor=f) for f in FLOORS},
        "sha256": hashlib.sha256(blob).hexdigest(),
        "ms_per_inference_1_thread": ms_per_inference(blob, val[0][:200]),
        "wall_s": round(time.perf_counter() - t_start),
        "tensorflow": tf.__version__,
        "smoke": a.smoke,
    }
    metrics["min_confidence"] = calibrate_floor(metrics["int8_floors"])
    metrics_path = a.out.with_suffix(".metrics.json")
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    if synth.SHAPES[a.model].crops:
        import card

        print(f"card: {card.write_card(metrics_path)}")


if __name__ == "__main__":
    main()
