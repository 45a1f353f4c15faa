r"""JAX backend: adaptive TR-BDF2 on the structured matrix, jitted and vmappable.

The model is linear, ``dy/dt = J y + u`` between dose events with piecewise
constant ``u`` and jumps at the events (:mod:`csfmodel.model`). This backend
integrates it with TR-BDF2 (Bank et al. 1985; in the form of Hosea & Shampine
1996, Appl. Numer. Math. 20:21): an L-stable, stiffly accurate, second-order
one-step method whose two implicit stages share the matrix ``I - d h J`` with
``d = 1 - 1/sqrt(2)``.

Importing this module enables 64-bit floats in JAX for the whole process
(``jax.config.update("jax_enable_x64", True)``): the mass balance
``dosed = present + eliminated`` must hold to round-off, which float32 cannot
give. ``import csfmodel`` does not import this module; it is loaded the first
time the ``"jax"`` backend is asked for.

Structured solves
-----------------
Each implicit stage solves ``(I - c J) x = r`` (``c = d h``) in O(N + M) work,
using the structure of :class:`~csfmodel.model.LinearSystem`:

1. the cord block is diagonal, so each cord unknown is eliminated into the
   diagonal of its spinal cell, leaving a tridiagonal system, solved with
   :func:`jax.lax.linalg.tridiagonal_solve` (LAPACK ``gtsv`` on CPU, cuSPARSE
   on GPU);
2. the ``m`` well-mixed compartments are a dense border, handled by a Schur
   complement: ``Z = T^{-1} C`` is computed once per step for the border
   columns that are not zero (cisterna and plasma for the built-in model; in
   the same tridiagonal call as the first stage), and the ``m x m`` Schur
   complement is inverted; a stage solve is then one tridiagonal solve and
   small products with the non-zero border rows and columns.

Because every column of ``J`` sums to zero, ``1^T (I - cJ) = 1^T`` and each
stage adds exactly the input integrated over the stage, so the total amount is
conserved to round-off.

Error control
-------------
Adaptive (default): every step carries the embedded third-order error estimate
of Hosea & Shampine, filtered through ``(I - d h J)^{-1}``. A step is accepted
when, for every state, the estimate is at most ``rtol`` times the running peak
of that state's output variable (spinal CSF concentration over z and time,
cord concentration, each compartment's amount) plus ``atol``; the next step is
``h * clip(0.9 * err^(-1/3), 0.2, 5)``. Steps land exactly on dose events and
output times (an output time is a step end, no interpolation). After each
bolus the step is restarted at ``rtol^(1/3)`` times the fastest relative rate
of change, so the transient of a bolus is resolved without rejections. As for
any local error control, the global error of this second-order method scales
like ``rtol^(2/3)``; the default ``rtol = 1e-6`` keeps every reported output
within about 1e-4 of its peak of the reference solution on the test scenarios
(the largest deviation is the cisternal concentration while a lumbar bolus is
still rising towards it).
``adaptive=False`` with ``max_step`` gives fixed steps instead: each interval
between two consecutive dose/output times is cut into the fewest equal steps
not longer than ``max_step`` (used to measure the order of accuracy).

Batches
-------
:func:`solve_batch` ``jax.vmap``\ s the integrator over a leading batch axis
of stacked structured arrays (same grid size, different parameters; each
member with its own dose schedule or a shared one). Each member keeps its own
step sizes, so its result equals its single run; the batch iterates as long as
its slowest member needs between two dose/output times. Time is processed in blocks of
``block_size`` dose/output intervals, one jitted call per block; a Ctrl-C
between blocks raises :class:`~csfmodel.solvers.SolveInterrupted` with the
output rows completed. Compilation is cached per array shape (the number of
schedule rows is rounded up to a power of two so that scenarios of the same
grid share the compiled code; at least 64).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from csfmodel.model import LinearSystem, Schedule

jax.config.update("jax_enable_x64", True)

__all__ = ["solve", "solve_batch", "stack_systems", "DEFAULT_RTOL", "STRUCTURE_FIELDS"]

#: default relative tolerance of the local error per step (of each output
#: variable's running peak); outputs then agree with the reference solver to
#: well within 1e-3 of their peak
DEFAULT_RTOL = 1e-6

#: names of the arrays of :class:`~csfmodel.model.LinearSystem` the backend uses
STRUCTURE_FIELDS = ("lower", "diag", "upper", "cord_diag", "csf_to_cord", "cord_to_csf",
                    "border_rows", "border_cols", "block", "volume")

# TR-BDF2 constants (gamma = 2 - sqrt 2, d = gamma / 2)
_D = 1.0 - 1.0 / math.sqrt(2.0)
_W = math.sqrt(2.0) / 4.0                # weight of f_n and f_{n+gamma}
_E1 = (4.0 * _W - 1.0) / 3.0             # b - b_hat of the embedded 3rd-order pair
_E2 = -1.0 / 3.0
_E3 = 2.0 * _D / 3.0

# --------------------------------------------------------------------------- kernels
# Everything below works on ONE member (unbatched arrays) and is vmapped.

def _sizes(p: dict) -> tuple[int, int, int]:
    n = p["diag"].shape[0]
    M = p["cord_diag"].shape[0]
    m = p["block"].shape[0]
    return n, M, m


def _mv(a: jax.Array, x: jax.Array) -> jax.Array:
    """Small matrix-vector product as a multiply-reduce (XLA fuses it with its neighbours)."""
    return jnp.sum(a * x[None, :], axis=1)


def _idx(t: tuple[int, ...]) -> np.ndarray:
    return np.asarray(t, dtype=np.int64)


def _matvec(p: dict, y: jax.Array, pat: tuple) -> jax.Array:
    """``J @ y`` in O(N + M + (a + r)(N + M)) for ``a`` / ``r`` non-zero border cols/rows."""
    n, M, m = _sizes(p)
    cols, rows = pat
    s = n + M
    ys, yc, yk = y[:n], y[n:s], y[s:]
    zero = jnp.zeros(1, y.dtype)
    out_s = (p["diag"] * ys + jnp.concatenate([zero, p["lower"] * ys[:-1]])
             + jnp.concatenate([p["upper"] * ys[1:], zero]))
    out_s = out_s.at[:M].add(p["cord_to_csf"] * yc)
    out_c = p["cord_diag"] * yc + p["csf_to_cord"] * ys[:M]
    spatial = jnp.concatenate([out_s, out_c])
    if cols:
        spatial = spatial + _mv(p["border_cols"], yk[_idx(cols)])
    comp = _mv(p["block"], yk)
    if rows:
        comp = comp.at[_idx(rows)].add(_mv(p["border_rows"], y[:s]))
    return jnp.concatenate([spatial, comp])


def _tsolve(f: dict, rhs: jax.Array) -> jax.Array:
    """Solve the reduced tridiagonal system for the columns of ``rhs`` (n, k)."""
    return lax.linalg.tridiagonal_solve(f["dl"], f["dd"], f["du"], rhs)


def _reduce(f: dict, r: jax.Array, n: int, M: int) -> tuple[jax.Array, jax.Array]:
    """Eliminate the cord from the right-hand side: ``(q, r_eff)``."""
    q = r[n:n + M] / f["e"]
    return q, r[:n].at[:M].add(f["cout"] * q)


def _finish(f: dict, r: jax.Array, q: jax.Array, a: jax.Array, sizes: tuple[int, int, int],
            pat: tuple) -> jax.Array:
    """Back-substitution once ``a = T^{-1} r_eff`` is known: compartments, spinal, cord."""
    n, M, _ = sizes
    cols, rows = pat
    rhs = r[n + M:]
    if rows:
        rhs = rhs.at[_idx(rows)].add(_mv(f["brc"], q) - _mv(f["rp"], a))
    xc = _mv(f["sinv"], rhs)
    xs, xcord = a, q
    if cols:
        xa = xc[_idx(cols)]
        xs = a + _mv(f["z"], xa)
        xcord = q + _mv(f["bcc"], xa)
    xcord = xcord + f["ge"] * xs[:M]
    return jnp.concatenate([xs, xcord, xc])


def _factor(p: dict, c: jax.Array, pat: tuple, r: jax.Array,
            sizes: tuple[int, int, int]) -> tuple[dict, jax.Array]:
    """Factorize ``I - c J`` (O(N + M) work) and solve it for ``r`` on the way.

    ``pat`` holds the non-zero border columns and rows; ``p["border_cols"]`` and
    ``p["border_rows"]`` hold those only. The tridiagonal solve for the border
    columns (``Z``) and the one for ``r`` are a single call.
    """
    n, M, m = sizes
    cols, rows = pat
    br, bc = p["border_rows"], p["border_cols"]
    e = 1.0 - c * p["cord_diag"]
    ce = c / e
    ge = p["csf_to_cord"] * ce                    # cord unknown per unit spinal unknown
    cout = c * p["cord_to_csf"]
    dd = (1.0 - c * p["diag"]).at[:M].add(-cout * ge)
    zero = jnp.zeros(1, dd.dtype)
    f = {"e": e, "ge": ge, "cout": cout, "dd": dd,
         "dl": jnp.concatenate([zero, -c * p["lower"]]),
         "du": jnp.concatenate([-c * p["upper"], zero]),
         "bcc": ce[:, None] * bc[n:],            # (M, a): cord rows of the border / e
         "brc": c * br[:, n:]}                   # (r, M)
    # compartment rows after eliminating the cord: R' x_s + K' x_c = r_c + brc q
    f["rp"] = (-c * br[:, :n]).at[:, :M].add(-f["brc"] * ge[None, :])
    kp = jnp.eye(m, dtype=dd.dtype) - c * p["block"]
    q, reff = _reduce(f, r, n, M)
    if cols:
        ceff = (c * bc[:n]).at[:M].add(cout[:, None] * f["bcc"])
        sol = _tsolve(f, jnp.concatenate([ceff, reff[:, None]], axis=1))
        f["z"], a = sol[:, :-1], sol[:, -1]     # x_s = T^{-1} r_eff + Z x_c[cols]
        if rows:
            schur = (jnp.sum(f["rp"][:, :, None] * f["z"][None], axis=1)
                     - jnp.sum(f["brc"][:, :, None] * f["bcc"][None], axis=1))
            kp = kp.at[_idx(rows)[:, None], _idx(cols)[None, :]].add(schur)
    else:
        a = _tsolve(f, reff[:, None])[:, 0]
    f["sinv"] = jnp.linalg.inv(kp)              # m x m Schur complement, inverted once
    return f, _finish(f, r, q, a, sizes, pat)


def _solve(f: dict, r: jax.Array, sizes: tuple[int, int, int], pat: tuple) -> jax.Array:
    """Solve ``(I - c J) x = r`` with a factorization from :func:`_factor`."""
    n, M, _ = sizes
    q, reff = _reduce(f, r, n, M)
    a = _tsolve(f, reff[:, None])[:, 0]
    return _finish(f, r, q, a, sizes, pat)


def _tr_bdf2(p: dict, f: dict | None, y: jax.Array, u: jax.Array, h: jax.Array,
             sizes: tuple[int, int, int], pat: tuple, estimate: bool):
    """One TR-BDF2 step of size ``h``; factorizes ``I - d h J`` if ``f`` is None."""
    f0 = _matvec(p, y, pat) + u
    dhu = _D * h * u
    r1 = y + _D * h * f0 + dhu
    if f is None:
        f, z = _factor(p, _D * h, pat, r1, sizes)
    else:
        z = _solve(f, r1, sizes, pat)
    fz = _matvec(p, z, pat) + u
    y1 = _solve(f, y + _W * h * (f0 + fz) + dhu, sizes, pat)
    if not estimate:
        return y1, None
    f1 = _matvec(p, y1, pat) + u
    est = _solve(f, h * (_E1 * f0 + _E2 * fz + _E3 * f1), sizes, pat)
    return y1, est


def _error_scale(peaks: jax.Array, vol: jax.Array, vinv: jax.Array, n: int, M: int
                 ) -> jax.Array:
    """Error scale per state (ug) from the running peak amount of every state.

    A spinal cell's scale is the peak spinal CSF concentration (over z and time)
    times its volume; the same for cord cells; each compartment is scaled by its
    own peak.
    """
    s = n + M
    cs = jnp.max(peaks[:n] * vinv[:n])
    cc = jnp.max(peaks[n:s] * vinv[n:s]) if M else jnp.zeros((), peaks.dtype)
    group = jnp.concatenate([cs * vol[:n], cc * vol[n:s], jnp.zeros_like(peaks[s:])])
    return jnp.maximum(group, peaks)


def _member_block(p, sidx, rtol, atol, max_step, carry, jumps, rates, xs, obs, *,
                  pat, adaptive, max_iter):
    """Integrate one member over a block of intervals; record the state at each start."""
    sizes = _sizes(p)
    n, M, _ = sizes
    vol = p["volume"]
    vinv = jnp.where(vol > 0, 1.0 / jnp.where(vol > 0, vol, 1.0), 0.0)
    cube = rtol ** (1.0 / 3.0)

    def interval(carry, x):
        y, h, peaks, st = carry
        t0, t1, jrow, rrow, restart, nsub = x
        y = y + jumps[sidx, jrow[sidx]]
        u = rates[sidx, rrow[sidx]]
        peaks = jnp.maximum(peaks, jnp.abs(y))
        rec = y if obs is None else obs @ y
        if adaptive:
            # restart the step after a bolus (and at t = 0) from the fastest relative rate
            ref = _error_scale(peaks, vol, vinv, n, M) + atol / rtol
            rate = jnp.max(jnp.abs(_matvec(p, y, pat) + u) / ref)
            h0 = jnp.where(rate > 0, cube / jnp.where(rate > 0, rate, 1.0), jnp.inf)
            h = jnp.where(restart[sidx], jnp.minimum(h, h0), h)
            h = jnp.minimum(h, max_step)
            y, h, peaks, st = _adaptive(p, y, u, t0, t1, h, peaks, st, rtol, atol, max_step,
                                        vol, vinv, sizes, pat, max_iter)
        else:
            y = _fixed(p, y, u, t0, t1, nsub, sizes, pat)
            st = st.at[0].add(jnp.where(t1 > t0, nsub, 0))
            peaks = jnp.maximum(peaks, jnp.abs(y))
        return (y, h, peaks, st), rec

    carry, recs = lax.scan(interval, carry, xs)
    return carry, recs


def _fixed(p, y, u, t0, t1, nsub, sizes, pat):
    """``nsub`` equal steps over ``[t0, t1]`` (one factorization)."""
    h = (t1 - t0) / jnp.maximum(nsub, 1)
    f, _ = _factor(p, _D * h, pat, jnp.zeros_like(y), sizes)

    def body(_, y):
        return _tr_bdf2(p, f, y, u, h, sizes, pat, False)[0]

    return lax.fori_loop(0, jnp.where(t1 > t0, nsub, 0), body, y)


def _adaptive(p, y, u, t0, t1, h, peaks, st, rtol, atol, max_step, vol, vinv, sizes, pat,
              max_iter):
    """Adaptive steps from ``t0`` to exactly ``t1``."""
    n, M, _ = sizes

    def cond(c):
        t, _, _, _, _, it = c
        return (t < t1) & (it < max_iter)

    def body(c):
        t, y, h, peaks, st, it = c
        rem = t1 - t
        last = h * 1.05 >= rem                    # stretch the step onto t1
        hs = jnp.where(last, rem, h)
        y1, est = _tr_bdf2(p, None, y, u, hs, sizes, pat, True)
        scale = rtol * _error_scale(peaks, vol, vinv, n, M) + atol
        err = jnp.max(jnp.abs(est) / scale)
        err = jnp.where(jnp.isfinite(err), err, jnp.inf)
        ok = err <= 1.0
        fac = jnp.clip(0.9 * jnp.where(err > 0, err, 1e-30) ** (-1.0 / 3.0), 0.2, 5.0)
        fac = jnp.where(ok, fac, jnp.minimum(fac, 0.9))
        h_new = hs * fac
        h_new = jnp.where(ok & last, jnp.maximum(h_new, h), h_new)
        h_new = jnp.minimum(h_new, max_step)
        t_new = jnp.where(ok, jnp.where(last, t1, t + hs), t)
        y_new = jnp.where(ok, y1, y)
        peaks_new = jnp.where(ok, jnp.maximum(peaks, jnp.abs(y1)), peaks)
        st_new = jnp.stack([
            st[0] + ok, st[1] + (~ok),
            jnp.where(ok, jnp.maximum(st[2], err), st[2]),
            jnp.where(ok, jnp.minimum(st[3], hs), st[3]),
            jnp.where(ok, jnp.maximum(st[4], hs), st[4]),
            st[5]])
        return t_new, y_new, h_new, peaks_new, st_new, it + 1

    t, y, h, peaks, st, it = lax.while_loop(
        cond, body, (t0, y, h, peaks, st, jnp.zeros((), jnp.int64)))
    st = st.at[5].max(jnp.where(t < t1, 1.0, 0.0))   # failed to reach t1
    return y, h, peaks, st


_COMPILED: dict[tuple, Any] = {}


def _block_function(pat: tuple[tuple[int, ...], tuple[int, ...]], adaptive: bool,
                    max_iter: int, has_obs: bool):
    """The jitted, vmapped block integrator for one static configuration."""
    key = (pat, adaptive, max_iter, has_obs)
    if key not in _COMPILED:
        fn = partial(_member_block, pat=pat, adaptive=adaptive, max_iter=max_iter)
        vm = jax.vmap(fn, in_axes=(0, 0, 0, 0, None, 0, None, None, None, None))
        _COMPILED[key] = jax.jit(vm)
    return _COMPILED[key]


# --------------------------------------------------------------------------- host side

def stack_systems(systems: Sequence[LinearSystem] | LinearSystem | Mapping[str, Any]
                  ) -> dict[str, np.ndarray]:
    """Stack the structured arrays of several systems along a leading batch axis.

    Parameters
    ----------
    systems
        A sequence of :class:`~csfmodel.model.LinearSystem` of the same grid size,
        a single one (a batch of one), or a mapping of already stacked arrays with
        the names of :data:`STRUCTURE_FIELDS`, each with a leading batch axis.

    Returns
    -------
    dict
        ``name -> array (B, ...)`` for every name of :data:`STRUCTURE_FIELDS`.
    """
    if isinstance(systems, LinearSystem):
        systems = [systems]
    if isinstance(systems, Mapping):
        stack = {k: np.asarray(systems[k], float) for k in STRUCTURE_FIELDS}
        if stack["diag"].ndim != 2:
            raise ValueError("stacked arrays need a leading batch axis")
    else:
        systems = list(systems)
        if not systems:
            raise ValueError("no systems to solve")
        shapes = {(s.n_spinal, s.n_cord, s.n_state) for s in systems}
        if len(shapes) > 1:
            raise ValueError("all systems of a batch must have the same grid size")
        stack = {k: np.stack([np.asarray(getattr(s, k), float) for s in systems])
                 for k in STRUCTURE_FIELDS}
    B, n = stack["diag"].shape
    M = stack["cord_diag"].shape[1]
    m = stack["block"].shape[1]
    expect = {"lower": (n - 1,), "upper": (n - 1,), "csf_to_cord": (M,), "cord_to_csf": (M,),
              "border_rows": (m, n + M), "border_cols": (n + M, m), "block": (m, m),
              "volume": (n + M + m,)}
    for k, shape in expect.items():
        if stack[k].shape != (B, *shape):
            raise ValueError(f"{k} has shape {stack[k].shape[1:]}, expected {shape}")
    return stack


def _tables(schedules: list[Schedule], bp: np.ndarray, n_state: int):
    """Jump/rate tables per schedule and their row index at each breakpoint."""
    S, P = len(schedules), len(bp)
    k_max = max(len(s.times) for s in schedules) + 1       # + a row of zeros
    k_pad = max(64, 1 << (k_max - 1).bit_length())        # share compiled code
    jumps = np.zeros((S, k_pad, n_state))
    rates = np.zeros((S, k_pad, n_state))
    jrow = np.full((P, S), k_pad - 1, np.int32)            # the last row is zero
    rrow = np.full((P, S), k_pad - 1, np.int32)
    restart = np.zeros((P, S), bool)
    restart[0] = True
    for i, s in enumerate(schedules):
        times = np.asarray(s.times, float)
        if s.jumps.shape != (len(times), n_state) or s.rates.shape != (len(times), n_state):
            raise ValueError("schedule arrays do not match the state size of the system")
        if len(times) and (np.any(np.diff(times) <= 0) or times[0] < 0):
            raise ValueError("schedule times must be increasing and non-negative")
        K = len(times)
        jumps[i, :K] = s.jumps
        rates[i, :K] = s.rates
        k = np.searchsorted(times, bp, side="right") - 1
        at = (k >= 0) & (times[np.maximum(k, 0)] == bp) if K else np.zeros(P, bool)
        nonzero = np.any(s.jumps != 0.0, axis=1) if K else np.zeros(0, bool)
        jrow[at, i] = k[at]
        restart[at, i] |= nonzero[k[at]]
        rrow[k >= 0, i] = k[k >= 0]
    return jumps, rates, jrow, rrow, restart


def _as_observables(observables, n_state: int) -> np.ndarray | None:
    if observables is None:
        return None
    if isinstance(observables, tuple) and len(observables) == 3:   # CSR (ptr, idx, weights)
        ptr, idx, w = (np.asarray(a) for a in observables)
        dense = np.zeros((len(ptr) - 1, n_state))
        for r in range(len(ptr) - 1):
            np.add.at(dense[r], idx[ptr[r]:ptr[r + 1]], w[ptr[r]:ptr[r + 1]])
        return dense
    dense = np.asarray(observables, float)
    if dense.ndim != 2 or dense.shape[1] != n_state:
        raise ValueError(f"observables must be a (n_obs, {n_state}) matrix")
    return dense


def _check_options(rtol: np.ndarray, max_step: float | None, adaptive: bool) -> None:
    from csfmodel.errors import ScenarioError

    for r in rtol:
        if not (np.isfinite(r) and 1e-12 <= r <= 1e-1):
            raise ScenarioError("rtol", float(r), "a relative tolerance between 1e-12 and 0.1")
    if max_step is not None and not (max_step > 0):
        raise ScenarioError("max_step", max_step, "a positive step in min")
    if not adaptive and max_step is None:
        raise ValueError("adaptive=False needs max_step")


def solve_batch(systems: Sequence[LinearSystem] | LinearSystem | Mapping[str, Any],
                schedules: Sequence[Schedule] | Schedule, t_out: np.ndarray, *,
                schedule_index: np.ndarray | None = None,
                observables: np.ndarray | tuple | None = None,
                rtol: float | np.ndarray = DEFAULT_RTOL, atol: float | np.ndarray | None = None,
                adaptive: bool = True, max_step: float | None = None,
                first_step: float | None = None, y0: np.ndarray | None = None,
                batch_size: int | None = None, block_size: int = 128,
                max_steps_per_interval: int = 100_000, stats: list | None = None
                ) -> np.ndarray:
    """Solve many parameter sets of the same grid size at once (``jax.vmap``).

    Parameters
    ----------
    systems
        ``B`` linear systems of the same grid size, or their arrays already
        stacked along a leading batch axis (see :func:`stack_systems`).
    schedules
        One dose schedule shared by the batch, or several: member ``b`` uses
        ``schedules[schedule_index[b]]`` (default: one schedule per member when
        there are ``B`` of them). All must end at the same ``t_end``.
    t_out
        Output times (min), non-decreasing, within ``[0, t_end]``; shared.
    schedule_index
        Schedule of each member, shape ``(B,)``.
    observables
        What to store at each output time: a ``(n_obs, n_state)`` matrix applied
        to the state, or CSR rows ``(ptr, idx, weights)``; default the full state.
        Reduces memory for large sweeps.
    rtol
        Local error tolerance per step, relative to the running peak of each
        output variable; scalar or one per member.
    atol
        Absolute floor of the error scale (ug); default ``1e-4 * rtol`` times the
        total amount dosed to the member.
    adaptive
        ``False`` disables error control: fixed steps, the fewest equal steps
        not longer than ``max_step`` between consecutive dose/output times.
    max_step
        Largest step (min); required when ``adaptive`` is ``False``.
    first_step
        Largest first step (min); the first step is also limited by the initial
        rate of change, as after every bolus.
    y0
        Initial state (ug), ``(n_state,)`` or ``(B, n_state)``; zeros by default.
    batch_size
        Members integrated together per call (default: all); bounds the memory.
    block_size
        Dose/output intervals per jitted call.
    max_steps_per_interval
        Step attempts allowed between two consecutive dose/output times before
        the solve is declared failed.
    stats
        If a list is given, one dict per member is appended: ``steps``,
        ``rejected``, ``max_error_estimate`` (largest accepted scaled error,
        ≤ 1), ``min_step_min``, ``max_step_min``.

    Returns
    -------
    numpy.ndarray
        ``(B, len(t_out), n_state or n_obs)``: amounts (ug) or observables.

    Raises
    ------
    SolveInterrupted
        On Ctrl-C, with the output rows completed (``(B, k, ...)``) when the
        batch is integrated in one piece; otherwise ``KeyboardInterrupt``.
    """
    stack = stack_systems(systems)
    B, n = stack["diag"].shape
    M = stack["cord_diag"].shape[1]
    m = stack["block"].shape[1]
    n_state = n + M + m
    if isinstance(schedules, Schedule):
        schedules = [schedules]
    schedules = list(schedules)
    if schedule_index is None:
        schedule_index = np.arange(B) if len(schedules) == B else np.zeros(B, np.int64)
    sidx = np.asarray(schedule_index, np.int32)
    if sidx.shape != (B,) or sidx.min() < 0 or sidx.max() >= len(schedules):
        raise ValueError("schedule_index must give a schedule for each system")
    t_end = float(schedules[0].t_end)
    if any(float(s.t_end) != t_end for s in schedules):
        raise ValueError("all schedules of a batch must end at the same t_end")
    rt = np.broadcast_to(np.asarray(rtol, float), (B,)).copy()
    _check_options(rt, max_step, adaptive)
    from csfmodel.errors import ScenarioError
    from csfmodel.solvers import SolverFailure, check_batch_inputs

    t_out = check_batch_inputs(stack, schedules, t_out)
    if y0 is not None and not np.all(np.isfinite(np.asarray(y0, float))):
        raise ScenarioError("y0", "non-finite entries", "a finite initial state (ug)")

    # breakpoints: every dose event and output time; one record per breakpoint
    bp = np.unique(np.concatenate([*(s.times for s in schedules), t_out, [0.0, t_end]]))
    bp = bp[(bp >= 0) & (bp <= t_end)]
    P = len(bp)
    jumps, rates, jrow, rrow, restart = _tables(schedules, bp, n_state)
    L = int(block_size)
    Q = -(-P // L) * L                                      # >= P intervals incl. padding
    t0 = np.full(Q, t_end)
    t1 = np.full(Q, t_end)
    t0[:P - 1], t1[:P - 1] = bp[:-1], bp[1:]
    zero_row = jumps.shape[1] - 1
    jr = np.full((Q, len(schedules)), zero_row, np.int32)
    rr = np.full((Q, len(schedules)), zero_row, np.int32)
    rs = np.zeros((Q, len(schedules)), bool)
    jr[:P - 1], rr[:P - 1], rs[:P - 1] = jrow[:-1], rrow[:-1], restart[:-1]
    nsub = np.zeros(Q, np.int32)
    if not adaptive:
        nsub[:P - 1] = np.maximum(np.ceil((t1[:P - 1] - t0[:P - 1]) / max_step - 1e-9), 1)

    if y0 is None:
        y_init = np.zeros((B, n_state))
    else:
        y_init = np.broadcast_to(np.asarray(y0, float), (B, n_state)).copy()
    if atol is None:
        totals = np.array([s.total_dosed() for s in schedules])[sidx] + np.abs(y_init).sum(1)
        at = np.maximum(1e-4 * rt * totals, 1e-300)
    else:
        at = np.broadcast_to(np.asarray(atol, float), (B,)).copy()
    obs = _as_observables(observables, n_state)
    # static sparsity of the border (union over the batch): non-zero columns and rows
    cols = tuple(int(k) for k in np.flatnonzero(np.any(stack["border_cols"] != 0, axis=(0, 1))))
    rows = tuple(int(k) for k in np.flatnonzero(np.any(stack["border_rows"] != 0, axis=(0, 2))))
    stack = dict(stack, border_rows=stack["border_rows"][:, list(rows)],
                 border_cols=stack["border_cols"][:, :, list(cols)])
    fn = _block_function((cols, rows), bool(adaptive), int(max_steps_per_interval),
                         obs is not None)
    ms = float(np.inf if max_step is None else max_step)

    out_rows = np.searchsorted(bp, t_out)
    size = B if batch_size is None else max(1, min(int(batch_size), B))
    jumps_d, rates_d = jnp.asarray(jumps), jnp.asarray(rates)
    obs_d = None if obs is None else jnp.asarray(obs)
    xs_blocks = [tuple(jnp.asarray(a[i:i + L]) for a in (t0, t1, jr, rr, rs, nsub))
                 for i in range(0, Q, L)]
    results, all_stats = [], []
    for start in range(0, B, size):
        sel = np.arange(start, start + size)
        sel = np.minimum(sel, B - 1)                          # pad the last chunk
        par = {k: jnp.asarray(v[sel]) for k, v in stack.items()}
        carry = (jnp.asarray(y_init[sel]),
                 jnp.full(size, np.inf if first_step is None else float(first_step)),
                 jnp.zeros((size, n_state)),
                 jnp.tile(jnp.asarray([0.0, 0.0, 0.0, np.inf, 0.0, 0.0]), (size, 1)))
        recs = []
        try:
            for xs in xs_blocks:
                carry, rec = fn(par, jnp.asarray(sidx[sel]), jnp.asarray(rt[sel]),
                                jnp.asarray(at[sel]), ms, carry, jumps_d, rates_d, xs, obs_d)
                recs.append(np.asarray(rec))
        except KeyboardInterrupt:
            from csfmodel.solvers import SolveInterrupted

            if size != B:
                raise
            n_obs = n_state if obs is None else obs.shape[0]
            done = np.concatenate(recs, axis=1) if recs else np.zeros((B, 0, n_obs))
            rows = out_rows[out_rows < done.shape[1]]
            raise SolveInterrupted(done[:, rows]) from None
        rec = np.concatenate(recs, axis=1)
        n_keep = min(size, B - start)
        results.append(rec[:n_keep][:, out_rows])
        all_stats.append(np.asarray(carry[3])[:n_keep])
    out = np.concatenate(results, axis=0)
    st = np.concatenate(all_stats, axis=0)
    if np.any(st[:, 5] > 0):
        bad = np.flatnonzero(st[:, 5] > 0).tolist()
        raise SolverFailure(f"jax backend: members {bad} took more than "
                           f"{max_steps_per_interval} step attempts between two output/dose "
                           "times (raise max_steps_per_interval or rtol)")
    if not np.all(np.isfinite(out)):
        raise SolverFailure("jax backend produced non-finite values")
    if stats is not None:
        for row in st:
            stats.append({"steps": int(row[0]), "rejected": int(row[1]),
                          "max_error_estimate": float(row[2]),
                          "min_step_min": float(row[3]) if adaptive else float("nan"),
                          "max_step_min": float(row[4]) if adaptive else float("nan")})
    return out


def solve(system: LinearSystem, schedule: Schedule, t_out: np.ndarray, *,
          rtol: float = DEFAULT_RTOL, atol: float | None = None, adaptive: bool = True,
          max_step: float | None = None, first_step: float | None = None,
          y0: np.ndarray | None = None, block_size: int = 128,
          max_steps_per_interval: int = 100_000, stats: dict | None = None) -> np.ndarray:
    """Integrate ``dy/dt = J y + u`` with jumps; return states at ``t_out`` (min).

    Parameters
    ----------
    system, schedule
        Arrays from :func:`csfmodel.model.build_model` and
        :func:`csfmodel.model.build_schedule`.
    t_out
        Output times (min), non-decreasing, within ``[0, schedule.t_end]``.
    rtol
        Local error tolerance per step, relative to the running peak of each
        output variable (spinal CSF concentration, cord concentration, each
        compartment).
    atol
        Absolute floor of the error scale (ug); default ``1e-4 * rtol`` times the
        total amount dosed.
    adaptive
        ``False`` disables error control (fixed steps of at most ``max_step``
        between consecutive dose/output times; for convergence studies).
    max_step
        Largest step (min); default unlimited.
    first_step
        Largest first step (min); the first step is also limited by the initial
        rate of change, as after every bolus.
    y0
        Initial state (amounts, ug); zeros by default.
    block_size
        Dose/output intervals per jitted call (a Ctrl-C is honoured between calls).
    max_steps_per_interval
        Step attempts allowed between two consecutive dose/output times.
    stats
        If a dict is given, it is filled with ``steps``, ``rejected``,
        ``max_error_estimate`` (largest accepted scaled error, ≤ 1),
        ``min_step_min`` and ``max_step_min``.

    Returns
    -------
    numpy.ndarray
        States (ug), shape ``(len(t_out), n_state)``.
    """
    from csfmodel.solvers import SolveInterrupted

    st: list = []
    try:
        out = solve_batch([system], [schedule], t_out, rtol=rtol, atol=atol, adaptive=adaptive,
                          max_step=max_step, first_step=first_step, y0=y0,
                          block_size=block_size,
                          max_steps_per_interval=max_steps_per_interval, stats=st)
    except SolveInterrupted as exc:
        raise SolveInterrupted(exc.states[0]) from None
    if stats is not None:
        stats.update(st[0])
    return out[0]
