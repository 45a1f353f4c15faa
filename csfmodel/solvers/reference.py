"""Reference backend: scipy's Radau IIA on the sparse matrix.

Accurate to tight tolerances and simple enough to trust; slow. It restarts the
integrator at every dose event (jumps are applied exactly) and integrates the
piecewise-constant input in between. Fast backends are tested against it.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from csfmodel.model import LinearSystem, Schedule

__all__ = ["solve"]


def solve(system: LinearSystem, schedule: Schedule, t_out: np.ndarray, *,
          rtol: float = 1e-10, atol: float | None = None, method: str = "Radau",
          y0: np.ndarray | None = None) -> np.ndarray:
    """Integrate ``dy/dt = J y + u`` with jumps; return states at ``t_out`` (min).

    Parameters
    ----------
    system, schedule
        Arrays from :func:`csfmodel.model.build_model` and
        :func:`csfmodel.model.build_schedule`.
    t_out
        Output times (min), non-decreasing, within ``[0, schedule.t_end]``.
    rtol, atol
        Tolerances of :func:`scipy.integrate.solve_ivp`. ``atol`` defaults to
        1e-13 of the total amount dosed plus the initial amount (ug).
    method
        An implicit method of ``solve_ivp`` (``"Radau"`` or ``"BDF"``).
    y0
        Initial state (amounts, ug); zeros by default.
    """
    from csfmodel.solvers import check_inputs

    t_out = check_inputs(system, schedule, t_out, y0)
    J = system.to_sparse().tocsc()
    n = system.n_state
    total = schedule.total_dosed()
    y = np.zeros(n) if y0 is None else np.array(y0, float)
    total += np.abs(y).sum()
    if atol is None:
        atol = 1e-13 * max(total, 1e-300)
    out = np.full((len(t_out), n), np.nan)
    ends = np.append(schedule.times[1:], schedule.t_end)
    reached = [0.0]  # start of the dose interval being integrated
    try:
        _integrate(J, schedule, t_out, y, out, ends, rtol, atol, method, reached)
    except KeyboardInterrupt:
        from csfmodel.solvers import SolveInterrupted

        raise SolveInterrupted(out[: int(np.count_nonzero(t_out < reached[0]))]) from None
    if np.isnan(out).any():  # every row is written by one of the intervals
        from csfmodel.solvers import SolverFailure

        raise SolverFailure("reference backend: some output rows were not reached")
    return out


def _integrate(J, schedule, t_out, y, out, ends, rtol, atol, method, reached) -> None:
    """Fill ``out`` interval by interval; ``reached[0]`` tracks the progress."""
    for k, (t0, t1) in enumerate(zip(schedule.times, ends)):
        reached[0] = t0
        y = y + schedule.jumps[k]
        last = k == len(ends) - 1
        sel = (t_out >= t0) & ((t_out < t1) | (last & (t_out <= t1)))
        u = schedule.rates[k]
        if not np.any(y) and not np.any(u):
            out[sel] = 0.0
            continue

        def rhs(_t, x, J=J, u=u):
            return J @ x + u

        if t1 <= t0:
            out[sel] = y
            continue
        t_eval, inverse = np.unique(np.append(t_out[sel], t1), return_inverse=True)
        sol = solve_ivp(rhs, (t0, t1), y, method=method, jac=J, rtol=rtol, atol=atol,
                        t_eval=t_eval)
        if not sol.success:  # pragma: no cover - would be a modelling bug
            from csfmodel.solvers import SolverFailure

            raise SolverFailure(f"reference solver failed on [{t0}, {t1}] min: {sol.message}")
        out[sel] = sol.y[:, inverse[:-1]].T
        y = sol.y[:, -1]
