"""JIT compilation on its own, loading from the on-disk cache, and CLI cold start.

Each measurement runs a fresh Python process with its own ``NUMBA_CACHE_DIR``:
empty (compile) or filled by the previous measurement (load from cache).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SCENARIOS

_SOLVE = """
from csfmodel.api import prepare
from csfmodel.solvers import solve, solve_batch
prep = prepare({"simulation": {"duration": "1 h"},
               "dose": [{"route": "iv", "type": "bolus", "amount": "1 mg"}]})
model, schedule, t_out = prep.model, prep.schedule, prep.t_out
solve(model.system, schedule, t_out, backend="numba")
if "batch" in __import__("sys").argv:
    solve_batch([model.system] * 2, [schedule], t_out, backend="numba")
"""


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("numba_cache")


def _run(args: list[str], cache: Path) -> float:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    t0 = time.perf_counter()
    subprocess.run(args, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def _once(benchmark, fn):
    benchmark.group = "compile"
    return benchmark.pedantic(fn, rounds=1, iterations=1)


def test_compile_single_cold(benchmark, cache_dir):
    """First use of the single-run kernel with an empty cache (compiles)."""
    _once(benchmark, lambda: _run([sys.executable, "-c", _SOLVE], cache_dir))


def test_compile_batch_cold(benchmark, cache_dir):
    """First use of the parallel batch kernel (single kernel already cached)."""
    _once(benchmark, lambda: _run([sys.executable, "-c", _SOLVE, "batch"], cache_dir))


def test_cached_load(benchmark, cache_dir):
    """Both kernels from the cache: the whole process (imports, model, load, solve)."""
    _once(benchmark, lambda: _run([sys.executable, "-c", _SOLVE, "batch"], cache_dir))


def test_cli_cold_no_cache(benchmark, tmp_path):
    """``csfmodel run`` of the 7-day 5 mm scenario in a fresh process, empty JIT cache."""
    out = tmp_path / "run.nc"
    cmd = [sys.executable, "-m", "csfmodel", "run", str(SCENARIOS / "pump_7d_5mm.toml"),
           "-o", str(out), "--solver", "numba"]
    _once(benchmark, lambda: _run(cmd, tmp_path / "empty_cache"))
    assert out.exists()


def test_cli_cold_cached(benchmark, tmp_path, cache_dir):
    """The same with the JIT cache filled (what users see from the second run on)."""
    out = tmp_path / "run.nc"
    cmd = [sys.executable, "-m", "csfmodel", "run", str(SCENARIOS / "pump_7d_5mm.toml"),
           "-o", str(out), "--solver", "numba"]
    _run(cmd, cache_dir)
    _once(benchmark, lambda: _run(cmd, cache_dir))
