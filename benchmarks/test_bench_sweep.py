"""Sweeps on Dask against the in-process batch kernel (5 mm, 7 days, summaries).

- ``sweep-throughput``: the same N scenarios (default 4096; ``CSFMODEL_BENCH_SWEEP_N``)
  solved by the batch kernel alone in this process (assembly done before timing: the
  reference) and end to end by :func:`csfmodel.sweep.run_sweep` on a local Dask cluster
  of processes (parse, assemble, solve, reduce and write to zarr on the workers).
  ``extra_info["ratio_to_kernel"]`` is the sweep's throughput over the kernel's
  (target >= 0.9); ``rss_per_worker_mb`` the workers' resident memory after it.
- ``sweep-overhead``: per-task cost of Dask and the store: 64 one-scenario tasks of a
  tiny scenario against the same chunks solved in process.
- ``sweep-memory``: peak resident memory of ``run_batch(..., summary=True)`` for 64 and
  for N scenarios, each in a fresh process (memory bounded by the chunk: ratio <= 1.5).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numba
import numpy as np
import pytest
from conftest import scenario_dict

distributed = pytest.importorskip("distributed")

from csfmodel import sweep  # noqa: E402

N = int(os.environ.get("CSFMODEL_BENCH_SWEEP_N", "4096"))
WORKERS = int(os.environ.get("CSFMODEL_BENCH_SWEEP_WORKERS", str(os.cpu_count() or 1)))
CHUNK = 64


def _params(n: int) -> dict:
    return {"patient.dispersion": (np.linspace(0.2, 0.8, n), "cm^2/min"),
            "dose[0].rate": (np.linspace(0.5, 2.0, n), "mg/day")}


def _sweep(n: int, base: dict | None = None, chunk: int = CHUNK) -> sweep.Sweep:
    return sweep.Sweep.of(base or scenario_dict("5mm"), _params(n), design="zip",
                          chunk_size=chunk)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as lc, distributed.Client(lc) as c:
        yield c


def test_sweep_kernel_reference(benchmark):
    """The batch kernel alone on N scenarios (chunks of 64), all threads of this process."""
    from csfmodel.solvers import SolverOptions, get_backend
    from csfmodel.sweep._batch import _solve_chunk, assemble_chunk, parse_chunk
    from csfmodel.sweep._outputs import observed

    sw = _sweep(N).checked()
    cols = sw.columns()
    sets = sweep._engine._sets(scenario_dict("5mm"), [c.key for c in cols],
                               [c.raw for c in cols])
    chunks = []
    for a in range(0, N, CHUNK):
        scs, t = parse_chunk(sets[a:a + CHUNK], a)
        chunks.append((assemble_chunk(scs, observed(sw.outputs), tip=True), len(scs)))
    backend = get_backend("numba")
    opts = backend.resolve(SolverOptions())
    _solve_chunk(chunks[0][0], t, backend, opts, False, chunks[0][1])        # JIT warm

    def run():
        for ch, n in chunks:
            _solve_chunk(ch, t, backend, opts, False, n)

    benchmark.group = "sweep-throughput"
    benchmark.extra_info.update(scenarios=N, threads=numba.get_num_threads())
    benchmark.pedantic(run, rounds=1, iterations=1)
    _REF["kernel"] = N / benchmark.stats.stats.min


_REF: dict[str, float] = {}


def test_sweep_dask_end_to_end(benchmark, cluster, tmp_path):
    """run_sweep on the local cluster: N scenarios end to end into a zarr store."""
    sweep.run_sweep(_sweep(2 * WORKERS, chunk=1), tmp_path / "warm.zarr", client=cluster,
                    progress=False)                                  # JIT load on workers
    k = iter(range(100))

    def run():
        return sweep.run_sweep(_sweep(N), tmp_path / f"s{next(k)}.zarr", client=cluster,
                               progress=False)

    benchmark.group = "sweep-throughput"
    out = benchmark.pedantic(run, rounds=1, iterations=1)
    rate = N / benchmark.stats.stats.min
    rss = cluster.run(lambda: __import__("psutil").Process().memory_info().rss)
    benchmark.extra_info.update(
        scenarios=N, workers=WORKERS, threads_per_worker=1, scenarios_per_s=rate,
        ratio_to_kernel=rate / _REF["kernel"] if "kernel" in _REF else None,
        rss_per_worker_mb=max(rss.values()) / 2**20)
    assert int(sweep.open_store(out).scenario_done.sum()) == N


def test_sweep_task_overhead(benchmark, cluster, tmp_path):
    """64 one-scenario tasks (2 cm, 1 h): Dask + store cost per task over in-process."""
    import time

    base = {"simulation": {"duration": "1 h", "output_interval": "10 min",
                           "resolution": "2 cm"},
            "dose": [{"route": "intrathecal", "type": "infusion", "site": "T10",
                      "rate": "1 mg/day"}]}
    sw = _sweep(64, base, chunk=1).checked()
    cols = sw.columns()
    payload = {**sw.payload(), "keys": [c.key for c in cols]}
    t0 = time.perf_counter()
    for i in range(64):
        sweep._engine.chunk_dataset(sweep._engine._sets(base, payload["keys"],
                                                        [[c.raw[i]] for c in cols]), i, payload)
    inproc = (time.perf_counter() - t0) / 64
    k = iter(range(100))
    benchmark.group = "sweep-overhead"
    benchmark.pedantic(lambda: sweep.run_sweep(sw, tmp_path / f"o{next(k)}.zarr",
                                               client=cluster, progress=False),
                       rounds=2, iterations=1, warmup_rounds=1)
    per_task = benchmark.stats.stats.min / 64 * WORKERS
    benchmark.extra_info.update(tasks=64, in_process_s_per_task=inproc,
                                dask_s_per_task_per_worker=per_task,
                                overhead_ms_per_task=1e3 * (per_task - inproc))


_PEAK = """
import resource, sys, numpy as np
sys.path.insert(0, {bench!r})
from conftest import scenario_dict
from csfmodel.sweep import run_batch
n = int(sys.argv[1])
run_batch(scenario_dict("5mm"), {{"patient.dispersion": [f"{{x!r}} cm^2/min" for x in
          np.linspace(0.2, 0.8, n).tolist()], "dose[0].rate": [f"{{x!r}} mg/day" for x in
          np.linspace(0.5, 2.0, n).tolist()]}}, summary=True)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_sweep_memory_bounded_by_the_chunk(benchmark):
    """Peak RSS of run_batch(summary=True): N scenarios against 64 (fresh processes)."""
    code = _PEAK.format(bench=str(Path(__file__).parent))
    with tempfile.TemporaryDirectory() as d:
        script = Path(d) / "peak.py"
        script.write_text(code)

        def peak(n: int) -> float:
            out = subprocess.run([sys.executable, str(script), str(n)], capture_output=True,
                                 text=True, check=True)
            return int(out.stdout.split()[-1]) / 1024          # MB (Linux: KiB)

        small = peak(64)
        benchmark.group = "sweep-memory"
        big = benchmark.pedantic(peak, args=(N,), rounds=1, iterations=1)
    benchmark.extra_info.update(scenarios=N, peak_mb=big, peak_64_mb=small,
                                ratio=big / small)
