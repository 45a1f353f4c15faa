r"""Fit scenario values to a user's observations: :func:`fit` and :class:`FitResult`.

Weighted least squares (or, with priors, maximum a posteriori) with
:func:`scipy.optimize.least_squares` (trust-region reflective, inside the
physiological ranges) and the exact Jacobian of the residuals from the forward
sensitivities (:mod:`csfmodel.fitting._objective`). The report follows what users of
nlmixr2, Pumas and lmfit expect:

* **estimates** in the unit the scenario file uses for each key;
* **standard errors** from the covariance :math:`s^2 (J^T J)^{-1}` on the log
  parameters (Laplace / Gauss-Newton; ``s^2`` is the residual variance
  :math:`\mathrm{SSR}/(n - p)` for log residuals without a given ``sigma_log``, else
  1), ``se(θ) = θ se(φ)`` and ``RSE % = 100 se(θ)/θ``;
* **95 % intervals**: Laplace, :math:`\exp(φ \pm 1.96\,se(φ))` (log-normal), and
  profile likelihood (:mod:`~csfmodel.fitting._profile`) for up to three parameters;
* the **correlation** matrix of the estimates, the objective, AIC, the residuals
  per observation, and whether the optimizer converged;
* a figure of the fit against the data with the residuals (:meth:`FitResult.plot`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from csfmodel.errors import ScenarioError
from csfmodel.scenario import Scenario

from ._data import Observations, read_observations
from ._objective import Problem
from ._parameters import Parameter, resolve
from ._profile import CHI2_95, profile_interval

__all__ = ["fit", "FitResult", "PRIOR_LOG_SD", "DEFAULT_PRIOR_CV", "MAX_PROFILE"]

_Z95 = 1.959963984540054


def _log_sd(low: float, high: float) -> float:
    """Log-SD of a log-normal whose 95 % interval is [low, high]."""
    return math.log(high / low) / (2 * _Z95)


#: log-SD of the priors where csfmodel has a published or calibrated interval
#: (the 95 % intervals of the joint calibration, ``csfmodel validate --refit``,
#: documented beside each default in anatomy.py and drugs.py)
PRIOR_LOG_SD: dict[str, float] = {
    "patient.dispersion": _log_sd(4.8, 14.2),
    "patient.dispersion_caudal_fraction": _log_sd(0.0027, 0.075),
    "patient.injection_spread": _log_sd(20.8, 57.7),
    "drug.meningeal_permeability": _log_sd(1.06e-3, 2.05e-3),
    "drug.ka_cr": _log_sd(0.105, 0.35),
}
#: coefficient of variation of a prior where csfmodel has no interval (50 %)
DEFAULT_PRIOR_CV = 0.5
#: profile-likelihood intervals are computed for at most this many parameters
MAX_PROFILE = 3


@dataclass
class FitResult:
    """What :func:`fit` found (values in the scenario's units for each key).

    Attributes
    ----------
    parameters
        ``{key: {"estimate", "initial", "unit", "se", "rse_percent", "ci_low",
        "ci_high", "profile_low", "profile_high", "prior_sd_log", "low", "high"}}``;
        ``ci_*`` the profile interval where computed, else Laplace (``laplace_low``,
        ``laplace_high`` are always given).
    correlation
        ``(P, P)`` correlation matrix of the estimates (log scale).
    objective
        Sum of squared residuals at the estimate (with priors: data + prior terms).
    converged, message, evaluations
        The optimizer's outcome.
    residuals
        One dict per observation: row, time_h, site, observed, predicted (ng/mL),
        residual (weighted).
    """

    parameters: dict[str, dict[str, Any]]
    correlation: np.ndarray
    objective: float
    converged: bool
    message: str
    evaluations: int
    n_observations: int
    error_model: str
    sigma: float
    aic: float
    residuals: list[dict[str, Any]]
    data: Observations = field(repr=False)
    curves: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def keys(self) -> list[str]:
        return list(self.parameters)

    def estimates(self) -> dict[str, float]:
        """``{key: estimate}`` in the scenario's units."""
        return {k: v["estimate"] for k, v in self.parameters.items()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``csfmodel fit -o FIT.json`` writes)."""
        return {
            "parameters": self.parameters,
            "objective": self.objective,
            "converged": self.converged,
            "message": self.message,
            "evaluations": self.evaluations,
            "n_observations": self.n_observations,
            "error_model": self.error_model,
            "sigma": self.sigma,
            "aic": self.aic,
            "correlation": {"keys": self.keys, "matrix": self.correlation.tolist()},
            "residuals": self.residuals,
            "data": self.data.source,
        }

    def format(self) -> str:
        """The report as text: estimates, intervals, correlations, diagnostics."""
        lines = [f"fit to {self.n_observations} observations ({self.data.source}); "
                 f"{self.error_model}",
                 f"{'parameter':36s} {'estimate':>11s} {'unit':10s} {'SE':>10s} {'RSE%':>6s}"
                 f"  {'95% CI':>24s}  method"]
        for k, v in self.parameters.items():
            how = "profile" if v.get("profile_low") is not None else "Laplace"
            lines.append(f"{k:36s} {v['estimate']:11.4g} {v['unit']:10s} {v['se']:10.3g} "
                         f"{v['rse_percent']:6.1f}  [{v['ci_low']:10.4g}, {v['ci_high']:10.4g}]"
                         f"  {how}")
        if len(self.keys) > 1:
            lines.append("correlations:")
            for i, k in enumerate(self.keys):
                lines.append(f"  {k:36s} " + " ".join(f"{c:6.2f}" for c in self.correlation[i]))
        lines.append(f"objective {self.objective:.6g}, residual SD {self.sigma:.4g}"
                     f"{' (log)' if 'log' in self.error_model else ''}, AIC {self.aic:.4g}; "
                     f"{'converged' if self.converged else 'NOT converged'} after "
                     f"{self.evaluations} model runs ({self.message})")
        worst = sorted(self.residuals, key=lambda r: -abs(r["residual"]))[:3]
        lines.append("largest residuals: " + "; ".join(
            f"row {r['row']} ({r['site']}, {r['time_h']:g} h) {r['residual']:+.2f}"
            for r in worst))
        return "\n".join(lines)

    def plot(self, path: str | Path | None = None):
        """Figure of the fitted model against the data (one panel per site) and the
        residuals; saved to ``path`` when given. Returns the figure."""
        from ._figure import plot_fit

        fig = plot_fit(self)
        if path is not None:
            from csfmodel._io import save_figure

            save_figure(fig, path, close=False)
        return fig


def _priors(params: list[Parameter], priors: bool | dict[str, float] | None) -> np.ndarray | None:
    if not priors:
        return None
    user = priors if isinstance(priors, dict) else {}
    for k, cv in user.items():
        if k not in [p.key for p in params]:
            raise ScenarioError(f"priors[{k!r}]", k, "one of the fitted keys: "
                                + ", ".join(p.key for p in params))
        if isinstance(cv, bool) or not isinstance(cv, (int, float)) or not cv > 0:
            raise ScenarioError(f"priors[{k!r}]", cv, "a coefficient of variation > 0, "
                                "e.g. 0.5 for 50 %")
    out = []
    for p in params:
        if p.key in user:
            out.append(math.sqrt(math.log(1.0 + float(user[p.key]) ** 2)))
        else:
            out.append(PRIOR_LOG_SD.get(p.key, math.sqrt(math.log(1.0 + DEFAULT_PRIOR_CV ** 2))))
    return np.array(out)


def fit(scenario: Scenario | dict | str | Path, data: str | Path | Observations,
        parameters: list[str] | tuple[str, ...], *, priors: bool | dict[str, float] = False,
        sigma_log: float | None = None, profile: bool | None = None,
        rtol: float | None = None, progress: bool = False) -> FitResult:
    """Fit scenario values to observations.

    Parameters
    ----------
    scenario
        The design (doses, sites, volumes): a Scenario, dict or TOML path; the
        fitted values start from the scenario's (or the defaults).
    data
        CSV path (``time_h, site, value, unit[, sd]``; see
        :func:`~csfmodel.fitting.read_observations`) or :class:`Observations`.
    parameters
        Scenario keys to fit (as for :func:`~csfmodel.fitting.sensitivity`).
    priors
        ``True``: log-normal priors around the starting values with the log-SD of
        :data:`PRIOR_LOG_SD` (or a CV of :data:`DEFAULT_PRIOR_CV`); a dict
        ``{key: cv}`` sets some CVs (the rest as with ``True``). MAP estimation.
    sigma_log
        SD of the log observations (log residuals only). Default: estimated from the
        residuals (without priors) or ln(2)/2 (with priors, which need a scale).
    profile
        Profile-likelihood intervals (default: for up to :data:`MAX_PROFILE` parameters).
    rtol
        Integration tolerance of the sensitivities (default the numba backend's).
    progress
        Print each model run's objective to stderr.

    Returns
    -------
    FitResult
    """
    from csfmodel.api import _as_scenario

    sc = _as_scenario(scenario)
    obs = data if isinstance(data, Observations) else read_observations(data, sc)
    params = resolve(sc, list(parameters) if not isinstance(parameters, str) else parameters)
    for p in params:
        if not p.value > 0:
            raise ScenarioError(f"parameters[{p.key!r}]", p.user_value,
                                "a positive starting value (parameters are fitted on the log "
                                "scale); set it in the scenario")
    prior_sd = _priors(params, priors)
    if sigma_log is not None and not (isinstance(sigma_log, (int, float)) and sigma_log > 0):
        raise ScenarioError("sigma_log", sigma_log, "a standard deviation > 0")
    if prior_sd is not None and sigma_log is None and not obs.has_sd:
        sigma_log = math.log(2.0) / 2.0
    if profile is None:
        profile = len(params) <= MAX_PROFILE
    problem = Problem(sc, obs, params, prior_sd, sigma_log, rtol)
    bounds = [p.bounds_internal() for p in params]
    lb = np.array([math.log(lo) if lo > 0 else -np.inf for lo, _ in bounds])
    ub = np.array([math.log(hi) if math.isfinite(hi) else np.inf for _, hi in bounds])
    x0 = np.clip(problem.phi0, lb + 1e-9, ub - 1e-9)

    def res_fn(phi):
        r = problem.residuals(phi)
        if progress:
            import sys

            print(f"csfmodel fit: run {problem.evaluations}, objective {float(r @ r):.6g}",
                  file=sys.stderr, flush=True)
        return r

    out = least_squares(res_fn, x0, jac=problem.jacobian, bounds=(lb, ub), method="trf",
                        x_scale="jac", xtol=1e-10, ftol=1e-10, gtol=1e-10, max_nfev=200)
    phi = out.x
    J = problem.jacobian(phi)
    r = problem.residuals(phi)
    f_hat = float(r @ r)
    n, P = len(obs), len(params)
    estimated_sigma = problem.log_scale and sigma_log is None
    r_data = r[:n]
    s2 = float(r_data @ r_data) / max(n - P, 1) if estimated_sigma else 1.0
    try:
        cov = s2 * np.linalg.inv(J.T @ J)
    except np.linalg.LinAlgError:
        cov = np.full((P, P), np.inf)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, np.inf))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(se, se)
    theta = np.exp(phi)
    table: dict[str, dict[str, Any]] = {}
    for k, p in enumerate(params):
        f = p.factor
        lo_l, hi_l = math.exp(phi[k] - _Z95 * se[k]), math.exp(phi[k] + _Z95 * se[k])
        entry = {"estimate": theta[k] / f, "initial": p.value / f, "unit": p.unit,
                 "se": theta[k] * se[k] / f, "rse_percent": 100.0 * se[k],
                 "laplace_low": lo_l / f, "laplace_high": hi_l / f,
                 "profile_low": None, "profile_high": None,
                 "ci_low": lo_l / f, "ci_high": hi_l / f,
                 "low": math.exp(lb[k]) / f, "high": math.exp(ub[k]) / f if np.isfinite(ub[k])
                 else None,
                 "at_bound": bool(phi[k] - lb[k] < 1e-6 or ub[k] - phi[k] < 1e-6),
                 "prior_sd_log": None if prior_sd is None else float(prior_sd[k])}
        table[p.key] = entry
    if profile and np.all(np.isfinite(se)):
        for k, p in enumerate(params):
            a, b = profile_interval(problem, phi, f_hat, s2, se, k, lb, ub, CHI2_95)
            table[p.key].update(profile_low=math.exp(a) / p.factor,
                                profile_high=math.exp(b) / p.factor,
                                ci_low=math.exp(a) / p.factor, ci_high=math.exp(b) / p.factor)
        problem.model(phi)      # the estimate's run, for the residuals below
    pred, _ = problem.model(phi)
    rows = [{"row": int(obs.row[i]), "time_h": float(obs.time[i] / 60.0), "site": obs.site[i],
             "observed": float(obs.value[i]), "predicted": float(pred[i]),
             "residual": float(r[i])} for i in range(n)]
    ssr = float(r_data @ r_data)
    if problem.log_scale:
        sig = math.sqrt(s2) * (sigma_log or 1.0) if estimated_sigma else sigma_log
        aic = n * math.log(max(ssr * (sigma_log or 1.0) ** 2, 1e-300) / n) + 2 * P
        model_name = "additive error on log concentrations (proportional)"
    else:
        sig = math.sqrt(ssr / max(n - P, 1))
        aic = ssr + 2 * P
        model_name = "weighted by the given SD"
    if prior_sd is not None:
        model_name += "; log-normal priors (MAP)"
    result = FitResult(parameters=table, correlation=corr, objective=f_hat,
                       converged=bool(out.status > 0), message=str(out.message),
                       evaluations=problem.evaluations, n_observations=n,
                       error_model=model_name, sigma=float(sig), aic=float(aic), residuals=rows,
                       data=obs)
    result.curves = {"scenario": sc, "params": params, "theta": theta}
    return result
