"""Sweeps on Dask against the in-process batch kernel (5 mm, 7 days, summaries).

- ``sweep-throughput``: the same N scenarios (default 4096; ``CSFMODEL_BENCH_SWEEP_N``)
  solved by the batch kernel alone in this process (assembly done before timing,
  keeping the summary rows a sweep's kernel keeps: the reference) and end to end by
  :func:`csfmodel.sweep.run_sweep` on a local Dask cluster of processes (parse,
  assemble, solve, reduce and write to zarr on the workers).
  ``extra_info["ratio_to_kernel"]`` is the sweep's throughput over the kernel's
  (target >= 0.9), ``ratio_to_same_work`` over the same tasks' work (parse, assemble,
  solve, outputs, Dataset) in this process without Dask or the store;
  ``rss_per_worker_mb`` the workers' resident memory after it, and
  ``worker_peak_ratio`` their peak over this sweep against a small one. Three local
  clusters: one single-threaded worker per core with chunks of 64 and of 256, and
  half as many workers with two threads each.
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
from conftest import kernel_reference, scenario_dict

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
                                  dashboard_address=":0") as lc, distributed.Client(lc) as c:
        yield c


def test_sweep_kernel_reference(benchmark):
    """The batch kernel alone on N scenarios (chunks of 64), all threads of this process,
    keeping what a sweep's kernel keeps (the summary rows of the sweep's outputs)."""
    import dataclasses

    from csfmodel.sweep._batch import assemble_chunk, parse_chunk
    from csfmodel.sweep._outputs import observed, summary_of

    sw = _sweep(N).checked()
    cols = sw.columns()
    sets = sweep._engine._sets(scenario_dict("5mm"), [c.key for c in cols],
                               [c.raw for c in cols])
    scs, _ = parse_chunk(sets[:CHUNK], 0)
    first = assemble_chunk(scs, observed(sw.outputs), tip=True)
    summary = summary_of(first.layout, sw.outputs, first.records, scs[0].simulation.duration)
    half_life = np.unique(summary.effect_half_life)
    assert len(half_life) == 1                   # one drug and BBB: one effect half-life
    run = kernel_reference(
        sets, CHUNK, lambda scs: assemble_chunk(scs, observed(sw.outputs), tip=True),
        summary=dataclasses.replace(summary, effect_half_life=float(half_life[0])))

    benchmark.group = "sweep-throughput"
    benchmark.extra_info.update(scenarios=N, threads=numba.get_num_threads())
    benchmark.pedantic(run, rounds=1, iterations=1)
    _REF["kernel"] = N / benchmark.stats.stats.min
    _REF["kernel_run"] = run


_REF: dict[str, float] = {}


def test_sweep_in_process_same_work(benchmark):
    """What a sweep's tasks do (parse, assemble, solve, reduce to the outputs, build the
    chunk's Dataset), in this process on all threads, without Dask or the store: the
    cost of the outputs apart from the cost of Dask and zarr."""
    from csfmodel.sweep._engine import _sets, chunk_dataset

    sw = _sweep(N).checked()
    cols = sw.columns()
    payload = {**sw.payload(), "keys": [c.key for c in cols]}
    chunk_dataset(_sets(payload["base"], payload["keys"], [c.raw[:2] for c in cols]), 0,
                  payload)                                                 # JIT warm

    def run():
        for a in range(0, N, CHUNK):
            chunk_dataset(_sets(payload["base"], payload["keys"],
                                [c.raw[a:a + CHUNK] for c in cols]), a, payload)

    benchmark.group = "sweep-throughput"
    benchmark.pedantic(run, rounds=1, iterations=1)
    rate = N / benchmark.stats.stats.min
    _REF["same_work"] = rate
    benchmark.extra_info.update(scenarios=N, threads=numba.get_num_threads(),
                                scenarios_per_s=rate, ratio_to_kernel=(
                                    rate / _REF["kernel"] if "kernel" in _REF else None))


#: local clusters compared: (worker processes, threads per worker, chunk size); on 2 cores
CONFIGS = [(WORKERS, 1, CHUNK), (WORKERS, 1, 256), (max(1, WORKERS // 2), 2, 256)]


@pytest.mark.parametrize("workers,threads,chunk", CONFIGS,
                         ids=[f"{w}x{t}-chunk{c}" for w, t, c in CONFIGS])
def test_sweep_dask_end_to_end(benchmark, tmp_path, workers, threads, chunk):
    """run_sweep on a local cluster: N scenarios end to end into a zarr store.

    ``extra_info``: ``ratio_to_kernel`` (target >= 0.9; against the kernel reference timed
    before the sweeps and again right after this one, the mean of the two rates),
    ``ratio_to_same_work`` (against
    the same work in this process, :func:`test_sweep_in_process_same_work`: what Dask and
    the store cost), the workers' resident memory
    after the sweep and their peak over a small sweep and over this one
    (``worker_peak_ratio``: memory bounded by the chunk).
    """
    def peak() -> int:
        return _peak_kib()

    with distributed.LocalCluster(n_workers=workers, threads_per_worker=threads,
                                  processes=True, dashboard_address=":0") as lc, \
            distributed.Client(lc) as c:
        sweep.run_sweep(_sweep(4 * workers * threads, chunk=1), tmp_path / "warm.zarr",
                        client=c, threads=threads, progress=False)    # JIT load, imports
        small = max(c.run(peak).values())
        k = iter(range(100))

        def run():
            return sweep.run_sweep(_sweep(N, chunk=chunk), tmp_path / f"s{next(k)}.zarr",
                                   client=c, threads=threads, progress=False)

        benchmark.group = "sweep-throughput"
        out = benchmark.pedantic(run, rounds=1, iterations=1)
        rate = N / benchmark.stats.stats.min
        rss = c.run(lambda: __import__("psutil").Process().memory_info().rss)
        big = max(c.run(peak).values())
    # the kernel reference again, right after this sweep (the machine's load drifts over a
    # session): the ratio is against the mean of the kernel's rate before and after
    kernel = _REF.get("kernel")
    if "kernel_run" in _REF:
        import time

        t0 = time.perf_counter()
        _REF["kernel_run"]()
        kernel = 0.5 * (_REF["kernel"] + N / (time.perf_counter() - t0))
    benchmark.extra_info.update(
        scenarios=N, workers=workers, threads_per_worker=threads, chunk_size=chunk,
        scenarios_per_s=rate,
        ratio_to_kernel=rate / kernel if kernel else None, kernel_scenarios_per_s=kernel,
        ratio_to_same_work=rate / _REF["same_work"] if "same_work" in _REF else None,
        rss_per_worker_mb=max(rss.values()) / 2**20, worker_peak_mb=big / 1024,
        worker_peak_small_mb=small / 1024, worker_peak_ratio=big / small)
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


def _peak_kib() -> int:
    """Peak resident memory of this process, KiB: ``VmHWM`` (Linux; ``ru_maxrss`` would
    carry the peak of the parent a process was forked from), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


_PEAK = """
import sys, numpy as np
sys.path.insert(0, {bench!r})
from conftest import scenario_dict
{fn}
from csfmodel.sweep import run_batch
n = int(sys.argv[1])
run_batch(scenario_dict("5mm"), {{"patient.dispersion": [f"{{x!r}} cm^2/min" for x in
          np.linspace(0.2, 0.8, n).tolist()], "dose[0].rate": [f"{{x!r}} mg/day" for x in
          np.linspace(0.5, 2.0, n).tolist()]}}, summary=True)
print(_peak_kib())
"""


def test_sweep_memory_bounded_by_the_chunk(benchmark):
    """Peak RSS of run_batch(summary=True): N scenarios against 64 (fresh processes)."""
    import inspect

    code = _PEAK.format(bench=str(Path(__file__).parent),
                        fn=inspect.getsource(_peak_kib))
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
    assert big <= 1.5 * small
