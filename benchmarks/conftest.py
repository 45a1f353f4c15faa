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
    """``prepared(res)``: the :class:`csfmodel.api.Prepared` of a resolution, built once."""
    cache: dict = {}

    def get(res: str):
        if res not in cache:
            cache[res] = prepare(scenario_dict(res))
        return cache[res]

    return get


def kernel_reference(sets: list, chunk: int, assemble, summary: bool,
                     rtol: float | None = None):
    """The batch kernel alone, the reference of the end-to-end batch, sweep and population
    benchmarks: ``sets`` parsed and assembled in chunks of ``chunk`` before timing
    (``assemble(scenarios)`` gives a chunk's arrays), the JIT warmed on the first chunk,
    at ``rtol`` (default: the backend's).
    Returns the function a benchmark times (every chunk through the kernel)."""
    from csfmodel.solvers import SolverOptions, get_backend
    from csfmodel.sweep._batch import _solve_chunk, parse_chunk

    chunks = []
    for a in range(0, len(sets), chunk):
        scs, t = parse_chunk(sets[a:a + chunk], a)
        chunks.append((assemble(scs), len(scs)))
    backend = get_backend("numba")
    opts = backend.resolve(SolverOptions(rtol=rtol))
    _solve_chunk(chunks[0][0], t, backend, opts, summary, chunks[0][1])     # JIT warm

    def run():
        for ch, n in chunks:
            _solve_chunk(ch, t, backend, opts, summary, n)

    return run


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
    mins = {}
    info = {}
    for b in bs.benchmarks:
        if b.stats and b.stats.rounds:
            med[b.name] = b.stats.median
            mins[b.name] = b.stats.min
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
    _overhead_summary(w, mins, info)


def _overhead_summary(w, med: dict, info: dict) -> None:
    """``simulate()`` stage by stage (benchmarks/test_overhead.py): shares and ratio.

    ``med`` holds the *minimum* over rounds of each benchmark (the timing least disturbed
    by other jobs, as for the regression check); the stage-after-stage columns are
    minima over the rounds of one loop.
    """
    e2e = med.get("test_simulate_end_to_end[warm]")
    stages = {k: med.get(f"test_stage[{k}]") for k in
              ("parse", "model", "schedule", "solve", "run", "dataset", "grid")}
    if e2e is None or stages["solve"] is None:
        return
    loop = info["test_simulate_end_to_end[warm]"]
    inner = {k: loop.get(f"{k}_s") for k in (*stages, "simulate")}
    cold = med.get("test_simulate_end_to_end[new anatomy]")
    w(f"  simulate(), 7-day pump at 5 mm (min over rounds): end to end {e2e * 1e3:.2f} ms = "
      f"{e2e / stages['solve']:.2f}x the solver ({stages['solve'] * 1e3:.2f} ms)"
      + (f"; with a new anatomy (grid made too) {cold * 1e3:.2f} ms" if cold else ""))
    w(f"    {'stage':<38}{'own benchmark':>20}{'stage after stage':>22}")

    def row(label: str, own: float | None, one: float | None, total: float, one_total: float):
        a = f"{own * 1e3:8.2f} ms {100 * own / total:5.1f} %" if own is not None else ""
        b = f"{one * 1e3:8.2f} ms {100 * one / one_total:5.1f} %" if one is not None else ""
        w(f"    {label:<38}{a:>20}{b:>22}")

    one_total = inner["simulate"] or float("nan")

    def diff(d: dict, a: str, b: str):
        return d[a] - d[b] if d.get(a) is not None and d.get(b) is not None else None

    parts = [("parse + validate the scenario", "parse"), ("assemble the model (grid reused)",
                                                         "model"),
             ("dose schedule", "schedule"), ("solver (numba kernel)", "solve")]
    for label, k in parts:
        row(label, stages[k], inner.get(k), e2e, one_total)
    row("checks and attrs around the solver", diff(stages, "run", "solve"),
        diff(inner, "run", "solve"), e2e, one_total)
    row("Dataset (observe, amounts, coords)", stages["dataset"], inner.get("dataset"), e2e,
        one_total)
    keys = ("parse", "model", "schedule", "run", "dataset")
    if all(stages[k] is not None for k in keys):
        rest = e2e - sum(stages[k] for k in keys)
        rest_one = (one_total - sum(inner[k] for k in keys)
                    if all(inner.get(k) is not None for k in keys) else None)
        row("rest (calls, garbage collection)", rest, rest_one, e2e, one_total)
    row("end to end", e2e, inner.get("simulate"), e2e, one_total)
    if stages["grid"] is not None:
        row("grid (a new anatomy only)", stages["grid"], inner.get("grid"), e2e, one_total)
    if inner.get("simulate") and inner.get("solve"):
        w(f"    stage after stage: end to end = {inner['simulate'] / inner['solve']:.2f}x "
          "the solver")
