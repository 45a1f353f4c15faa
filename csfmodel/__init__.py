"""csfmodel: intrathecal drug spread in the CSF, spinal cord targets and supraspinal exposure.

The public API::

    import csfmodel
    ds = csfmodel.simulate("examples/scenarios/pump_t10.toml")

``simulate`` is the one entry point; ``simulate_to_file`` runs the same and writes
the results to netCDF while they are computed (long runs; ``csfmodel run`` uses it).
Submodules: :mod:`~csfmodel.anatomy`, :mod:`~csfmodel.drugs`,
:mod:`~csfmodel.dosing`, :mod:`~csfmodel.scenario`, :mod:`~csfmodel.model`,
:mod:`~csfmodel.solvers`, :mod:`~csfmodel.results`, :mod:`~csfmodel.plotting`.
Importing csfmodel does not import numba or jax.
"""

from csfmodel.anatomy import CORD_SEGMENTS, VERTEBRAL_LEVELS, Anatomy
from csfmodel.api import SimulationInterrupted, prepare, simulate, simulate_to_file
from csfmodel.drugs import DRUGS, Drug, get_drug
from csfmodel.errors import ScenarioError
from csfmodel.model import build_model, build_schedule
from csfmodel.results import load, save
from csfmodel.scenario import Scenario, load_scenario, parse_scenario
from csfmodel.solvers import SolverFailure

__version__ = "0.1.0"

__all__ = [
    "Anatomy",
    "CORD_SEGMENTS",
    "DRUGS",
    "Drug",
    "Scenario",
    "ScenarioError",
    "SimulationInterrupted",
    "SolverFailure",
    "VERTEBRAL_LEVELS",
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
