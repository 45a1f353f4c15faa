r"""The fit's residuals and their exact Jacobian, on log parameters.

Parameters are fitted as :math:`φ = \ln θ` (they are positive; intervals come out
asymmetric and positive). For each observation ``i`` at time ``t_i`` and site ``i``:

* without an ``sd`` column, the log residual :math:`r_i = (\ln \hat c_i - \ln c_i)/σ`
  (``σ`` = ``sigma_log`` when given, else 1 and estimated afterwards from the
  residuals, as lmfit and nlmixr2's additive-on-log error model do);
* with ``sd``, :math:`r_i = (\hat c_i - c_i)/\mathrm{sd}_i`;
* with priors, one more residual per parameter, :math:`(φ_k - \ln θ_{0,k})/ω_k`
  (log-normal prior of log-SD :math:`ω_k`: maximum a posteriori).

The model :math:`\hat c` and :math:`\partial \hat c/\partial θ` come from one run of
the forward sensitivity equations (:func:`~csfmodel.fitting.solve_sensitivities`)
at the observation times; the Jacobian is :math:`\partial r_i/\partial φ_k = θ_k
\,\partial \hat c_i/\partial θ_k / (\hat c_i σ)` (log) or :math:`/\mathrm{sd}_i`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from csfmodel.model import _hat_weights
from csfmodel.scenario import Scenario, parse_scenario

from ._data import Observations
from ._parameters import Parameter, resolve, with_values

__all__ = ["Problem"]


@dataclass
class Problem:
    """A fit problem: the scenario (the design), the data, the parameters and priors."""

    scenario: Scenario
    data: Observations
    params: list[Parameter]
    prior_sd: np.ndarray | None = None       # log-SD of each prior (None: no priors)
    sigma_log: float | None = None
    rtol: float | None = None
    _cache: dict = field(default_factory=dict, repr=False)
    evaluations: int = 0

    def __post_init__(self) -> None:
        self.phi0 = np.log([p.value for p in self.params])
        self.times = np.unique(self.data.time)
        self.t_index = np.searchsorted(self.times, self.data.time)

    @property
    def log_scale(self) -> bool:
        return not self.data.has_sd

    def model(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictions ``(n,)`` (ng/mL) and their derivatives ``(n, P)`` per internal unit."""
        from csfmodel.api import prepare

        from ._sensitivity import solve_sensitivities

        key = tuple(np.round(np.asarray(phi, float), 15))
        if key in self._cache:
            return self._cache[key]
        theta = np.exp(phi)
        sc = parse_scenario(with_values(self.scenario, self.params, theta))
        prep = prepare(sc)
        params = resolve(sc, [p.key for p in self.params])
        res = solve_sensitivities(prep, params, t_out=self.times, rtol=self.rtol)
        variables = sorted(set(self.data.variable))
        conc, dconc = res.concentrations(variables)
        n = len(self.data)
        pred = np.empty(n)
        dpred = np.empty((n, len(params)))
        for i in range(n):
            var, ti, pos = self.data.variable[i], self.t_index[i], self.data.position[i]
            if var == "csf_concentration":
                idx, w = _hat_weights(prep.model.grid, float(pos))
                pred[i] = conc[var][ti, idx] @ w
                dpred[i] = dconc[var][:, ti, idx] @ w
            else:
                col = int(pos) if var == "cord_concentration" else 0
                pred[i] = conc[var][ti, col]
                dpred[i] = dconc[var][:, ti, col]
        self.evaluations += 1
        self._cache.clear()                 # keep the last point only
        self._cache[key] = (pred, dpred)
        return pred, dpred

    def _data_residuals(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pred, dpred = self.model(phi)
        theta = np.exp(phi)
        obs = self.data.value
        if self.log_scale:
            s = self.sigma_log or 1.0
            safe = np.maximum(pred, 1e-300)
            r = (np.log(safe) - np.log(obs)) / s
            J = dpred * theta[None, :] / safe[:, None] / s
        else:
            r = (pred - obs) / self.data.sd
            J = dpred * theta[None, :] / self.data.sd[:, None]
        return r, J

    def residuals(self, phi: np.ndarray) -> np.ndarray:
        r, _ = self._data_residuals(phi)
        if self.prior_sd is not None:
            r = np.concatenate([r, (phi - self.phi0) / self.prior_sd])
        return r

    def jacobian(self, phi: np.ndarray) -> np.ndarray:
        _, J = self._data_residuals(phi)
        if self.prior_sd is not None:
            J = np.vstack([J, np.diag(1.0 / self.prior_sd)])
        return J

    def objective(self, phi: np.ndarray) -> float:
        """Sum of squared residuals (data, and priors if any)."""
        r = self.residuals(phi)
        return float(r @ r)
