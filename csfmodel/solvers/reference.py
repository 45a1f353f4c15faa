"""Reference backend: scipy's Radau IIA on the sparse matrix.

Accurate to tight tolerances and simple enough to trust; slow. It restarts the
integrator at every dose event (jumps are applied exactly) and integrates the
piecewise-constant input in between. Fast backends are tested against it.

Options (:class:`~csfmodel.solvers.SolverOptions`): ``rtol`` (default 1e-10)
and ``atol`` are scipy's (``atol`` defaults to 1e-13 of the total amount dosed
plus the initial amount, ug); ``method`` is an implicit method of
:func:`scipy.integrate.solve_ivp` (``"Radau"``, default, or ``"BDF"``);
``max_step`` and ``first_step`` are passed on. It has no fixed steps and no
step statistics; batches are a loop over the members.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from csfmodel.model import LinearSystem, Schedule
from csfmodel.solvers._backend import Backend
from csfmodel.solvers._options import SolveInterrupted, SolverFailure, SolverOptions, Stats

__all__ = ["ReferenceBackend", "solve"]


class ReferenceBackend(Backend):
    """scipy ``solve_ivp`` (Radau or BDF), restarted at every dose event."""

    name = "reference"
    methods = ("Radau", "BDF")
    default_method = "Radau"
    default_rtol = 1e-10
    rtol_range = (1e-13, 0.1)

    def _solve(self, system, schedule, t_out, options, y0, sink):
        J = system.to_sparse().tocsc()
        n = system.n_state
        total = schedule.total_dosed()
        y = np.zeros(n) if y0 is None else np.array(y0, float)
        total += np.abs(y).sum()
        atol = options.atol if options.atol is not None else 1e-13 * max(total, 1e-300)
        kw = {}
        if options.max_step is not None:
            kw["max_step"] = options.max_step
        if options.first_step is not None:
            kw["first_step"] = options.first_step
        out = np.full((len(t_out), n), np.nan)
        ends = np.append(schedule.times[1:], schedule.t_end)
        reached = [0.0]  # start of the dose interval being integrated
        try:
            _integrate(J, schedule, t_out, y, out, ends, options.rtol, atol, options.method,
                       reached, kw)
        except KeyboardInterrupt:
            raise SolveInterrupted(out[: int(np.count_nonzero(t_out < reached[0]))]) from None
        if np.isnan(out).any():  # every row is written by one of the intervals
            raise SolverFailure("reference backend: some output rows were not reached")
        return out, Stats()


def _integrate(J, schedule, t_out, y, out, ends, rtol, atol, method, reached, kw) -> None:
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
                        t_eval=t_eval, **kw)
        if not sol.success:  # pragma: no cover - would be a modelling bug
            raise SolverFailure(f"reference solver failed on [{t0}, {t1}] min: {sol.message}")
        out[sel] = sol.y[:, inverse[:-1]].T
        y = sol.y[:, -1]


def solve(system: LinearSystem, schedule: Schedule, t_out: np.ndarray, *,
          rtol: float = 1e-10, y0: np.ndarray | None = None) -> np.ndarray:
    """The reference states as an array (a shorthand for tests and checks).

    The same as ``csfmodel.solvers.solve(system, schedule, t_out,
    SolverOptions(rtol=rtol), backend="reference", y0=y0).states``.
    """
    from csfmodel.solvers._registry import get_backend

    return get_backend("reference").solve(system, schedule, t_out, SolverOptions(rtol=rtol),
                                          y0=y0).states
