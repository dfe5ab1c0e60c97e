"""The atheris target runs, bounded, and finds nothing in a short run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def test_fuzz_target_short_run(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / "rfid_fuzz.py"), "-atheris_runs=3000", "-seed=1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Done 3000 runs" in proc.stderr or "Done 3000 in" in proc.stderr
