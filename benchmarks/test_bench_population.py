"""Virtual populations: 10^4 patients of the 7-day benchmark pump at 5 mm through the batch
kernel, against the batch kernel alone on patients of the same population.

Every patient has its own anatomy (``bodies`` = n): every grid has the same number of cells,
so the sweep solves each chunk of 64 patients in one parallel kernel call whatever their
anatomies. ``extra_info`` holds the solver seconds (time inside the backend's
``solve_batch``, host preparation included), the wall seconds and the ratio of the solver
seconds per patient to the kernel's (``test_population_kernel``, run first: 256 patients
of the same population, assembled before timing, solved by the kernel alone in the same
chunks, at the population's tolerance ``POPULATION_RTOL``). Run both in one session:
``pytest benchmarks/test_bench_population.py``.
"""

from __future__ import annotations

import os

import numba
import pytest
from conftest import kernel_reference, scenario_dict

from csfmodel.population import POPULATION_RTOL, population
from csfmodel.population._data import load_population
from csfmodel.population._sampling import sample_patients
from csfmodel.population._simulate import sweep_parameters
from csfmodel.scenario import parse_scenario

#: patients of the population benchmark (CSFMODEL_BENCH_PATIENTS overrides, e.g. 1024)
N = int(os.environ.get("CSFMODEL_BENCH_PATIENTS", "10000"))
N_KERNEL = 256
CHUNK = 64
_KERNEL: dict[str, float] = {}


def test_population_kernel(benchmark):
    """The reference: 256 patients of the population, assembled before timing, solved by
    the kernel alone in chunks of 64 (the variables the population records)."""
    from csfmodel.sweep import scenario_sets
    from csfmodel.sweep._batch import assemble_chunk

    base = scenario_dict("5mm")
    sc = parse_scenario(base)
    pts = sample_patients(load_population(None), sc, N_KERNEL, 1)
    params, _ = sweep_parameters(pts, sc)
    sets, _ = scenario_sets(base, params)
    variables = ("cisternal_csf_concentration", "cord_concentration", "brain_concentration",
                 "plasma_concentration")
    run = kernel_reference(sets, CHUNK, lambda scs: assemble_chunk(scs, variables),
                           summary=False, rtol=POPULATION_RTOL)

    benchmark.group = "population-5mm"
    benchmark.extra_info.update(patients=N_KERNEL, threads=numba.get_num_threads())
    benchmark.pedantic(run, rounds=1, iterations=1)
    _KERNEL["s_per_patient"] = benchmark.stats.stats.min / N_KERNEL
    benchmark.extra_info["kernel_s_per_patient"] = _KERNEL["s_per_patient"]


@pytest.mark.parametrize("per_body", [1, 64])
def test_population_10k(benchmark, per_body):
    """``N`` patients through :func:`csfmodel.population`: each its own anatomy
    (``per_body`` 1), or 64 patients per body (grids and models assembled once a body)."""
    base = scenario_dict("5mm")
    population(base, 64, seed=0, levels=())          # JIT warm
    benchmark.group = "population-5mm"
    pop = benchmark.pedantic(population, args=(base, N), kwargs={
        "seed": 1, "levels": (), "segments": ("T10",), "bodies": N // per_body},
        rounds=1, iterations=1)
    solver = pop.attrs["solver_seconds"]
    benchmark.extra_info.update(
        patients=N, bodies=N // per_body, threads=numba.get_num_threads(),
        solver_seconds=solver,
        wall_seconds=pop.attrs["wall_seconds"], solver_patients_per_s=N / solver,
        load_average=os.getloadavg())
    if "s_per_patient" in _KERNEL:
        benchmark.extra_info["ratio_to_kernel"] = solver / N / _KERNEL["s_per_patient"]
    assert pop.sizes["patient"] == N
    assert float(pop.plasma_max.min()) > 0


@pytest.mark.parametrize("bodies", [None, 8])
def test_population_levels(benchmark, bodies):
    """512 patients with CSF at three levels (recorded by the kernel at each patient's own
    positions), each its own anatomy or 8 bodies."""
    base = scenario_dict("5mm")
    population(base, 4, seed=0)
    benchmark.group = "population-5mm-levels"
    pop = benchmark.pedantic(population, args=(base, 512), kwargs={
        "seed": 1, "segments": ("T10",), "bodies": bodies}, rounds=1, iterations=1)
    benchmark.extra_info.update(patients=512, bodies=bodies or 512,
                                solver_seconds=pop.attrs["solver_seconds"],
                                wall_seconds=pop.attrs["wall_seconds"],
                                load_average=os.getloadavg())
    assert pop.sizes["patient"] == 512
