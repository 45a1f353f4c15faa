r"""Steady states computed directly, by solving linear systems.

Between dose events the model is :math:`dy/dt = J y + u` (see
:mod:`csfmodel.model`). The last state, ``eliminated``, only accumulates, so
the *conserved subsystem* — every other state, with matrix :math:`J_c` — is
what reaches a steady state. Every drug molecule eventually leaves it, so
:math:`J_c` is non-singular.

Plateau of a constant input
    :math:`J_c\,y_{ss} = -u_c`, one sparse LU solve (:func:`plateau`).

Periodic steady state of a periodic regimen (period :math:`T`)
    With :math:`\Phi = e^{J_c T}` and :math:`r` the state reached at
    :math:`T^-` from zero by one period of doses,
    :math:`y(0^-) = \Phi\,y(0^-) + r`, i.e. :math:`(I-\Phi)\,y_0 = r`
    (:func:`periodic_steady_state`). The propagators are exact for
    piecewise-constant inputs: over a step :math:`h`,
    :math:`y \to e^{J_c h} y + J_c^{-1}(e^{J_c h} - I)\,u`.
    Nothing is integrated for weeks.

A useful identity (tested): the period average of the periodic steady state
equals the plateau of the *average* input, :math:`\bar y = -J_c^{-1}\bar u`,
because integrating the ODE over one period at steady state gives
:math:`0 = J_c \int y\,dt + \int u\,dt`.

All amounts are in ug, rates in ug/min, times in min (internal units).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from csfmodel.model import Model, Schedule, _hat_weights

__all__ = [
    "input_vector",
    "plateau",
    "periodic_steady_state",
    "PeriodicSteadyState",
    "conserved_matrix",
]


def conserved_matrix(model: Model):
    """``J`` restricted to the conserved states (all but ``eliminated``), scipy CSC."""
    J = model.system.to_sparse().tocsc()
    k = model.system.index("eliminated")
    keep = np.ones(model.system.n_state, bool)
    keep[k] = False
    return J[keep][:, keep].tocsc(), keep


def input_vector(model: Model, route: str, rate: float, site_z: float | None = None
                 ) -> np.ndarray:
    """Constant input ``u`` (ug/min per state) of an infusion.

    Parameters
    ----------
    model
        The assembled model.
    route
        ``"intrathecal"`` (into the spinal CSF at ``site_z``, cm), ``"iv"``
        (into plasma), or ``"oral_immediate"`` / ``"oral_controlled"`` (into
        the gut depot: a continuous stand-in for frequent oral doses).
    rate
        Input rate, ug/min.
    site_z
        Catheter tip, cm from the foramen magnum (intrathecal only).
    """
    u = np.zeros(model.system.n_state)
    if route == "intrathecal":
        if site_z is None:
            raise ValueError("an intrathecal input needs site_z (cm)")
        idx, w = _hat_weights(model.grid, float(site_z))
        u[idx] += rate * w
    elif route == "iv":
        u[model.system.index("plasma")] = rate
    elif route == "oral_immediate":
        u[model.system.index("gut_ir")] = rate
    elif route == "oral_controlled":
        u[model.system.index("gut_cr")] = rate
    else:
        raise ValueError(f"unknown route {route!r}")
    return u


def plateau(model: Model, u: np.ndarray) -> np.ndarray:
    """Steady state (amounts, ug) of a constant input ``u`` (ug/min), by one sparse solve.

    Several inputs may be passed at once as the columns of a 2-D ``u`` of shape
    ``(n_state, k)``. The ``eliminated`` entry of the result is 0 (it grows
    without bound at rate ``u.sum()``).
    """
    from scipy.sparse.linalg import splu

    Jc, keep = conserved_matrix(model)
    u = np.asarray(u, float)
    lu = splu(Jc)
    y = np.zeros(u.shape)
    y[keep] = lu.solve(-u[keep])
    return y


@dataclass(frozen=True)
class PeriodicSteadyState:
    """One period of a periodic steady state.

    Attributes
    ----------
    times
        Output times within the period, min, ``0 … period`` inclusive.
    states
        Amounts (ug) at ``times``; a time that coincides with a dose is taken
        just after it, so ``states[0]`` is the state right after the doses at
        ``t = 0`` and ``states[-1]`` the state just before the next ones.
    period
        The period, min.
    mean
        Exact period average of the state (ug), from the mean input.
    """

    times: np.ndarray
    states: np.ndarray
    period: float
    mean: np.ndarray


def _propagators(Jd: np.ndarray, h: float, cache: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(exp(J h), J^{-1}(exp(J h) - I))`` for a dense ``J``, cached by ``h``."""
    key = round(h, 9)
    if key not in cache:
        from scipy.linalg import expm, lu_factor, lu_solve

        E = expm(Jd * h)
        if "lu" not in cache:
            cache["lu"] = lu_factor(Jd)
        G = lu_solve(cache["lu"], E - np.eye(len(Jd)))
        cache[key] = (E, G)
    return cache[key]


def periodic_steady_state(model: Model, schedule: Schedule, n_out: int = 145
                          ) -> PeriodicSteadyState:
    """Periodic steady state of the doses of one period, by a linear solve.

    Parameters
    ----------
    model
        The assembled model.
    schedule
        The doses of **one** period, ``schedule.t_end`` being the period (build
        it with :func:`csfmodel.model.build_schedule` from events expanded over
        one period, e.g. one oral dose at ``t = 0`` with ``t_end = 720`` min for
        a 12-hourly regimen).
    n_out
        Number of equally spaced output times over ``[0, period]``.

    Returns
    -------
    PeriodicSteadyState
    """
    T = float(schedule.t_end)
    Jc, keep = conserved_matrix(model)
    Jd = Jc.toarray()
    nc = Jd.shape[0]
    t_grid = np.linspace(0.0, T, int(n_out))
    # every breakpoint: outputs and schedule changes
    brk = np.unique(np.concatenate([t_grid, schedule.times, [T]]))
    cache: dict = {}

    def sweep(y0: np.ndarray, record: bool) -> tuple[np.ndarray, np.ndarray | None]:
        y = y0.copy()
        out = np.zeros((len(t_grid), nc)) if record else None
        k_sched = 0
        for a, b in zip(brk[:-1], np.append(brk[1:], np.nan)):
            # jumps at a
            while k_sched < len(schedule.times) and schedule.times[k_sched] <= a + 1e-9:
                if abs(schedule.times[k_sched] - a) <= 1e-9:
                    y = y + schedule.jumps[k_sched][keep]
                k_sched += 1
            if record:
                hit = np.isclose(t_grid, a, rtol=0, atol=1e-9)
                out[hit] = y
            if np.isnan(b):
                break
            k = int(np.searchsorted(schedule.times, a, side="right") - 1)
            u = schedule.rates[k][keep] if k >= 0 else np.zeros(nc)
            E, G = _propagators(Jd, b - a, cache)
            y = E @ y + G @ u
        if record:
            out[-1] = y
        return y, out

    # response from zero over one period, and the monodromy matrix Phi
    r, _ = sweep(np.zeros(nc), record=False)
    steps = np.diff(brk)
    if np.allclose(steps, steps[0], rtol=1e-12, atol=1e-9):
        # uniform steps: Phi = E_h^n by repeated squaring (cheaper than a second expm)
        phi = np.linalg.matrix_power(_propagators(Jd, steps[0], cache)[0], len(steps))
    else:
        from scipy.linalg import expm

        phi = expm(Jd * T)
    y0 = np.linalg.solve(np.eye(nc) - phi, r)
    _, states_c = sweep(y0, record=True)
    # before the doses at T the state equals y0 (periodicity)
    states_c[-1] = y0
    states = np.zeros((len(t_grid), model.system.n_state))
    states[:, keep] = states_c
    # exact period mean from the mean input
    durations = np.diff(np.append(schedule.times, T))
    mean_u = (schedule.jumps.sum(axis=0) + durations @ schedule.rates) / T
    mean = plateau(model, mean_u)
    return PeriodicSteadyState(times=t_grid, states=states, period=T, mean=mean)
