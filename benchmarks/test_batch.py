"""Batch throughput at 5 mm: the parallel kernel alone, and a sweep end to end."""

from __future__ import annotations

import numba
import numpy as np
from conftest import kernel_reference, scenario_dict

from csfmodel.results import observation
from csfmodel.scenario import parse_scenario
from csfmodel.solvers import get_backend
from csfmodel.sweep import DEFAULT_VARIABLES as VARS
from csfmodel.sweep import _Assembly, run_batch, scenario_sets

N_BATCH = 128
PARAMS = {
    "patient.dispersion": [f"{x:.5f} cm^2/min" for x in np.linspace(0.2, 0.8, N_BATCH)],
    "dose[0].rate": [f"{x:.5f} mg/day" for x in np.linspace(0.5, 2.0, N_BATCH)],
}


def test_batch_kernel(benchmark, prepared):
    """128 parameter sets (dispersion x rate) stacked, one parallel kernel call.

    Assembly is done before timing; this is the compiled solver's throughput.
    """
    asm = _Assembly()
    sets, _ = scenario_sets(scenario_dict("5mm"), PARAMS)
    built = [asm.build(parse_scenario(d)) for d in sets]
    systems = [m.system for _, m, _ in built]
    sidx = np.array([s for _, _, s in built])
    obs = [observation(m, VARS).csr(m.system.volume) for _, m, _ in built]
    ptr, idx = obs[0][0], obs[0][1]
    weights = np.stack([o[2] for o in obs])
    t_out = prepared("5mm").t_out
    backend = get_backend("numba")
    backend.solve_batch(systems[:2], asm.schedule_list, t_out, schedule_index=sidx[:2],
                        observables=(ptr, idx, weights[:2]))       # JIT warm
    benchmark.group = "batch-5mm"
    benchmark.extra_info.update(scenarios=N_BATCH, threads=numba.get_num_threads())
    sol = benchmark.pedantic(backend.solve_batch, args=(systems, asm.schedule_list, t_out),
                             kwargs={"schedule_index": sidx, "observables": (ptr, idx, weights)},
                             rounds=10, iterations=1)
    out = sol.values
    assert out.shape == (N_BATCH, len(t_out), len(ptr) - 1) and np.all(np.isfinite(out))


N_SWEEP = 512
SWEEP = {
    "patient.dispersion": [f"{x:.5f} cm^2/min" for x in np.linspace(0.2, 0.8, N_SWEEP)],
    "dose[0].rate": [f"{x:.5f} mg/day" for x in np.linspace(0.5, 2.0, N_SWEEP)],
}
CHUNK = 64
_RATE: dict[str, float] = {}


def test_batch_kernel_chunks(benchmark):
    """The reference of ``test_batch_end_to_end``: its 512 scenarios, assembled before
    timing, solved by the kernel alone in the same chunks of 64 (summaries kept)."""
    from csfmodel.sweep._batch import assemble_chunk

    sets, _ = scenario_sets(scenario_dict("5mm"), SWEEP)
    run = kernel_reference(sets, CHUNK, lambda scs: assemble_chunk(scs, VARS), summary=True)

    benchmark.group = "batch-5mm"
    benchmark.extra_info.update(scenarios=N_SWEEP, threads=numba.get_num_threads())
    benchmark.pedantic(run, rounds=3, iterations=1)
    _RATE["kernel"] = N_SWEEP / benchmark.stats.stats.min


def test_batch_end_to_end(benchmark):
    """``run_batch``: parse, assemble and integrate 512 scenarios (chunks of 64, assembly
    of the next chunk overlapping the kernel), keep summaries. ``extra_info``:
    ``ratio_to_kernel``, its throughput over ``test_batch_kernel_chunks``'s (same run;
    target >= 0.8)."""
    base = scenario_dict("5mm")
    run_batch(base, {k: v[:2] for k, v in SWEEP.items()}, summary=True)    # JIT warm
    benchmark.group = "batch-5mm"
    benchmark.extra_info.update(scenarios=N_SWEEP, threads=numba.get_num_threads())
    ds = benchmark.pedantic(run_batch, args=(base, SWEEP), kwargs={"summary": True,
                                                                  "chunk_size": CHUNK},
                            rounds=3, iterations=1)
    rate = N_SWEEP / benchmark.stats.stats.min
    benchmark.extra_info.update(scenarios_per_s=rate, ratio_to_kernel=(
        rate / _RATE["kernel"] if "kernel" in _RATE else None))
    assert ds.sizes["scenario"] == N_SWEEP
    assert float(ds.solver_max_error_estimate.max()) <= 1.0
