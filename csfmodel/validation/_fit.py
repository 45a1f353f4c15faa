"""The joint calibration: the fitted parameters, the weighted log residual of a row,
and :func:`fit` with Wald intervals, correlations and each row's share of the
information about each parameter."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from csfmodel.errors import ScenarioError

from ._jacobian import row_values_and_derivatives
from ._rows import NOT_FITTED, NOT_MODELLED, Row, load_rows
from ._runner import run_validation


@dataclass(frozen=True)
class FitParameter:
    """A calibrated parameter: where it lives, its unit and physiological range.

    The fit works on ``log(value)`` and stays inside ``[low, high]``.
    """

    name: str
    table: str        # scenario table: "patient" or "drug" (morphine)
    key: str
    unit: str         # the unit overrides are written in ("" for plain numbers)
    low: float
    high: float
    source: str

    def default(self) -> float:
        """The value the packaged defaults give (in ``unit``)."""
        from csfmodel.anatomy import Anatomy
        from csfmodel.drugs import get_drug

        if self.table == "patient":
            return float(getattr(Anatomy(), self.key))
        drug = get_drug("morphine")
        if self.key == "meningeal_permeability":
            return drug.meningeal_p()
        if self.key == "ka_cr":
            return drug.ka_cr * 60.0
        return float(getattr(drug, self.key))

    def override(self, value: float) -> dict:
        """``{table: {key: value with unit}}`` for :func:`run_validation`."""
        return {self.table: {self.key: f"{value!r} {self.unit}" if self.unit else value}}


#: Parameters the joint calibration may fit, with their physiological ranges.
FIT_PARAMETERS: dict[str, FitParameter] = {p.name: p for p in (
    FitParameter("dispersion", "patient", "dispersion", "cm^2/min", 0.5, 100.0,
                 "oscillatory dispersion at the foramen magnum; >1000x molecular with fine "
                 "anatomy (Stockman 2007), enhanced by nerve roots (Tangen 2015)"),
    FitParameter("injection_spread", "patient", "injection_spread", "", 5.0, 100.0,
                 "CSF volume an injectate mixes into per mL injected; Sjostrom 1987 "
                 "initial volume of distribution 22 +- 8 mL after ~1 mL"),
    FitParameter("meningeal_permeability", "drug", "meningeal_permeability", "cm/min",
                 3e-4, 3e-3, "Bernards & Hill 1990, 1992: 0.3e-3 to 3e-3 cm/min"),
    FitParameter("dispersion_caudal_fraction", "patient", "dispersion_caudal_fraction", "",
                 1e-4, 0.5, "mixing in the sac not driven by the cardiac stroke"),
    FitParameter("ka_cr", "drug", "ka_cr", "1/h", 0.05, 2.0,
                 "controlled-release absorption; Savarese 1986, Franken 2016"),
)}

#: The parameters ``csfmodel validate --refit`` fits by default.
DEFAULT_FIT = ("dispersion", "injection_spread", "meningeal_permeability",
               "dispersion_caudal_fraction", "ka_cr")

#: Between-study (and model-structure) error of a row on the log scale, added in
#: quadrature to the row's own spread: the factor-of-two band is about +-2 of it.
SIGMA_BETWEEN = math.log(2.0) / 2.0


def row_sigma(row: Row) -> float:
    """Standard deviation of ``log(observed)`` used to weight a row in the fit.

    The row's own spread (SD or SEM as the study gave it, relative to the value;
    a range ``low-high`` counts as +-1 SD on the log scale) in quadrature with
    :data:`SIGMA_BETWEEN`.
    """
    cv = 0.0
    if row.spread_range is not None:
        lo, hi = row.spread_range
        if lo > 0 and hi > lo:
            cv = 0.5 * math.log(hi / lo)
    elif row.spread is not None and row.value > 0:
        cv = abs(row.spread) / row.value
    return math.sqrt(cv * cv + SIGMA_BETWEEN ** 2)


def residual(row: Row, model: float) -> float:
    """Weighted log residual ``log(model / observed) / sigma`` of one row; an upper
    bound only counts when the model exceeds it."""
    if not (math.isfinite(model) and model > 0):
        return 10.0
    r = math.log(model / row.value)
    if row.measure == "upper_bound":
        r = max(r, 0.0)
    return r / row_sigma(row)


def fitted_rows(rows: list[Row] | None = None) -> list[Row]:
    """Rows the joint fit uses: every modelled row but :data:`NOT_FITTED`."""
    rows = load_rows() if rows is None else rows
    return [r for r in rows if r.id not in NOT_MODELLED and r.id not in NOT_FITTED]


@dataclass
class FitResult:
    """Result of :func:`fit`: estimates, uncertainty and what pins each parameter.

    Attributes
    ----------
    names
        Fitted parameters (keys of :data:`FIT_PARAMETERS`).
    estimate, start
        Values (in each parameter's unit) at the optimum and at the start.
    ci95
        Approximate 95 % intervals ``(low, high)``: Wald intervals on the log scale
        from the Jacobian (exact by default, :func:`fit`), ``exp(log x +- 1.96 se)``.
    se_log
        Standard errors of ``log(value)``.
    correlation
        Correlation matrix of the log estimates (``names`` order).
    rows, residuals
        Rows used and their weighted residuals at the optimum.
    jacobian
        ``d residual / d log(parameter)`` at the optimum (rows x parameters).
    information
        ``{parameter: {row: share}}``: each row's share of the Fisher information
        about the parameter, ``J_ij^2 / sum_i J_ij^2`` (which rows pin it).
    scale
        Residual variance ``s^2 = RSS / (n - p)`` the covariance is scaled by.
    """

    names: list[str]
    estimate: dict[str, float]
    start: dict[str, float]
    ci95: dict[str, tuple[float, float]]
    se_log: dict[str, float]
    correlation: np.ndarray
    rows: list[str]
    residuals: np.ndarray
    jacobian: np.ndarray
    information: dict[str, dict[str, float]]
    scale: float
    n_eval: int
    success: bool
    message: str

    def overrides(self) -> dict:
        """The estimates as :func:`run_validation` overrides."""
        return _overrides(self.names, [self.estimate[n] for n in self.names])


def fitted_values(names, values) -> dict[str, tuple[str, str, object]]:
    """``{name: (table, key, value as written into the scenarios)}`` of fitted
    parameters (for :func:`~csfmodel.validation._jacobian.row_values_and_derivatives`)."""
    out = {}
    for name, value in zip(names, values):
        p = FIT_PARAMETERS[name]
        out[name] = (p.table, p.key, p.override(float(value))[p.table][p.key])
    return out


def _overrides(names, values, base: dict | None = None) -> dict:
    ov: dict = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (base or {}).items()}
    for name, value in zip(names, values):
        for table, entries in FIT_PARAMETERS[name].override(float(value)).items():
            ov.setdefault(table, {}).update(entries)
    return ov


def residual_derivative(row: Row, model: float, d_model: np.ndarray) -> np.ndarray:
    """``d residual / d log θ`` of one row from ``d model / d log θ`` (:func:`residual`
    differentiated: ``d log(model) / sigma``; zero where the residual is constant, an
    upper bound the model stays under or a model value that is not positive)."""
    if not (math.isfinite(model) and model > 0):
        return np.zeros_like(d_model)
    if row.measure == "upper_bound" and model <= row.value:
        return np.zeros_like(d_model)
    return d_model / (model * row_sigma(row))


def fit(rows: list[Row] | None = None, parameters=DEFAULT_FIT, *,
        start: dict[str, float] | None = None, overrides: dict | None = None,
        solver: str | None = None, max_nfev: int = 60, diff_step: float = 0.02,
        jacobian: str = "exact", progress: Callable[[str], None] | None = None
        ) -> FitResult:
    """Fit parameters to all rows at once: weighted least squares on log(model/observed).

    Parameters
    ----------
    rows
        Rows to fit (default: :func:`fitted_rows` of the packaged table).
    parameters
        Names in :data:`FIT_PARAMETERS`.
    start
        Starting values (default: the packaged defaults, clipped into the ranges).
    overrides
        Fixed overrides applied to every run (e.g. ``{"resolution": "1 cm"}``).
    solver
        Backend of the runs with ``jacobian="2-point"`` (default: the scenario
        default); the exact Jacobian integrates the state with its sensitivities in
        the numba-based sensitivity kernel (:mod:`csfmodel.fitting`).
    max_nfev, diff_step
        Passed to :func:`scipy.optimize.least_squares` (``diff_step`` is relative,
        on log parameters, and used only with ``jacobian="2-point"``).
    jacobian
        ``"exact"`` (default): each row's derivative from the forward sensitivities of
        its study arms (:mod:`csfmodel.validation._jacobian`), one run per evaluation;
        ``"2-point"``: finite differences of whole validation runs.
    progress
        Called with a line of text after each model evaluation.

    Returns
    -------
    FitResult
    """
    from scipy.optimize import least_squares

    rows = fitted_rows(rows)
    names = list(parameters)
    specs = [FIT_PARAMETERS[n] for n in names]
    # the optimizer works on x = log(value / start): finite-difference steps of
    # ``diff_step`` are then the same relative step for every parameter
    ref = []
    for p in specs:
        v = (start or {}).get(p.name, p.default())
        ref.append(math.log(min(max(v, p.low * 1.0001), p.high * 0.9999)))
    ref_ = np.array(ref)
    lo = np.log([p.low for p in specs]) - ref_
    hi = np.log([p.high for p in specs]) - ref_
    if jacobian not in ("exact", "2-point"):
        raise ScenarioError("jacobian", jacobian, "'exact' or '2-point'")
    n_eval = [0]
    last: dict[bytes, tuple[np.ndarray, np.ndarray | None]] = {}

    def evaluate(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Residuals (and with the exact Jacobian their derivatives) at ``x``, once."""
        key = np.asarray(x, float).tobytes()
        if key in last:
            return last[key]
        vals = np.exp(x + ref_)
        ov = _overrides(names, vals, overrides)
        if jacobian == "exact":
            values, dvalues = row_values_and_derivatives(rows, ov, fitted_values(names, vals))
            r = np.array([residual(row, v) for row, v in zip(rows, values)])
            jac = np.array([residual_derivative(row, v, d)
                            for row, v, d in zip(rows, values, dvalues)])
        else:
            res = run_validation(rows, overrides=ov, solver=solver)
            r = np.array([residual(rr.row, rr.model) for rr in res])
            jac = None
        n_eval[0] += 1
        if progress is not None:
            text = ", ".join(f"{n}={v:.4g}" for n, v in zip(names, vals))
            progress(f"eval {n_eval[0]:3d}: RSS {float(r @ r):9.4f}  {text}")
        last.clear()
        last[key] = (r, jac)
        return r, jac

    if jacobian == "exact":
        sol = least_squares(lambda x: evaluate(x)[0], np.zeros(len(specs)),
                            jac=lambda x: evaluate(x)[1], bounds=(lo, hi),
                            max_nfev=max_nfev, method="trf")
    else:
        sol = least_squares(lambda x: evaluate(x)[0], np.zeros(len(specs)), jac="2-point",
                            bounds=(lo, hi), diff_step=diff_step, max_nfev=max_nfev,
                            method="trf")
    J = np.asarray(sol.jac)
    r = np.asarray(sol.fun)
    n, p = J.shape
    rss = float(r @ r)
    s2 = rss / max(n - p, 1)
    try:
        cov = np.linalg.inv(J.T @ J) * s2
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(J.T @ J) * s2
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    d = np.where(se > 0, se, 1.0)
    corr = cov / np.outer(d, d)
    est = np.exp(sol.x + ref_)
    x0 = ref_
    info = {}
    for j, name in enumerate(names):
        tot = float(np.sum(J[:, j] ** 2))
        info[name] = {rows[i].id: (float(J[i, j] ** 2 / tot) if tot > 0 else 0.0)
                      for i in range(n)}
    return FitResult(
        names=names, estimate=dict(zip(names, est.tolist())),
        start=dict(zip(names, np.exp(x0).tolist())),
        ci95={nm: (float(est[j] * math.exp(-1.96 * se[j])),
                   float(est[j] * math.exp(1.96 * se[j]))) for j, nm in enumerate(names)},
        se_log=dict(zip(names, se.tolist())), correlation=corr,
        rows=[r_.id for r_ in rows], residuals=r, jacobian=J, information=info, scale=s2,
        n_eval=n_eval[0], success=bool(sol.success), message=str(sol.message))


def format_fit(res: FitResult, top: int = 3) -> str:
    """The fit as text: estimates with intervals, correlations, and which rows pin what."""
    w = max(len(n) for n in res.names)
    lines = [f"joint fit: {len(res.rows)} rows, {len(res.names)} parameters, "
             f"RSS {float(res.residuals @ res.residuals):.3f}, s^2 {res.scale:.3f}, "
             f"{res.n_eval} model evaluations ({res.message})",
             f"{'parameter':<{w}}  {'default':>10}  {'estimate':>10}  {'95% CI':>23}  unit"]
    for n in res.names:
        p = FIT_PARAMETERS[n]
        lo, hi = res.ci95[n]
        lines.append(f"{n:<{w}}  {p.default():>10.4g}  {res.estimate[n]:>10.4g}  "
                     f"[{lo:>9.4g}, {hi:>9.4g}]  {p.unit or '1'}")
    lines.append("correlation of the log estimates:")
    for i, n in enumerate(res.names):
        lines.append(f"  {n:<{w}}" + "".join(f"{res.correlation[i, j]:>7.2f}"
                                             for j in range(len(res.names))))
    lines.append(f"rows that pin each parameter (share of its Fisher information, top {top}):")
    for n in res.names:
        best = sorted(res.information[n].items(), key=lambda kv: -kv[1])[:top]
        lines.append(f"  {n:<{w}}  " + ", ".join(f"{k} {v:.0%}" for k, v in best))
    return "\n".join(lines)

