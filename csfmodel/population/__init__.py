"""Virtual patients: between-patient variability, prediction bands, target attainment.

A population description with its sources (``csfmodel/data/population.toml``;
overridable in a scenario's ``[population]`` table and from Python) is sampled
reproducibly from a seed into virtual patients (:func:`sample_patients`), who are
simulated through the batch kernel (:func:`population`); :func:`attainment`,
:func:`target_attainment` and :func:`pta_map` give the probability of target
attainment and of respiratory risk; :func:`plot_bands` and :func:`plot_pta_map` draw
them. See docs/population.md.

``csfmodel.population(...)`` calls :func:`population` (this module is callable)::

    import csfmodel
    pop = csfmodel.population("pump.toml", n=500, seed=1, target="T8-L1")

Private modules, one concept each: ``_data.py`` (the description), ``_sampling.py``,
``_simulate.py``, ``_pta.py``, ``_figures.py``.
"""

from __future__ import annotations

import sys
import types

from ._data import COVARIATES as COVARIATES
from ._data import PD_PARAMETERS as PD_PARAMETERS
from ._data import CovariateSpec as CovariateSpec
from ._data import ParameterSpec as ParameterSpec
from ._data import PopulationSpec as PopulationSpec
from ._data import load_population as load_population
from ._figures import plot_bands as plot_bands
from ._figures import plot_pta_map as plot_pta_map
from ._pta import DEFAULT_ANALGESIA as DEFAULT_ANALGESIA
from ._pta import DEFAULT_RESPIRATORY as DEFAULT_RESPIRATORY
from ._pta import attainment as attainment
from ._pta import pta_map as pta_map
from ._pta import reference_respiratory as reference_respiratory
from ._pta import target_attainment as target_attainment
from ._sampling import GEOMETRIC_KEYS as GEOMETRIC_KEYS
from ._sampling import patient_anatomies as patient_anatomies
from ._sampling import patient_overrides as patient_overrides
from ._sampling import sample_patients as sample_patients
from ._simulate import DEFAULT_LEVELS as DEFAULT_LEVELS
from ._simulate import DEFAULT_SEGMENTS as DEFAULT_SEGMENTS
from ._simulate import POPULATION_RTOL as POPULATION_RTOL
from ._simulate import QUANTILES as QUANTILES
from ._simulate import population as population

__all__ = [
    "COVARIATES",
    "PD_PARAMETERS",
    "CovariateSpec",
    "ParameterSpec",
    "PopulationSpec",
    "load_population",
    "GEOMETRIC_KEYS",
    "patient_anatomies",
    "patient_overrides",
    "sample_patients",
    "DEFAULT_LEVELS",
    "DEFAULT_SEGMENTS",
    "POPULATION_RTOL",
    "QUANTILES",
    "population",
    "DEFAULT_ANALGESIA",
    "DEFAULT_RESPIRATORY",
    "attainment",
    "target_attainment",
    "reference_respiratory",
    "pta_map",
    "plot_bands",
    "plot_pta_map",
]


class _CallableModule(types.ModuleType):
    """``csfmodel.population(...)`` is :func:`population` whether ``csfmodel.population``
    resolves to this module (once imported as a submodule) or to the function."""

    def __call__(self, *args, **kwargs):
        return population(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
