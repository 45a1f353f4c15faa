r"""Sampling virtual patients from a population description, reproducibly from a seed.

Each patient ``i`` gets covariates (sex, age, height, BMI and body weight = BMI x
height^2) and, for every varying parameter, a value

.. math::

    \theta_i = \theta_{typ}\,\prod_c (c_i / c_{ref})^{p_c}\,\exp\Bigl(\sum_c b_c (c_i -
    c_{ref})\Bigr)\,f_{female}^{[i\ female]}\,e^{\sigma \eta_i},
    \qquad \sigma = \sqrt{\ln(1 + CV^2)}

(log-normal; a normal parameter adds ``sd * eta`` to its mean), with the random
effects :math:`\eta` standard normal, correlated as the description says (Gaussian
copula), and truncated to ``[low, high]`` (always inside the parameter's declared
:class:`~csfmodel.bounds.Bound`) by the inverse-CDF method: :math:`u = \Phi(\eta)`
is mapped into :math:`[\Phi(a), \Phi(b)]`, so truncation keeps each patient's rank
and the correlations' ordering. Draws come from one :class:`numpy.random.Generator`
in a fixed order: the same seed gives the same patients.

Patients may share their body (covariates and geometric anatomy: column lengths,
spinal CSF volume, conus) in blocks (``bodies < n``): patients of a block differ in
everything else (CSF dynamics, systemic PK, sensitivity). Each body is still a
draw from the population, so every patient is marginally one; what sharing changes
is the number of independent anatomies (see docs/population.md, "Speed").
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

import numpy as np
import xarray as xr
from scipy.special import ndtr, ndtri

from csfmodel.anatomy import VERTEBRAL_LEVELS, Anatomy
from csfmodel.errors import ScenarioError
from csfmodel.scenario import Scenario

from ._data import CONUS_KEY, COVARIATES, PopulationSpec

__all__ = ["sample_patients", "patient_overrides", "patient_anatomies", "GEOMETRIC_KEYS",
           "variable_name", "pd_parameters"]

#: the level where Hogan 1996 began his lumbosacral CSF volume (the T11-T12 disc)
HOGAN_TOP = ("T11", 1.0)


def variable_name(key: str) -> str:
    """Name of a parameter's variable in the population Dataset (``patient.X`` -> ``X``,
    ``drug.cl`` -> ``drug_cl``, ``pd.X`` -> ``pd_X``, the conus -> ``conus_position``)."""
    section, name = key.split(".", 1)
    if key == CONUS_KEY:
        return "conus_position"
    return name if section == "patient" else f"{section}_{name}"


#: parameter keys that shape the grid (:func:`csfmodel.model.make_grid`; shared by the
#: patients of one body)
GEOMETRIC_KEYS = ("patient.cervical_length", "patient.thoracic_length",
                  "patient.lumbar_length", "patient.sacral_s1_length",
                  "patient.sacral_s2_length", "patient.spinal_csf_volume", CONUS_KEY)


def _geometric(key: str) -> bool:
    return key in GEOMETRIC_KEYS


def _truncated(mu: np.ndarray, sigma: float, eta: np.ndarray, low: float, high: float,
               log: bool) -> np.ndarray:
    """``mu + sigma * eta`` (or its exponential) truncated to [low, high], rank-preserving."""
    if log:
        with np.errstate(divide="ignore"):
            lo, hi = np.log(low) if low > 0 else -np.inf, np.log(high)
    else:
        lo, hi = low, high
    if sigma == 0:
        x = mu + 0.0 * eta
    else:
        pa, pb = ndtr((lo - mu) / sigma), ndtr((hi - mu) / sigma)
        u = pa + ndtr(eta) * (pb - pa)
        u = np.clip(u, 1e-300, 1.0 - 1e-16)
        x = mu + sigma * ndtri(u)
    x = np.exp(x) if log else x
    return np.clip(x, low, high)


def _covariates(spec: PopulationSpec, rng: np.random.Generator, k: int) -> dict[str, np.ndarray]:
    cs = spec.covariates
    female = rng.random(k) < cs["female"].probability
    out: dict[str, np.ndarray] = {"female": female}
    for name in ("age", "height", "bmi"):
        c = cs[name]
        eta = rng.standard_normal(k)
        if c.distribution == "normal":
            mean = np.where(female, c.female_mean if c.female_mean is not None else c.mean,
                            c.mean)
            sd = np.where(female, c.female_sd if c.female_sd is not None else c.sd, c.sd)
            x = np.empty(k)
            for s in (False, True):
                m = female == s
                if m.any():
                    x[m] = _truncated(mean[m], float(sd[m][0]), eta[m], c.low, c.high, False)
        else:
            x = _truncated(np.full(k, math.log(c.mean)), math.sqrt(math.log1p(c.cv ** 2)),
                           eta, c.low, c.high, True)
        out[name] = x
    w = spec.covariates["weight"]
    out["weight"] = np.clip(out["bmi"] * (out["height"] / 100.0) ** 2, w.low, w.high)
    return out


def _typical(key: str, scenario: Scenario, pd: Any) -> float:
    section, name = key.split(".", 1)
    if key == CONUS_KEY:
        a = scenario.anatomy
        return VERTEBRAL_LEVELS.index(a.conus_level.strip().upper()) + a.conus_fraction
    obj = {"patient": scenario.anatomy, "drug": scenario.drug, "pd": pd}[section]
    return float(getattr(obj, name))


def pd_parameters():
    """The published effect parameters a population varies around (the defaults)."""
    from csfmodel.effects import EffectParameters

    return EffectParameters()


def sample_patients(spec: PopulationSpec, scenario: Scenario, n: int, seed: Any = 0,
                    bodies: int | None = None) -> xr.Dataset:
    """Draw ``n`` virtual patients around ``scenario``'s values.

    Parameters
    ----------
    spec
        The population description (:func:`load_population`).
    scenario
        Typical values are the scenario's own (its anatomy and drug) unless the
        description gives them; the drug and PD sections apply only when the
        scenario's drug is the one they describe (``spec.drug``).
    n
        Number of patients.
    seed
        Anything :func:`numpy.random.default_rng` accepts; the same seed and
        description give the same patients.
    bodies
        Number of distinct bodies (covariates and grid-shaping anatomy); None = ``n``
        (every patient its own). Patients ``i`` with equal ``i * bodies // n`` share one.

    Returns
    -------
    xarray.Dataset
        Dimension ``patient``: the covariates, every varying parameter (internal units,
        with ``key``, ``units``, ``source`` and ``estimate`` in its attrs), ``conus_level``
        and ``conus_fraction``, ``body``, and derived anatomy: ``spinal_length``,
        ``lumbosacral_csf_volume`` (T11-T12 disc to the end of the sac, as Hogan 1996
        measured it) and ``total_csf_volume``. Every patient's anatomy is validated
        (conus above the end of the sac, bulk flow below production, ...).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ScenarioError("n", n, "a whole number of patients >= 1")
    n = int(n)
    k = n if bodies is None else bodies
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ScenarioError("bodies", bodies, f"a whole number from 1 to n ({n})")
    try:
        rng = np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise ScenarioError("seed", seed, "a whole number >= 0") from None
    body = (np.arange(n) * k) // n
    same_drug = scenario.drug.name == spec.drug
    params = [p for p in spec.parameters.values()
              if p.section == "patient" or same_drug]
    pd = pd_parameters()
    cov_b = _covariates(spec, rng, k)
    cov = {c: v[body] for c, v in cov_b.items()}
    random = [p.key for p in params if p.distribution != "covariate"]
    chol = np.linalg.cholesky(spec.correlation_matrix(random))
    eta_body = rng.standard_normal((k, len(random))) @ chol.T
    eta_pat = rng.standard_normal((n, len(random))) @ chol.T
    refs = {c: spec.covariates[c].reference for c in COVARIATES if c != "female"}
    data: dict[str, tuple] = {}
    for name, v in cov.items():
        c = spec.covariates[name]
        data[name] = ("patient", v.astype(np.int8) if name == "female" else v, {
            "units": COVARIATES[name], "long_name": name, "source": c.source,
            "estimate": int(c.estimate)})
    for p in params:
        if p.distribution == "covariate":
            x = np.clip(cov[p.covariate], p.bound.low, p.bound.high)
        else:
            j = random.index(p.key)
            eta = eta_body[body, j] if _geometric(p.key) else eta_pat[:, j]
            typ = p.typical if p.typical is not None else _typical(p.key, scenario, pd)
            log = p.distribution == "lognormal"
            centre = np.full(n, math.log(typ) if log else typ)
            if log:
                for c, e in p.power:
                    centre += e * np.log(cov[c] / refs[c]) if c != "female" else e * cov[c]
                for c, b in p.per_unit:
                    centre += b * (cov[c] - (refs[c] if c != "female" else 0.0))
                centre += np.where(cov["female"], math.log(p.female), 0.0)
                sigma = math.sqrt(math.log1p(p.spread ** 2))
            else:
                sigma = p.spread
            x = _truncated(centre, sigma, eta, p.low, p.high, log)
        data[variable_name(p.key)] = ("patient", x, {
            "key": p.key, "units": "level" if p.key == CONUS_KEY else p.unit,
            "long_name": variable_name(p.key)[:30], "source": p.source,
            "estimate": int(p.estimate)})
    if "conus_position" in data:
        pos = data["conus_position"][1]
        idx = np.minimum(np.floor(pos).astype(int), VERTEBRAL_LEVELS.index("L3"))
        data["conus_level"] = ("patient", np.array(VERTEBRAL_LEVELS)[idx],
                               {"long_name": "conus level", "units": "1"})
        data["conus_fraction"] = ("patient", np.clip(pos - idx, 0.0, 1.0),
                                  {"long_name": "fraction through conus level", "units": "1"})
    data["body"] = ("patient", body, {"units": "1", "long_name": "body (shared anatomy)"})
    ds = xr.Dataset(data, coords={"patient": ("patient", np.arange(n), {
        "units": "1", "long_name": "virtual patient"})})
    ds.attrs.update({"population_seed": str(seed), "population_bodies": k,
                     "population_drug_variability": int(same_drug)})
    _derived_anatomy(ds, scenario)
    return ds


def patient_overrides(ds: xr.Dataset, internal: bool = False) -> dict[str, list]:
    """Per-patient values of the ``[patient]`` and ``[drug]`` keys, as a sweep's zipped
    parameters (``{"patient.dispersion": ["8.1 cm^2/min", ...]}``; numbers in the
    internal units when ``internal``)."""
    out: dict[str, list] = {}
    for v in ds.data_vars.values():
        key = v.attrs.get("key")
        if key is None or key.startswith("pd.") or key == CONUS_KEY:
            continue
        unit = v.attrs["units"]
        vals = v.values.astype(float).tolist()
        out[key] = vals if internal or unit == "1" else [f"{x!r} {unit}" for x in vals]
    if "conus_level" in ds:
        out["patient.conus_level"] = [str(x) for x in ds.conus_level.values]
        out["patient.conus_fraction"] = ds.conus_fraction.values.astype(float).tolist()
    return out


def patient_anatomies(ds: xr.Dataset, scenario: Scenario) -> list[Anatomy]:
    """The validated anatomy of every patient (one object per body, shared)."""
    ov = patient_overrides(ds, internal=True)
    keys = [k for k in ov if k.startswith("patient.")]
    names = {f.name for f in fields(Anatomy)}
    cache: dict[tuple, Anatomy] = {}
    out = []
    for i in range(ds.sizes["patient"]):
        values = {k.split(".", 1)[1]: ov[k][i] for k in keys}
        sig = tuple(values.values())
        if sig not in cache:
            bad = [k for k in values if k not in names]
            if bad:
                raise ScenarioError(f"population.patient.{bad[0]}", values[bad[0]],
                                    "a field of csfmodel.anatomy.Anatomy")
            try:
                cache[sig] = scenario.anatomy.with_overrides(values, key=f"patient[{i}]")
            except ScenarioError as exc:
                raise ScenarioError(f"population: {exc.key}", exc.value, exc.allowed,
                                    detail="a sampled patient is not physiologically "
                                           "consistent") from None
        out.append(cache[sig])
    return out


def _derived_anatomy(ds: xr.Dataset, scenario: Scenario) -> None:
    anat = patient_anatomies(ds, scenario)
    length = np.array([a.length for a in anat])
    ls = np.array([a.csf_volume_between(a.level_z(*HOGAN_TOP), a.length) for a in anat])
    total = np.array([a.total_csf_volume for a in anat])
    ds["spinal_length"] = ("patient", length, {"units": "cm", "long_name": "spinal SAS length"})
    ds["lumbosacral_csf_volume"] = ("patient", ls, {
        "units": "mL", "long_name": "lumbosacral CSF volume",
        "description": "CSF from the T11-T12 disc to the end of the dural sac (Hogan 1996's "
                       "region)"})
    ds["total_csf_volume"] = ("patient", total, {
        "units": "mL", "long_name": "total CSF volume",
        "description": "spinal + cisternal + cortical SAS + ventricles"})
