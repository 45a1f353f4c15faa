"""Shared fixtures of the benchmark suite and the summary of speed ratios.

Run from the repository root (see benchmarks/README.md)::

    pytest benchmarks
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import numpy as np
import pytest

from csfmodel.api import prepare

SCENARIOS = Path(__file__).parent / "scenarios"
#: benchmark resolutions -> (scenario file, resolution override or None)
RESOLUTIONS = {
    "10mm": ("pump_7d_5mm.toml", "1 cm"),
    "5mm": ("pump_7d_5mm.toml", None),
    "2mm": ("pump_7d_5mm.toml", "2 mm"),
    "1mm": ("pump_7d_1mm.toml", None),
}

#: results kept for the closing summary: (kind, resolution) -> states
RESULTS: dict[tuple[str, str], np.ndarray] = {}


def scenario_dict(res: str) -> dict:
    """The benchmark scenario at a resolution, as a dict in the TOML layout."""
    name, override = RESOLUTIONS[res]
    data = tomllib.loads((SCENARIOS / name).read_text(encoding="utf-8"))
    if override:
        data = copy.deepcopy(data)
        data["simulation"]["resolution"] = override
    return data


@pytest.fixture(scope="session")
def prepared():
    """``prepared(res) -> (scenario, model, schedule, events, t_out)``, built once."""
    cache: dict = {}

    def get(res: str):
        if res not in cache:
            cache[res] = prepare(scenario_dict(res))
        return cache[res]

    return get


def _relative_error(a: np.ndarray, b: np.ndarray, n_spinal: int) -> float:
    """Worst of: spinal CSF block and each compartment, max |a - b| / peak |b|."""
    err = np.max(np.abs(a[:, :n_spinal] - b[:, :n_spinal])) / np.max(np.abs(b[:, :n_spinal]))
    for k in range(n_spinal, b.shape[1]):
        peak = np.max(np.abs(b[:, k]))
        if peak > 0:
            err = max(err, np.max(np.abs(a[:, k] - b[:, k])) / peak)
    return float(err)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    bs = getattr(config, "_benchmarksession", None)
    if bs is None or not bs.benchmarks:
        return
    med = {}
    info = {}
    for b in bs.benchmarks:
        if b.stats and b.stats.rounds:
            med[b.name] = b.stats.median
            info[b.name] = b.extra_info
    w = terminalreporter.write_line
    w("")
    w("csfmodel benchmark summary (median wall times, same session)")
    for res in RESOLUTIONS:
        num = med.get(f"test_single_numba[{res}]")
        ref = med.get(f"test_single_reference[{res}]")
        if num is None:
            continue
        line = f"  7-day pump scenario at {res:>4}: numba {num * 1e3:8.2f} ms"
        if ref is not None:
            line += f", reference {ref:7.2f} s, ratio {ref / num:7.0f}x"
            key = ("numba", res), ("reference", res)
            if key[0] in RESULTS and key[1] in RESULTS:
                n_sp = info[f"test_single_numba[{res}]"].get("n_spinal", 1)
                err = _relative_error(RESULTS[key[0]], RESULTS[key[1]], n_sp)
                line += f" (max error {err:.1e} of peak)"
        w(line)
    for name, label in (("test_batch_kernel", "batch, solver kernel"),
                        ("test_batch_end_to_end", "batch, run_batch end to end")):
        if name in med:
            n = info[name].get("scenarios", 0)
            w(f"  {label:<28}: {n} scenarios at 5 mm in {med[name]:6.2f} s = "
              f"{n / med[name]:6.0f} scenarios/s ({info[name].get('threads')} threads)")
    for name, label in (("test_compile_single_cold", "JIT compile, single kernel"),
                        ("test_compile_batch_cold", "JIT compile, batch kernel"),
                        ("test_cached_load", "load from the on-disk cache"),
                        ("test_cli_cold_no_cache", "`csfmodel run`, empty JIT cache"),
                        ("test_cli_cold_cached", "`csfmodel run`, warm JIT cache")):
        if name in med:
            w(f"  {label:<32}: {med[name]:6.2f} s")
