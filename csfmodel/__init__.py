"""csfmodel: intrathecal drug spread in the CSF, spinal cord targets and supraspinal exposure.

The public API (every name below loads its module on first use)::

    import csfmodel
    ds = csfmodel.simulate("examples/scenarios/pump_t10.toml")

``simulate`` is the one entry point; ``simulate_to_file`` runs the same and writes
the results to netCDF while they are computed (long runs; ``csfmodel run`` uses it).
Submodules: :mod:`~csfmodel.anatomy`, :mod:`~csfmodel.drugs`,
:mod:`~csfmodel.dosing`, :mod:`~csfmodel.scenario`, :mod:`~csfmodel.model`,
:mod:`~csfmodel.solvers`, :mod:`~csfmodel.results`, :mod:`~csfmodel.plotting`.

Importing csfmodel is cheap: the names below are imported from their submodules
on first use (PEP 562), so ``import csfmodel`` (and ``csfmodel --help``) imports
none of numpy's heavier companions (scipy, xarray, netCDF4, matplotlib, numba, jax).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from csfmodel._version import __version__
from csfmodel.errors import ScenarioError

#: public name -> the submodule that defines it (imported on first access)
_LAZY: dict[str, str] = {
    "Anatomy": "csfmodel.anatomy",
    "CORD_SEGMENTS": "csfmodel.anatomy",
    "VERTEBRAL_LEVELS": "csfmodel.anatomy",
    "SimulationInterrupted": "csfmodel.api",
    "prepare": "csfmodel.api",
    "simulate": "csfmodel.api",
    "simulate_to_file": "csfmodel.api",
    "DRUGS": "csfmodel.drugs",
    "Drug": "csfmodel.drugs",
    "get_drug": "csfmodel.drugs",
    "build_model": "csfmodel.model",
    "build_schedule": "csfmodel.model",
    "load": "csfmodel.results",
    "save": "csfmodel.results",
    "Scenario": "csfmodel.scenario",
    "load_scenario": "csfmodel.scenario",
    "parse_scenario": "csfmodel.scenario",
    "SolverFailure": "csfmodel.solvers",
    "SolverOptions": "csfmodel.solvers",
    # analyses: route comparison, effects, sweeps, validation
    "compare_routes": "csfmodel.compare",
    "RouteComparison": "csfmodel.compare",
    "EffectParameters": "csfmodel.effects",
    "effects": "csfmodel.effects",
    "run_batch": "csfmodel.sweep",
    "run_sweep": "csfmodel.sweep",
    "Sweep": "csfmodel.sweep",
    "open_store": "csfmodel.sweep",
    "sobol_indices": "csfmodel.sweep",
    "run_validation": "csfmodel.validation",
    # gradients and fitting
    "sensitivity": "csfmodel.fitting",
    "fit": "csfmodel.fitting",
    "FitResult": "csfmodel.fitting",
    # virtual patients (the module is callable: csfmodel.population(...) either way)
    "population": "csfmodel.population",
    "target_attainment": "csfmodel.population",
    "pta_map": "csfmodel.population",
    # the pump in a patient's life
    "reservoir": "csfmodel.clinic",
    "start_rate": "csfmodel.clinic",
    "rescue_onset": "csfmodel.clinic",
}

__all__ = [
    "Anatomy",
    "CORD_SEGMENTS",
    "DRUGS",
    "Drug",
    "Scenario",
    "ScenarioError",
    "SimulationInterrupted",
    "SolverFailure",
    "SolverOptions",
    "VERTEBRAL_LEVELS",
    "compare_routes",
    "RouteComparison",
    "EffectParameters",
    "effects",
    "run_batch",
    "run_sweep",
    "Sweep",
    "open_store",
    "sobol_indices",
    "run_validation",
    "sensitivity",
    "fit",
    "FitResult",
    "population",
    "target_attainment",
    "pta_map",
    "reservoir",
    "start_rate",
    "rescue_onset",
    "build_model",
    "build_schedule",
    "get_drug",
    "load",
    "load_scenario",
    "parse_scenario",
    "prepare",
    "save",
    "simulate",
    "simulate_to_file",
    "__version__",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value          # later lookups skip this function
        return value
    if not name.startswith("__"):
        # ``csfmodel.results`` etc. without importing the submodule first, as when
        # this package imported them eagerly
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:   # for type checkers and IDEs: the same names, imported eagerly
    from csfmodel.anatomy import CORD_SEGMENTS, VERTEBRAL_LEVELS, Anatomy
    from csfmodel.api import SimulationInterrupted, prepare, simulate, simulate_to_file
    from csfmodel.clinic import rescue_onset, reservoir, start_rate
    from csfmodel.compare import RouteComparison, compare_routes
    from csfmodel.drugs import DRUGS, Drug, get_drug
    from csfmodel.effects import EffectParameters, effects
    from csfmodel.fitting import FitResult, fit, sensitivity
    from csfmodel.model import build_model, build_schedule
    from csfmodel.population import population, pta_map, target_attainment
    from csfmodel.results import load, save
    from csfmodel.scenario import Scenario, load_scenario, parse_scenario
    from csfmodel.solvers import SolverFailure, SolverOptions
    from csfmodel.sweep import Sweep, open_store, run_batch, run_sweep, sobol_indices
    from csfmodel.validation import run_validation
