"""The population description: loading, merging the overrides and validating it.

The shipped description is ``csfmodel/data/population.toml`` (its header explains
the layout). A scenario's ``[population]`` table and the ``spec`` argument of
:func:`csfmodel.population.population` are merged into it key by key, so an override
names only what it changes (``[population.patient.dispersion] cv = 0.5``). Every
value is checked here, once: a bad one is a :class:`~csfmodel.errors.ScenarioError`
naming ``population.<section>.<key>.<field>``.
"""

from __future__ import annotations

import copy
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from csfmodel.anatomy import PATIENT_PARAMETERS, VERTEBRAL_LEVELS
from csfmodel.bounds import Bound
from csfmodel.drugs import DRUG_PARAMETERS
from csfmodel.errors import ScenarioError

__all__ = ["PopulationSpec", "ParameterSpec", "CovariateSpec", "load_population",
           "PD_PARAMETERS", "COVARIATES", "CONUS_KEY"]

#: Published effect parameters that may vary (:class:`csfmodel.effects.EffectParameters`
#: fields), with their units and allowed ranges.
PD_PARAMETERS: dict[str, Bound] = {
    "c50_brain_nM": Bound("1", 0.1, 10000.0, "nM plasma-equivalent; Dahan 2004: 32 nM"),
    "c50_resp_nM": Bound("1", 0.1, 10000.0, "nM plasma-equivalent; Dahan 2004: 32 nM"),
    "spinal_threshold_pmol_per_mg": Bound("1", 0.01, 1000.0, "pmol/mg cord tissue; 3"),
}

#: Covariates a parameter may depend on, with their units.
COVARIATES: dict[str, str] = {"female": "1", "age": "year", "height": "cm", "bmi": "kg/m^2",
                              "weight": "kg"}

#: The conus position, sampled as one number (vertebral levels) and written as the
#: ``conus_level`` and ``conus_fraction`` of the ``[patient]`` table.
CONUS_KEY = "patient.conus"
#: where an adult conus may end (csfmodel.anatomy's range: T11 to the end of L3)
_CONUS_RANGE = (VERTEBRAL_LEVELS.index("T11"), VERTEBRAL_LEVELS.index("L3") + 1.0)

_DISTRIBUTIONS = ("lognormal", "normal", "covariate")
_PARAM_FIELDS = ("distribution", "typical", "cv", "sd", "low", "high", "power", "per_unit",
                 "female", "covariate", "source", "estimate", "note")
_COV_FIELDS = ("distribution", "unit", "probability", "mean", "sd", "median", "cv",
               "female_mean", "female_sd", "low", "high", "reference", "source", "estimate",
               "note")
_SECTIONS = ("covariates", "patient", "drug", "pd", "correlation")


@dataclass(frozen=True)
class CovariateSpec:
    """One covariate: its distribution (internal unit of :data:`COVARIATES`)."""

    name: str
    distribution: str
    probability: float = 0.5
    mean: float = 0.0
    sd: float = 0.0
    female_mean: float | None = None
    female_sd: float | None = None
    cv: float = 0.0
    low: float = -math.inf
    high: float = math.inf
    reference: float = 1.0
    source: str = ""
    estimate: bool = True


@dataclass(frozen=True)
class ParameterSpec:
    """One varying parameter: ``key`` as in a sweep (``patient.X``, ``drug.X``, ``pd.X``).

    ``typical`` None means the scenario's own value. Values are in the internal unit
    ``unit`` of the parameter's :class:`~csfmodel.bounds.Bound`; the conus position is in
    vertebral levels (0 = top of C1).
    """

    key: str
    distribution: str
    unit: str
    bound: Bound
    typical: float | None = None
    spread: float = 0.0
    low: float = -math.inf
    high: float = math.inf
    power: tuple[tuple[str, float], ...] = ()
    per_unit: tuple[tuple[str, float], ...] = ()
    female: float = 1.0
    covariate: str | None = None
    source: str = ""
    estimate: bool = True

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]


@dataclass(frozen=True)
class PopulationSpec:
    """A validated population description (see ``csfmodel/data/population.toml``)."""

    covariates: dict[str, CovariateSpec]
    parameters: dict[str, ParameterSpec]
    #: ``(key_a, key_b, rho)`` between the parameters' random effects
    correlations: tuple[tuple[str, str, float], ...]
    #: the drug the ``drug`` and ``pd`` sections describe
    drug: str
    #: the merged description as data (kept with results, for reproducibility)
    source: dict = field(default_factory=dict, compare=False)

    def correlation_matrix(self, keys: list[str]) -> np.ndarray:
        """Correlation of the random effects of ``keys`` (identity where none given)."""
        r = np.eye(len(keys))
        for a, b, rho in self.correlations:
            if a in keys and b in keys:
                i, j = keys.index(a), keys.index(b)
                r[i, j] = r[j, i] = rho
        return r


# ------------------------------------------------------------------ loading
def _shipped() -> dict:
    text = resources.files("csfmodel").joinpath("data/population.toml").read_text(
        encoding="utf-8")
    return tomllib.loads(text)


def _merge(base: dict, over: dict, key: str) -> dict:
    """``over`` merged into a copy of ``base`` table by table (lists replace)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in ("power",
                                                                               "per_unit"):
            out[k] = _merge(out[k], v, f"{key}.{k}")
        else:
            out[k] = copy.deepcopy(v)
    return out


def _read(spec: Any, key: str) -> dict:
    if spec is None:
        return {}
    if isinstance(spec, PopulationSpec):
        return copy.deepcopy(spec.source)
    if isinstance(spec, dict):
        return spec
    if isinstance(spec, (str, Path)):
        from csfmodel._io import read_text
        from csfmodel.scenario import parse_toml

        data = parse_toml(read_text(spec, key, "a readable TOML population file"), spec)
        return data.get("population", data)
    raise ScenarioError(key, type(spec).__name__,
                        "a dict in the layout of csfmodel/data/population.toml, or its path")


def load_population(*overrides: Any, base: Any = "shipped") -> PopulationSpec:
    """The population description: the shipped one with ``overrides`` merged in order.

    Parameters
    ----------
    overrides
        Dicts in the layout of ``csfmodel/data/population.toml`` (a scenario's
        ``[population]`` table), TOML paths, or :class:`PopulationSpec`; None is skipped.
    base
        ``"shipped"`` (default) or a description to start from instead.
    """
    data = _shipped() if isinstance(base, str) and base == "shipped" else _read(base,
                                                                                   "population")
    for over in overrides:
        over = _read(over, "population")
        if not isinstance(over, dict):
            raise ScenarioError("population", over, "a table")
        data = _merge(data, over, "population")
    return _validate(data)


# ------------------------------------------------------------------ validation
def _number(value: Any, unit: str, key: str, allowed: str = "a number") -> float:
    if isinstance(value, bool):
        raise ScenarioError(key, value, allowed)
    if isinstance(value, (int, float)):
        v = float(value)
    elif isinstance(value, str) and unit not in ("1", "year", "kg/m^2"):
        from csfmodel.units import convert

        v = convert(value, unit, key)
    else:
        raise ScenarioError(key, value, allowed)
    if not math.isfinite(v):
        raise ScenarioError(key, value, allowed)
    return v


def _conus(value: Any, key: str) -> float:
    """``"L1:0.83"`` -> vertebral levels from the top of C1."""
    allowed = "a conus position 'LEVEL:FRACTION' such as 'L1:0.83' between T11 and L3"
    if not isinstance(value, str) or ":" not in value:
        raise ScenarioError(key, value, allowed)
    level, frac = value.split(":", 1)
    level = level.strip().upper()
    try:
        f = float(frac)
    except ValueError:
        raise ScenarioError(key, value, allowed) from None
    if level not in VERTEBRAL_LEVELS or not 0.0 <= f <= 1.0:
        raise ScenarioError(key, value, allowed)
    p = VERTEBRAL_LEVELS.index(level) + f
    if not _CONUS_RANGE[0] <= p <= _CONUS_RANGE[1]:
        raise ScenarioError(key, value, allowed)
    return p


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(key, value, "true or false")
    return value


def _effects(table: Any, key: str, allowed_covs: tuple[str, ...]) -> tuple:
    if not isinstance(table, dict):
        raise ScenarioError(key, table, "a table {covariate = number}")
    out = []
    for c, v in table.items():
        if c not in allowed_covs:
            raise ScenarioError(f"{key}.{c}", v, "one of the covariates: "
                                + ", ".join(allowed_covs))
        out.append((c, _number(v, "1", f"{key}.{c}")))
    return tuple(out)


def _covariate(name: str, t: Any) -> CovariateSpec:
    key = f"population.covariates.{name}"
    if name not in COVARIATES:
        raise ScenarioError(key, t, "one of the covariates: " + ", ".join(COVARIATES),
                            detail="unknown covariate")
    if not isinstance(t, dict):
        raise ScenarioError(key, t, "a table")
    for k in t:
        if k not in _COV_FIELDS:
            raise ScenarioError(f"{key}.{k}", t[k], "one of: " + ", ".join(_COV_FIELDS),
                                detail="unknown field")
    want = {"female": "bernoulli", "weight": "derived"}.get(name)
    dist = t.get("distribution")
    allowed = f"'{want}'" if want else "'normal' or 'lognormal'"
    if (want and dist != want) or (not want and dist not in ("normal", "lognormal")):
        raise ScenarioError(f"{key}.distribution", dist, allowed)
    unit = COVARIATES[name]

    def num(f: str, default: float | None = None, positive: bool = False) -> float | None:
        if f not in t:
            return default
        v = _number(t[f], unit if f not in ("probability", "cv") else "1", f"{key}.{f}")
        if positive and v <= 0:
            raise ScenarioError(f"{key}.{f}", t[f], "a positive number")
        return v

    kw: dict[str, Any] = dict(name=name, distribution=dist, source=str(t.get("source", "")),
                              estimate=_bool(t.get("estimate", True), f"{key}.estimate"))
    if dist == "bernoulli":
        p = num("probability", 0.5)
        if not 0.0 <= p <= 1.0:
            raise ScenarioError(f"{key}.probability", t["probability"], "a fraction 0-1")
        kw["probability"] = p
    elif dist == "normal":
        kw.update(mean=num("mean"), sd=num("sd", 0.0), female_mean=num("female_mean"),
                  female_sd=num("female_sd"))
        if kw["mean"] is None:
            raise ScenarioError(f"{key}.mean", None, "a number", detail="missing")
        if kw["sd"] < 0 or (kw["female_sd"] is not None and kw["female_sd"] < 0):
            raise ScenarioError(f"{key}.sd", t.get("sd"), "a number >= 0")
    elif dist == "lognormal":
        kw.update(mean=num("median", None, positive=True), cv=num("cv", 0.0))
        if kw["mean"] is None:
            raise ScenarioError(f"{key}.median", None, "a positive number", detail="missing")
        if kw["cv"] < 0:
            raise ScenarioError(f"{key}.cv", t["cv"], "a number >= 0")
    if dist != "bernoulli":
        kw.update(low=num("low", -math.inf), high=num("high", math.inf),
                  reference=num("reference", 1.0, positive=True))
        if kw["low"] >= kw["high"]:
            raise ScenarioError(f"{key}.low", t.get("low"), f"below high ({t.get('high')})")
    return CovariateSpec(**kw)


def _bound_of(section: str, name: str, key: str) -> Bound:
    tables = {"patient": PATIENT_PARAMETERS, "drug": DRUG_PARAMETERS, "pd": PD_PARAMETERS}
    table = tables[section]
    if section == "patient" and name == "conus":
        return Bound("level", _CONUS_RANGE[0], _CONUS_RANGE[1], "T11 to L3, Saifuddin 1998")
    if name not in table or table[name].unit == "str" or name in ("conus_level",
                                                                  "conus_fraction"):
        names = sorted(k for k, b in table.items() if b.unit != "str"
                       and k not in ("conus_fraction", "meningeal_permeability"))
        if section == "patient":
            names.append("conus")
        raise ScenarioError(key, name, "one of: " + ", ".join(names),
                            detail=f"not a numeric [{section}] value")
    return table[name]


def _parameter(section: str, name: str, t: Any, covs: tuple[str, ...]) -> ParameterSpec:
    key = f"population.{section}.{name}"
    pkey = f"{section}.{name}"
    bound = _bound_of(section, name, key)
    if not isinstance(t, dict):
        raise ScenarioError(key, t, "a table with distribution, cv or sd, source ...")
    for k in t:
        if k not in _PARAM_FIELDS:
            raise ScenarioError(f"{key}.{k}", t[k], "one of: " + ", ".join(_PARAM_FIELDS),
                                detail="unknown field")
    dist = t.get("distribution")
    if dist not in _DISTRIBUTIONS:
        raise ScenarioError(f"{key}.distribution", dist, "one of: " + ", ".join(_DISTRIBUTIONS))
    conus = pkey == CONUS_KEY
    if conus and dist != "normal":
        raise ScenarioError(f"{key}.distribution", dist, "'normal' (vertebral levels)")
    unit = bound.unit

    def value(f: str) -> float | None:
        if f not in t:
            return None
        if conus:
            return _conus(t[f], f"{key}.{f}")
        return _number(t[f], unit, f"{key}.{f}", f"a number or a quantity in {unit}")

    kw: dict[str, Any] = dict(key=pkey, distribution=dist, unit=unit, bound=bound,
                              source=str(t.get("source", "")),
                              estimate=_bool(t.get("estimate", True), f"{key}.estimate"))
    if dist == "covariate":
        c = t.get("covariate")
        if c not in covs:
            raise ScenarioError(f"{key}.covariate", c, "one of: " + ", ".join(covs))
        kw["covariate"] = c
        return ParameterSpec(**kw)
    typical = value("typical")
    if typical is not None and not bound.contains(typical):
        raise ScenarioError(f"{key}.typical", t["typical"], bound.describe())
    if dist == "lognormal":
        spread = _number(t.get("cv", 0.0), "1", f"{key}.cv", "a coefficient of variation >= 0")
        if not 0.0 <= spread <= 5.0:
            raise ScenarioError(f"{key}.cv", t.get("cv"), "a coefficient of variation 0-5")
        if typical is not None and typical <= 0:
            raise ScenarioError(f"{key}.typical", t["typical"], "a positive value")
    else:
        spread = (0.0 if "sd" not in t else
                  _number(t["sd"], "1" if conus else unit, f"{key}.sd"))
        if spread < 0:
            raise ScenarioError(f"{key}.sd", t["sd"], "a standard deviation >= 0")
    low, high = value("low"), value("high")
    low = bound.low if low is None else max(low, bound.low)
    high = bound.high if high is None else min(high, bound.high)
    if not low < high:
        raise ScenarioError(f"{key}.low", t.get("low"),
                            f"below high and inside {bound.describe()}")
    female = _number(t.get("female", 1.0), "1", f"{key}.female", "a positive factor")
    if female <= 0:
        raise ScenarioError(f"{key}.female", t.get("female"), "a positive factor")
    kw.update(typical=typical, spread=spread, low=low, high=high, female=female,
              power=_effects(t.get("power", {}), f"{key}.power", covs),
              per_unit=_effects(t.get("per_unit", {}), f"{key}.per_unit", covs))
    if conus and (kw["power"] or kw["per_unit"] or female != 1.0):
        raise ScenarioError(f"{key}.power", t.get("power"), "no covariate effects on the "
                            "conus position (none found: Saifuddin 1998)")
    return ParameterSpec(**kw)


def _validate(data: dict) -> PopulationSpec:
    if not isinstance(data, dict):
        raise ScenarioError("population", data, "a table")
    for k in data:
        if k not in _SECTIONS:
            raise ScenarioError(f"population.{k}", data[k], "one of the sections: "
                                + ", ".join(_SECTIONS), detail="unknown section")
    cov_t = data.get("covariates", {})
    if not isinstance(cov_t, dict):
        raise ScenarioError("population.covariates", cov_t, "a table")
    covariates = {n: _covariate(n, t) for n, t in cov_t.items()}
    missing = [c for c in ("female", "age", "height", "bmi", "weight") if c not in covariates]
    if missing:
        raise ScenarioError(f"population.covariates.{missing[0]}", None,
                            "a covariate table", detail="missing")
    covs = tuple(covariates)
    parameters: dict[str, ParameterSpec] = {}
    drug = "morphine"
    for section in ("patient", "drug", "pd"):
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise ScenarioError(f"population.{section}", table, "a table")
        for name, t in table.items():
            if section == "drug" and name == "applies_to":
                if not isinstance(t, str):
                    raise ScenarioError("population.drug.applies_to", t, "a drug name")
                drug = t.strip().lower()
                continue
            p = _parameter(section, name, t, covs)
            parameters[p.key] = p
    corr_t = data.get("correlation", [])
    if not isinstance(corr_t, list):
        raise ScenarioError("population.correlation", corr_t,
                            "an array of tables [[correlation]] a, b, rho")
    correlations = []
    for i, c in enumerate(corr_t):
        key = f"population.correlation[{i}]"
        if not isinstance(c, dict):
            raise ScenarioError(key, c, "a table with a, b, rho")
        for f in ("a", "b"):
            p = parameters.get(c.get(f))
            if p is None or p.distribution == "covariate":
                raise ScenarioError(f"{key}.{f}", c.get(f), "a varying parameter such as "
                                    "'pd.c50_brain_nM'")
        rho = _number(c.get("rho"), "1", f"{key}.rho", "a correlation in (-1, 1)")
        if not -1.0 < rho < 1.0 or c["a"] == c["b"]:
            raise ScenarioError(f"{key}.rho", c.get("rho"),
                                "a correlation in (-1, 1) between two different parameters")
        correlations.append((c["a"], c["b"], rho))
    spec = PopulationSpec(covariates=covariates, parameters=parameters,
                          correlations=tuple(correlations), drug=drug,
                          source=copy.deepcopy(data))
    keys = [k for k, p in parameters.items() if p.distribution != "covariate"]
    if np.linalg.eigvalsh(spec.correlation_matrix(keys)).min() <= 1e-10:
        raise ScenarioError("population.correlation", [list(c) for c in correlations],
                            "correlations that form a positive-definite matrix")
    return spec
