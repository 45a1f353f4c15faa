"""csfmodel: intrathecal drug spread in the CSF, spinal cord targets and supraspinal exposure.

The public API::

    import csfmodel
    ds = csfmodel.simulate("examples/scenarios/pump_t10.toml")

``simulate`` is the one entry point; the CLI (``csfmodel run``) calls exactly it.
Submodules: :mod:`~csfmodel.anatomy`, :mod:`~csfmodel.drugs`,
:mod:`~csfmodel.dosing`, :mod:`~csfmodel.scenario`, :mod:`~csfmodel.model`,
:mod:`~csfmodel.solvers`, :mod:`~csfmodel.results`, :mod:`~csfmodel.plotting`.
Importing csfmodel does not import numba or jax.
"""

from csfmodel.anatomy import CORD_SEGMENTS, VERTEBRAL_LEVELS, Anatomy
from csfmodel.api import prepare, simulate
from csfmodel.drugs import DRUGS, Drug, get_drug
from csfmodel.errors import ScenarioError
from csfmodel.model import build_model, build_schedule
from csfmodel.results import load, save
from csfmodel.scenario import Scenario, load_scenario, parse_scenario

__version__ = "0.1.0"

__all__ = [
    "Anatomy",
    "CORD_SEGMENTS",
    "DRUGS",
    "Drug",
    "Scenario",
    "ScenarioError",
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
    "__version__",
]
