r"""Profile-likelihood intervals (Venzon & Moolgavkar 1988 Appl Stat 37:87).

For parameter ``k`` the profile is the objective minimised over the other
parameters with :math:`φ_k` held fixed; the 95 % interval is where it stays within
:math:`χ^2_{1, 0.95} = 3.84` of the minimum, in units of the residual variance
(``s^2``: 1 with known SDs or a fixed ``sigma_log``, else the estimate at the
optimum, as for the Laplace interval). Each end is found by stepping out in
Laplace standard errors until the threshold is crossed, then by Brent's method.
Unlike the Laplace interval it follows a curved, asymmetric objective.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, least_squares

from ._objective import Problem

__all__ = ["profile_interval", "CHI2_95"]

#: 95 % quantile of chi-square with one degree of freedom
CHI2_95 = 3.841458820694124


def _profile(problem: Problem, phi_hat: np.ndarray, k: int, value: float,
             lb: np.ndarray, ub: np.ndarray, start: dict) -> float:
    """Minimum of the objective with ``phi[k] = value`` (the others re-fitted)."""
    P = len(phi_hat)
    if P == 1:
        return problem.objective(np.array([value]))
    free = [j for j in range(P) if j != k]
    x0 = start.get("x", phi_hat[free])

    def full(x):
        phi = np.empty(P)
        phi[free] = x
        phi[k] = value
        return phi

    res = least_squares(lambda x: problem.residuals(full(x)),
                        np.clip(x0, lb[free] + 1e-12, ub[free] - 1e-12),
                        jac=lambda x: problem.jacobian(full(x))[:, free],
                        bounds=(lb[free], ub[free]), method="trf", x_scale="jac",
                        xtol=1e-8, ftol=1e-10, max_nfev=50)
    start["x"] = res.x
    return float(2.0 * res.cost)


def profile_interval(problem: Problem, phi_hat: np.ndarray, f_hat: float, s2: float,
                     se: np.ndarray, k: int, lb: np.ndarray, ub: np.ndarray,
                     level: float = CHI2_95) -> tuple[float, float]:
    """``(low, high)`` of ``phi[k]`` where the profile crosses ``f_hat + level * s2``
    (the bound itself where it does not cross before a bound)."""
    target = f_hat + level * s2
    step = se[k] if np.isfinite(se[k]) and se[k] > 0 else 0.1
    ends = []
    for sign in (-1.0, 1.0):
        start: dict = {}
        inner = phi_hat[k]
        found = None
        for mult in (1.0, 2.0, 3.0, 5.0, 8.0):
            outer = phi_hat[k] + sign * mult * step
            edge = lb[k] if sign < 0 else ub[k]
            if (sign < 0 and outer <= edge) or (sign > 0 and outer >= edge):
                outer = edge
            f_out = _profile(problem, phi_hat, k, outer, lb, ub, start)
            if f_out >= target:
                def g(v, start=start):
                    return _profile(problem, phi_hat, k, v, lb, ub, start) - target

                found = brentq(g, min(inner, outer), max(inner, outer), xtol=1e-4 * step,
                               maxiter=30)
                break
            if outer == edge:
                found = edge
                break
            inner = outer
        ends.append(found if found is not None else inner)
    return ends[0], ends[1]
