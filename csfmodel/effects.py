r"""Effects (pharmacodynamics) on top of the exposure model.

Longer than 400 lines: each PD parameter keeps its source and its equation in the docstrings.

Exposure (the linear PK model) and effect are kept apart: this module only
reads concentrations that :mod:`csfmodel.model` computes — the unbound
dorsal-horn concentration per cord segment and the unbound brain ECF
concentration — and turns them into effects.

Effect-site delays
------------------
Each site has an effect compartment driven by its tissue concentration
:math:`C` (Sheiner 1979 effect-compartment model):

.. math:: \frac{dC_e}{dt} = k_{e0}\,(C - C_e), \qquad k_{e0} = \ln 2 / t_{1/2,ke0}.

The exposure model already holds part of the delay: brain ECF equilibrates
with plasma through the BBB with its own half-life :math:`t_{brain}`. The
clinical blood-to-effect-site half-life :math:`t_{1/2,ke0}` (4.4 h, Dahan
2004) covers the whole chain blood → brain ECF → receptor response, so only the
remainder is added on the brain ECF: mean transit times of first-order steps in
series add, hence :math:`t_{res} = \max(t_{1/2,ke0} - t_{brain}, 0)`, with
:math:`t_{brain} = \ln 2 / k_{out}` from the model's matrix. The same residual
rule applies to the dorsal horn (whose CSF → tissue delay is in the model).

Analgesia: spinal + supraspinal response surface
------------------------------------------------
Both sites carry mu-opioid receptors; each contributes a normalised potency
:math:`U_s = C_{e,s}/EC_{50,s}` (dorsal horn) and :math:`U_b = C_{e,b}/EC_{50,b}`
(brain). They combine in the response surface of Minto et al. 2000
(Anesthesiology 92:1603), with an optional interaction term
(Greco 1995 Pharmacol Rev 47:331):

.. math:: U = U_s + U_b + \beta\,U_s U_b,\qquad
          A = \frac{U^{\gamma}}{1 + U^{\gamma}}.

``beta = 0`` is additivity (Loewe); ``beta > 0`` is the spinal–supraspinal
synergy that Yeung & Rudy 1980 (J Pharmacol Exp Ther 215:633) showed for
morphine in rats (magnitude in humans unknown, so the default is 0). With no
spinal exposure :math:`A` reduces to the purely supraspinal sigmoid
:math:`U_b^\gamma/(1+U_b^\gamma)`, and vice versa.

For a target range of cord segments (the dermatomes of the pain) the
analgesia reported is that of the *worst-covered* segment, i.e. the minimum
over the target segments (pain is relieved only if every dermatome is).

Respiratory depression (supraspinal adverse effect)
---------------------------------------------------
Fractional depression of ventilation at a fixed end-tidal PCO2 of 50 mmHg
(Dahan 2004): :math:`R = C_{e,b}^{\gamma_r}/(C_{50,r}^{\gamma_r} + C_{e,b}^{\gamma_r})`,
with its own effect site on the brain ECF (same residual rule). The delay of
hours after an intrathecal bolus — morphine reaching the brainstem by rostral
CSF spread, then the effect site — is the classic hazard of delayed
respiratory depression.

Parameters and sources
----------------------
=========================  ==================  =========================================
parameter                  default             source
=========================  ==================  =========================================
C50 analgesia, brain       32 nM plasma-eq.    Dahan 2004 Anesthesiology 101:1201
                           (9.1 ng/mL)         (integrated PK/PD, 32 +- 1.4 nM; potency
                                               equal for analgesia and respiration)
gamma analgesia            2.4                 Dahan 2004 (2.4 +- 0.7)
t1/2ke0 (blood→effect)     4.4 h               Dahan 2004 (4.4 +- 0.3 h); Lötsch 2001
                                               Clin Pharmacokinet reports 2.8-4.4 h
C50 respiration            32 nM plasma-eq.    Dahan 2004
gamma respiration          1.0                 Dahan 2004
EC50 dorsal horn (spinal)  3 pmol/mg cord      minimal effective whole-cord morphine
                           tissue (total)      concentration after IT morphine, rat hot
                                               plate ("The degree of analgesia correlates
                                               to spinal morphine concentration after
                                               intrathecal administration in rats");
                                               taken as the EC50 (ESTIMATE)
t1/2ke0 dorsal horn        0.25 h beyond the   ESTIMATE: onset of IT morphine analgesia
                           model's CSF→cord    30-60 min (Rathmell 2005 Anesth Analg
                           delay               101:S30), mostly the CSF→cord diffusion
                                               already in the model
beta (interaction)         0                   ESTIMATE (see above)
=========================  ==================  =========================================

Plasma-equivalent potencies are turned into unbound brain ECF concentrations
with the drug's own steady-state ratio :math:`K_{p,uu}\,f_u` (brain ECF
unbound : total plasma), so the supraspinal EC50 follows the drug's BBB
parameters. The spinal tissue threshold (total, per g) becomes unbound with
the cord partition :math:`K_{p,cord}` of :mod:`csfmodel.drugs`.

Units: concentrations in ng/mL, times in h (the results' units).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numba
import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from csfmodel._effect_inputs import (
    EFFECT_INPUT_ATTRS,
    EffectInputs,
    brain_equilibration_half_life,
)

if TYPE_CHECKING:
    from csfmodel.model import Model

__all__ = [
    "EffectParameters",
    "EffectInputs",
    "EFFECT_INPUT_ATTRS",
    "ResolvedEffects",
    "resolve",
    "analgesia",
    "respiratory_depression",
    "effect_site",
    "effect_site_periodic",
    "effects",
    "target_segments",
    "brain_equilibration_half_life",
]


@dataclass(frozen=True)
class EffectParameters:
    """PD parameters as published (see the module docstring for sources).

    Attributes
    ----------
    c50_brain_nM
        Analgesic potency, plasma-equivalent effect-site concentration, nM.
    gamma
        Steepness of the analgesia response surface.
    t_half_ke0_h
        Blood → supraspinal effect-site equilibration half-life, h.
    c50_resp_nM, gamma_resp
        Respiratory depression potency (plasma-equivalent, nM) and steepness.
    spinal_threshold_pmol_per_mg
        Spinal potency as a total cord tissue concentration, pmol/mg.
    t_half_spinal_h
        Residual dorsal-horn effect-site half-life beyond the model's CSF → cord
        delay, h.
    interaction
        ``beta`` of the response surface (0 = additive).
    ec50_spinal, ec50_brain, ec50_resp
        Optional direct overrides, unbound ng/mL (None = derived from the above).
    """

    c50_brain_nM: float = 32.0
    gamma: float = 2.4
    # re-examined with the rostral transport v2 (docs/validation.md, "Supraspinal effect
    # timing"): with 4.4 h respiratory depression peaks 8 h after a lumbar IT bolus
    # (6-11 h clinically: Camporesi 1983, Bailey 2000) and the IV effect-site curve
    # matches Dahan's in level best (2.8 h, Lotsch 2001, fits it worse); kept
    t_half_ke0_h: float = 4.4
    c50_resp_nM: float = 32.0
    gamma_resp: float = 1.0
    spinal_threshold_pmol_per_mg: float = 3.0
    # estimate, kept: with the model's CSF -> cord diffusion the lumbar dorsal-horn effect
    # site reaches half its maximum ~1.2 h after 0.3 mg IT at L3-L4 (onset of IT morphine
    # analgesia 30-60 min, Rathmell 2005)
    t_half_spinal_h: float = 0.25
    interaction: float = 0.0
    ec50_spinal: float | None = None
    ec50_brain: float | None = None
    ec50_resp: float | None = None
    #: sources, for reports
    sources: tuple[str, ...] = (
        "Dahan 2004 Anesthesiology 101:1201 (C50 32 nM, gamma 2.4 / 1, t1/2ke0 4.4 h)",
        "Lotsch 2001 (t1/2ke0 2.8-4.4 h)",
        "rat IT morphine: minimal effective cord concentration 3 pmol/mg (estimate as EC50)",
        "Minto 2000 Anesthesiology 92:1603 (response surface)",
    )

    def with_(self, **kw) -> EffectParameters:
        """Copy with some parameters changed."""
        return replace(self, **kw)


@dataclass(frozen=True)
class ResolvedEffects:
    """Effect parameters in the model's terms: unbound ng/mL, h."""

    ec50_spinal: float
    ec50_brain: float
    ec50_resp: float
    gamma: float
    gamma_resp: float
    interaction: float
    t_half_spinal: float     # residual effect-site half-life on the dorsal horn, h
    t_half_brain: float      # residual effect-site half-life on brain ECF, h
    t_half_brain_model: float  # brain ECF equilibration half-life in the PK model, h

    def as_dict(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in self.__dataclass_fields__}


def resolve(params: EffectParameters | None, model: Model | EffectInputs) -> ResolvedEffects:
    """Turn published parameters into unbound concentrations and residual delays.

    Parameters
    ----------
    params
        Published parameters (defaults if None).
    model
        The assembled :class:`~csfmodel.model.Model` (drug partitions, BBB), or the
        :class:`EffectInputs` recorded with its results.
    """
    p = params or EffectParameters()
    inp = model if isinstance(model, EffectInputs) else EffectInputs.of(model)
    if inp.drug != "morphine" and None in (p.ec50_spinal, p.ec50_brain, p.ec50_resp):
        from csfmodel.errors import ScenarioError

        raise ScenarioError(
            "drug.name", inp.drug, "morphine, or explicit potencies for this drug: "
            "EffectParameters(ec50_spinal=..., ec50_brain=..., ec50_resp=...) in unbound ng/mL",
            detail="the published potencies of the effect model are morphine's")
    to_brain_u = inp.kpuu_brain * inp.fu_plasma  # brain ECF unbound : total plasma
    ng = inp.mw / 1000.0  # nM -> ng/mL
    ec50_b = p.ec50_brain if p.ec50_brain is not None else p.c50_brain_nM * ng * to_brain_u
    ec50_r = p.ec50_resp if p.ec50_resp is not None else p.c50_resp_nM * ng * to_brain_u
    if p.ec50_spinal is not None:
        ec50_s = p.ec50_spinal
    else:
        # pmol/mg = nmol/g; * MW ng/nmol -> ng/g total tissue; / Kp (mL/g) -> unbound ng/mL
        ec50_s = p.spinal_threshold_pmol_per_mg * inp.mw / inp.kp_cord
    t_b = inp.t_half_brain_model
    return ResolvedEffects(
        ec50_spinal=float(ec50_s), ec50_brain=float(ec50_b), ec50_resp=float(ec50_r),
        gamma=p.gamma, gamma_resp=p.gamma_resp, interaction=p.interaction,
        t_half_spinal=p.t_half_spinal_h, t_half_brain=max(p.t_half_ke0_h - t_b, 0.0),
        t_half_brain_model=t_b)


def analgesia(c_spinal: ArrayLike, c_brain: ArrayLike, r: ResolvedEffects) -> np.ndarray:
    """Analgesia (0-1) from effect-site concentrations (unbound ng/mL).

    ``A = U^g / (1 + U^g)`` with ``U = Us + Ub + beta Us Ub``; broadcasts.
    """
    us = np.asarray(c_spinal, float) / r.ec50_spinal
    ub = np.asarray(c_brain, float) / r.ec50_brain
    u = np.maximum(us + ub + r.interaction * us * ub, 0.0)
    ug = u ** r.gamma
    return ug / (1.0 + ug)


def respiratory_depression(c_brain: ArrayLike, r: ResolvedEffects) -> np.ndarray:
    """Fractional depression of ventilation (0-1) from the brain effect-site concentration."""
    x = (np.maximum(np.asarray(c_brain, float), 0.0) / r.ec50_resp) ** r.gamma_resp
    return x / (1.0 + x)


def _filter_coeffs(dt: np.ndarray, k: float):
    kh = k * dt
    a = np.exp(-kh)
    with np.errstate(invalid="ignore", divide="ignore"):
        lin = np.where(kh > 1e-8, 1.0 - (1.0 - a) / np.where(kh > 0, kh, 1.0), 0.5 * kh)
    return a, 1.0 - a, lin


def _filter(c: np.ndarray, t: np.ndarray, t_half: float, ce0: np.ndarray | float = 0.0
            ) -> np.ndarray:
    """Effect compartment along axis 0, exact for C piecewise linear between samples."""
    c = np.asarray(c, float)
    if t_half <= 0:
        return c.copy()
    k = np.log(2.0) / t_half
    a, b, lin = _filter_coeffs(np.diff(t), k)
    # fresh, writable, C-ordered float arrays: one compiled signature of the loop
    flat = np.array(c.reshape(len(c), -1), dtype=float, order="C")
    first = np.array(np.broadcast_to(np.asarray(ce0, float), c.shape[1:]).reshape(-1),
                     dtype=float, order="C")
    return _filter_loop(flat, a, b, lin, first).reshape(c.shape)


@numba.njit(cache=True, nogil=True)
def _filter_loop(c: np.ndarray, a: np.ndarray, b: np.ndarray, lin: np.ndarray,
                 first: np.ndarray) -> np.ndarray:
    """The recursion of :func:`_filter` on ``c`` ``(times, columns)`` (compiled: a sweep
    filters thousands of columns of thousands of samples)."""
    n, m = c.shape
    out = np.empty((n, m))
    for j in range(m):
        out[0, j] = first[j]
    for i in range(n - 1):
        for j in range(m):
            out[i + 1, j] = a[i] * out[i, j] + b[i] * c[i, j] + lin[i] * (c[i + 1, j] - c[i, j])
    return out


def effect_site(da: xr.DataArray, t_half_h: float, dim: str = "time") -> xr.DataArray:
    """Effect-site concentration of ``da`` with half-life ``t_half_h`` (h), from zero.

    The input is taken as piecewise linear between its samples (exact update).
    """
    t = np.asarray(da[dim].values, float)
    moved = da.transpose(dim, ...)
    out = _filter(moved.values, t, t_half_h, 0.0)
    res = moved.copy(data=out).transpose(*da.dims)
    res.attrs = dict(da.attrs, long_name="effect-site concentration driven by "
                     + da.attrs.get("long_name", da.name or "concentration"),
                     t_half_ke0_h=float(t_half_h))
    return res


def effect_site_periodic(c: np.ndarray, t: np.ndarray, t_half_h: float) -> np.ndarray:
    """Periodic steady state of the effect compartment for one period of ``c`` (axis 0).

    ``t`` spans exactly one period (``c[0]`` and ``c[-1]`` the values at its ends).
    Solved directly: ``Ce(T) = a Ce(0) + r`` with ``Ce(T) = Ce(0)``.
    """
    if t_half_h <= 0:
        return np.asarray(c, float).copy()
    k = np.log(2.0) / t_half_h
    zero = _filter(c, t, t_half_h, 0.0)
    a_total = np.exp(-k * (t[-1] - t[0]))
    ce0 = zero[-1] / (1.0 - a_total)
    decay = np.exp(-k * (t - t[0]))
    return zero + np.multiply.outer(decay, ce0) if np.ndim(c) > 1 else zero + decay * ce0


def target_segments(target: str | list[str] | tuple[str, ...] | None,
                    key: str = "target") -> list[str]:
    """Cord segments of a target: ``"T10"``, ``"T8-L1"`` or a list; None = all.

    Raises
    ------
    ScenarioError
        For an unknown segment or a range that runs upwards.
    """
    from csfmodel.anatomy import CORD_SEGMENTS
    from csfmodel.errors import ScenarioError

    allowed = (f"a cord segment ({CORD_SEGMENTS[0]}…{CORD_SEGMENTS[-1]}), a range such as "
               "'T8-L1', or a list of segments")
    if target is None:
        return list(CORD_SEGMENTS)
    if isinstance(target, str):
        parts = [p.strip().upper() for p in target.replace("–", "-").split("-")]
        if len(parts) == 1 and parts[0] in CORD_SEGMENTS:
            return parts
        if len(parts) == 2 and all(p in CORD_SEGMENTS for p in parts):
            i, j = CORD_SEGMENTS.index(parts[0]), CORD_SEGMENTS.index(parts[1])
            if j < i:
                raise ScenarioError(key, target, allowed, detail="range runs upwards")
            return list(CORD_SEGMENTS[i:j + 1])
        raise ScenarioError(key, target, allowed)
    out = [str(s).strip().upper() for s in target]
    bad = [s for s in out if s not in CORD_SEGMENTS]
    if bad or not out:
        raise ScenarioError(key, target, allowed)
    return out


def effects(ds: xr.Dataset, model: Model | None = None,
            params: EffectParameters | ResolvedEffects | None = None,
            target: str | list[str] | None = None) -> xr.Dataset:
    """Analgesia and respiratory depression over time for a results Dataset.

    Parameters
    ----------
    ds
        Results of :func:`csfmodel.simulate` (starting from a drug-free state).
    model
        The model the results came from (for the BBB half-life and partitions);
        when None, the :class:`EffectInputs` recorded with the results are used
        (results of :func:`csfmodel.simulate`, or one scenario of a sweep).
    params
        Published (:class:`EffectParameters`) or resolved parameters.
    target
        Target cord segments (``"T10"``, ``"T8-L1"``); None = all segments.

    Returns
    -------
    xarray.Dataset
        ``analgesia_segment(time, segment)``, ``analgesia(time)`` (worst target
        segment), ``respiratory_depression(time)``, the effect-site
        concentrations, and the resolved parameters in ``attrs``.
    """
    if isinstance(params, ResolvedEffects):
        r = params
    else:
        r = resolve(params, EffectInputs.of(model) if model is not None else _inputs_of(ds))
    segs = target_segments(target)
    ce_s = effect_site(ds.cord_concentration, r.t_half_spinal)
    ce_b = effect_site(ds.brain_concentration, r.t_half_brain)
    ce_r = ce_b
    a_seg = xr.apply_ufunc(analgesia, ce_s, ce_b, kwargs={"r": r})
    a_seg.attrs = {"units": "1", "long_name": "analgesia (fraction of maximum) per cord "
                   "segment, spinal + supraspinal response surface"}
    a = a_seg.sel(segment=segs).min("segment")
    a.attrs = {"units": "1", "long_name": "analgesia of the worst-covered target segment",
               "target_segments": ",".join(segs)}
    rd = xr.apply_ufunc(respiratory_depression, ce_r, kwargs={"r": r})
    rd.attrs = {"units": "1", "long_name": "fractional depression of ventilation at fixed "
                "end-tidal PCO2 (Dahan 2004)"}
    ce_s.attrs["units"] = ce_b.attrs["units"] = "ng/mL"
    out = xr.Dataset({"analgesia": a, "analgesia_segment": a_seg,
                      "respiratory_depression": rd,
                      "spinal_effect_site_concentration": ce_s,
                      "brain_effect_site_concentration": ce_b})
    out.attrs = {f"pd_{k}": v for k, v in r.as_dict().items()}
    return out


def _inputs_of(ds: xr.Dataset) -> EffectInputs:
    """The effect inputs recorded with results; for files written before they were
    recorded, built once from the ``scenario`` attribute (the drug and its model)."""
    inputs = EffectInputs.from_dataset(ds)
    if inputs is not None:
        return inputs
    import json

    from csfmodel.api import prepare
    from csfmodel.errors import ScenarioError

    if "scenario" not in ds.attrs:
        raise ScenarioError("results", "a Dataset without effect inputs", "results of "
                            "csfmodel.simulate (they record them), or effects(ds, model=...)")
    return EffectInputs.of(prepare(json.loads(ds.attrs["scenario"])).model)
