"""Recognition throughput on this CPU: inferences/s and latency p50/p99 per model, 1 and 2 threads, RSS.

    .venv/bin/python bench/recognition_bench.py [--n 300]

Measures the model alone (``invoke`` on a preprocessed input) and the whole per-frame path
(``TfliteRecogniser.read_text``: crop, resample, model, CTC decode) on rendered 1280x720 frames.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drivers.inference import open_interpreter
from edge_agent.config.camera import TfliteRecognitionConfig
from edge_agent.recognition import TfliteRecogniser, preprocess
from hw_sim.render import render_frame
from hw_sim.world import Scene


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stats(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p50 = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"{1000 / statistics.mean(ms):7.0f}/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    a = ap.parse_args()
    print(f"rss at start {_rss_mb():.0f} MB")
    frames = {
        "plate": render_frame(Scene("ABC1234", None), "plate", seed=1, size=(1280, 720)),
        "container": render_frame(Scene(None, "CSQU3054383"), "container", seed=1, size=(1280, 720)),
    }
    for threads in (1, 2):
        cfg = TfliteRecognitionConfig(backend="tflite", num_threads=threads)
        for role, path in (("plate", cfg.plate_model), ("container", cfg.container_model)):
            model = open_interpreter(path, num_threads=threads)
            roi = (cfg.plate_roi if role == "plate" else cfg.container_roi).as_tuple()
            _, h, w, _ = model.input_shape
            x = preprocess(frames[role], roi, (h, w))[None, :, :, None]
            for _ in range(20):
                model.invoke(x)
            times = []
            for _ in range(a.n):
                t0 = time.perf_counter()
                model.invoke(x)
                times.append(time.perf_counter() - t0)
            print(f"{role:9s} model   threads={threads}: {_stats(times)}")
            model.close()
        rec = TfliteRecogniser(cfg)
        for role, frame in frames.items():
            text = rec.read_text(frame, role)[0]
            times = []
            for _ in range(a.n):
                t0 = time.perf_counter()
                rec.read_text(frame, role)
                times.append(time.perf_counter() - t0)
            print(f"{role:9s} frame   threads={threads}: {_stats(times)}  (read {text!r})")
        rec.close()
    print(f"peak rss {_rss_mb():.0f} MB (python + numpy + LiteRT + both models)")
    print(f"numpy {np.__version__}")


if __name__ == "__main__":
    main()
