"""Virtual populations: 10^4 patients of the 7-day benchmark pump at 5 mm through the batch
kernel, against the batch kernel's own throughput on the same scenario.

Patients share their body (covariates and grid-shaping anatomy) in blocks of 64 (``bodies``
= n / 64), so each chunk of the sweep is one grid solved in one parallel kernel call; every
patient has its own CSF dynamics, systemic PK and sensitivity. ``extra_info`` holds the
solver seconds (time inside the backend's ``solve_batch``) and their ratio to the batch
kernel's time per scenario (benchmarks/test_batch.py).
"""

from __future__ import annotations

import numba
from conftest import scenario_dict

from csfmodel.population import population

N = 10_000


def test_population_10k(benchmark):
    base = scenario_dict("5mm")
    population(base, 64, seed=0, levels=(), bodies=1)          # JIT warm
    benchmark.group = "population-5mm"
    pop = benchmark.pedantic(population, args=(base, N), kwargs={
        "seed": 1, "levels": (), "bodies": N // 64, "segments": ("T10",)},
        rounds=1, iterations=1)
    benchmark.extra_info.update(
        patients=N, threads=numba.get_num_threads(),
        solver_seconds=pop.attrs["solver_seconds"], wall_seconds=pop.attrs["wall_seconds"],
        solver_patients_per_s=N / pop.attrs["solver_seconds"])
    assert pop.sizes["patient"] == N
    assert float(pop.plasma_max.min()) > 0


def test_population_own_anatomy(benchmark):
    """512 patients, each with its own anatomy (one grid per patient)."""
    base = scenario_dict("5mm")
    population(base, 4, seed=0, levels=())
    benchmark.group = "population-5mm"
    pop = benchmark.pedantic(population, args=(base, 512), kwargs={
        "seed": 1, "levels": (), "segments": ("T10",)}, rounds=1, iterations=1)
    benchmark.extra_info.update(patients=512, solver_seconds=pop.attrs["solver_seconds"],
                                wall_seconds=pop.attrs["wall_seconds"])
    assert pop.sizes["patient"] == 512
