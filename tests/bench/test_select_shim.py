"""bench/select.py, the issue's name for bench/selection.py, must run that bench and must not
hide the standard library's ``select`` module from the other scripts in bench/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_select_py_runs_the_selection_bench() -> None:
    done = subprocess.run([sys.executable, str(BENCH / "select.py"), "--help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "best-arm identification on LiveCodeBench" in done.stdout


def test_scripts_beside_it_still_get_the_standard_select() -> None:
    probe = "import select, subprocess, asyncio; assert hasattr(select, 'poll'), select.__file__; print(select.__file__)"
    done = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(BENCH)!r}); {probe}"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).parent != BENCH
