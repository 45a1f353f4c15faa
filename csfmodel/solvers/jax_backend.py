r"""JAX backend: adaptive ESDIRK on the structured matrix, jitted, batches vmapped.

Longer than 400 lines: the structured solves and the stepper have to be one jitted unit.

The model is linear, ``dy/dt = J y + u`` between dose events with piecewise
constant ``u`` and jumps at the events (:mod:`csfmodel.model`). This backend
integrates it with a stiffly accurate, L-stable ESDIRK method, any tableau of
:mod:`csfmodel.solvers._tableaus`: ESDIRK3(2)4L[2]SA (default, as numba's;
third order, three implicit stages) or TR-BDF2 (second order, two implicit
stages); the implicit stages of a step share the matrix ``I - gamma h J``.

Importing this module enables 64-bit floats in JAX for the whole process
(``jax.config.update("jax_enable_x64", True)``): the mass balance
``dosed = present + eliminated`` must hold to round-off, which float32 cannot
give. ``import csfmodel`` does not import this module; it is loaded the first
time the ``"jax"`` backend is asked for.

Structured solves
-----------------
Each implicit stage solves ``(I - c J) x = r`` (``c = gamma h``) in O(N + M)
work, using the structure of :class:`~csfmodel.model.LinearSystem` (the same
algebra as the numba kernels, in ``jax.lax`` idiom; both are tested against a
dense solve):

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

Error control and dense output
------------------------------
Adaptive (default): every step carries the embedded error estimate of the
tableau, filtered through ``(I - gamma h J)^{-1}``. A step is accepted when,
for every state, the estimate is at most ``rtol`` times the running peak of
that state's output variable (spinal CSF concentration over z and time, cord
concentration, each compartment's amount) plus ``atol``; the next step is
``h * clip(0.9 * err^(-1/3), 0.2, 5)``. Steps land exactly on dose events and
span output times, as the numba backend's do: an output time inside a step is
filled by cubic Hermite interpolation from the values and derivatives at both
ends (so the step count does not grow with the number of outputs; a GPU batch
is not held back by it). After every change of the inputs (a bolus, a new
infusion rate, and at t = 0) the step restarts at ``rtol^(1/3)`` times the
fastest relative rate of change, and for the steps right after it the
interpolant is compared with the first implicit stage (as in numba:
:data:`~csfmodel.solvers._tableaus.INTERP_SLACK`,
:data:`~csfmodel.solvers._tableaus.INTERP_WINDOW`), so a step that damps a
transient correctly at its end but would interpolate it badly is rejected.
The defaults, ``esdirk3`` at ``rtol = 1e-5``, keep every reported output
within about 1e-4 of its peak of the reference solution on the example and
test scenarios, with as many steps as the numba backend: on the 7-day
benchmark (5 mm, outputs every 5 min) 1555 steps and 9e-5 of the peak (numba:
1425 steps, 1.4e-4; ``trbdf2`` at ``rtol = 1e-6``, the former default, 6298
steps and 2.6e-5, and 7301 steps when its steps still ended on every output
time).
``adaptive=False`` with ``max_step`` gives fixed steps instead: each interval
between two dose events is cut into the fewest equal steps not longer than
``max_step`` (used to measure the order of accuracy).

Batches
-------
:meth:`JaxBackend.solve_batch` ``jax.vmap``\ s the integrator over a leading
batch axis of stacked structured arrays (same grid size, different parameters;
each member with its own dose schedule or a shared one). Each member keeps its
own step sizes, so its result equals its single run; each iteration of the
vmapped loop takes one step attempt of every member. Output rows are produced
in blocks of ``block_size``, one jitted call per block; the integrator state
(including the last step's interpolation data) is carried from one block to
the next, so the result does not depend on the block size, and a Ctrl-C
between blocks raises :class:`~csfmodel.solvers.SolveInterrupted` with the
rows completed. Compilation is cached per array shape (the number of schedule
rows is rounded up to a power of two, at least 64, so that scenarios of the
same grid share the compiled code).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from csfmodel.solvers._backend import Backend
from csfmodel.solvers._options import SolveInterrupted, SolverFailure, Stats
from csfmodel.solvers._prepare import atol_floor, prepare_batch, summarize
from csfmodel.solvers._tableaus import INTERP_SLACK, INTERP_WINDOW, METHODS, TABLEAUS

jax.config.update("jax_enable_x64", True)

__all__ = ["JaxBackend", "DEFAULT_RTOL"]

#: default relative tolerance of the local error per step (of each output
#: variable's running peak); with the default method (esdirk3) outputs agree with
#: the reference solver to about 1e-4 of their peak
DEFAULT_RTOL = 1e-5

#: a rejected step below this fraction of the span to the next event means the error
#: control cannot be met (non-finite values): the member gives up and says so
H_MIN_FRACTION = 2.0 ** -52

#: entries of a member's statistics vector: Stats.VECTOR, then a failure flag
_N_STATS = 7

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


def _esdirk_step(p: dict, f0: jax.Array, y: jax.Array, u: jax.Array, h: jax.Array,
                 sizes: tuple[int, int, int], pat: tuple, tab: tuple, estimate: bool):
    """One step of size ``h`` of the ESDIRK tableau ``tab`` = ``(gamma, A, b - b_hat)``
    (static Python floats) from ``y`` with ``f0 = J y + u``.

    Stage ``i`` solves ``(I - gamma h J) Y_i = y + h sum_{j<i} a_ij F_j + gamma h u``
    with ``F_j = J Y_j + u`` (one factorization for all stages); the last stage is
    the new state (stiffly accurate). Returns ``(y1, f1, Y_1, est)``: the new state,
    ``J y1 + u``, the first implicit stage (for the dense-output check) and the
    filtered local error estimate (``None`` unless ``estimate``).
    """
    gamma, A, e = tab
    F = [f0]
    gu = gamma * h * u
    Y = first = y
    f = None
    for i in range(1, len(A)):
        r = y
        for j in range(i):
            if A[i][j] != 0.0:
                r = r + A[i][j] * h * F[j]
        r = r + gu
        if f is None:
            f, Y = _factor(p, gamma * h, pat, r, sizes)
            first = Y
        else:
            Y = _solve(f, r, sizes, pat)
        F.append(_matvec(p, Y, pat) + u)
    if not estimate:
        return Y, F[-1], first, None
    acc = e[0] * F[0]
    for j in range(1, len(e)):
        acc = acc + e[j] * F[j]
    est = _solve(f, h * acc, sizes, pat)
    return Y, F[-1], first, est


def _hermite(th, h, y0, y1, f0, f1):
    """Cubic Hermite interpolant at ``t0 + th h`` from values and slopes at both ends."""
    d = y1 - y0
    return y0 + th * d + th * (th - 1.0) * ((1.0 - 2.0 * th) * d + (th - 1.0) * h * f0
                                           + th * h * f1)


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



def _member_block(p, sidx, rtol, atol, carry, obs, ev_times, jumps, rates, t_end, t_blk, r0,
                  n_rows, max_step, *, pat, adaptive, max_iter, tab, block):
    """Integrate one member until the output rows ``r0 .. r0 + n_rows - 1`` are filled.

    ``t_blk`` holds those rows' output times (``block + 1`` entries, ``inf`` beyond
    ``n_rows``); ``ev_times``, ``jumps``, ``rates`` and ``t_end`` are the schedule
    tables of every schedule (``inf``/zero padded); ``carry`` is the integrator
    state from the previous block. Returns the new carry and the rows
    ``(block, n_rec)`` (states, or ``obs @ state``; NaN where not reached).

    Each iteration (i) writes the rows that fall inside the last accepted step
    (cubic Hermite), (ii) applies the dose event due at ``t``, (iii) writes the
    rows at ``t`` itself (after the jump), (iv) attempts one step, ending on the
    next dose event at the latest.
    """
    sizes = _sizes(p)
    n, M, _ = sizes
    vol = p["volume"]
    vinv = jnp.where(vol > 0, 1.0 / jnp.where(vol > 0, vol, 1.0), 0.0)
    cube = rtol ** (1.0 / 3.0)
    c1 = tab[1][1][0] + tab[1][1][1]               # abscissa of the first implicit stage
    te = t_end[sidx]
    r_stop = r0 + n_rows
    n_rec = carry["y"].shape[0] if obs is None else obs.shape[0]
    buf = jnp.full((block, n_rec), jnp.nan, dtype=carry["y"].dtype)

    def record(v):
        return v if obs is None else obs @ v

    def t_row(io):
        return t_blk[io - r0]

    def next_event(c):
        return ev_times[sidx, c["ke"]]

    def emit_interpolated(s):
        def cond(s):
            c, _ = s
            return (c["io"] < r_stop) & (t_row(c["io"]) < c["t"])

        def body(s):
            c, buf = s
            io = c["io"]
            th = (t_row(io) - c["tp"]) / c["hp"]
            v = _hermite(th, c["hp"], c["ya"], c["yb"], c["fa"], c["fb"])
            return dict(c, io=io + 1), buf.at[io - r0].set(record(v))

        return lax.while_loop(cond, body, s)

    def apply_event(c):
        k = c["ke"]
        due = next_event(c) <= c["t"]
        jrow, rrow = jumps[sidx, k], rates[sidx, k]
        changed = due & (jnp.any(jrow != 0.0) | jnp.any(rrow != c["u"]))
        y = jnp.where(due, c["y"] + jrow, c["y"])
        return dict(c, y=y, u=jnp.where(due, rrow, c["u"]), ke=k + due.astype(k.dtype),
                    peaks=jnp.where(due, jnp.maximum(c["peaks"], jnp.abs(y)), c["peaks"]),
                    restart=c["restart"] | changed)

    def emit_exact(s):
        def cond(s):
            c, _ = s
            return (c["io"] < r_stop) & (t_row(c["io"]) <= c["t"]) & (next_event(c) > c["t"])

        def body(s):
            c, buf = s
            return dict(c, io=c["io"] + 1), buf.at[c["io"] - r0].set(record(c["y"]))

        return lax.while_loop(cond, body, s)

    def step(c):
        t, y, u, h = c["t"], c["y"], c["u"], c["h"]
        stop = jnp.minimum(next_event(c), te)
        can = (c["io"] < r_stop) & (t < stop)
        rem = stop - t
        f0 = _matvec(p, y, pat) + u
        restart = c["restart"]
        if adaptive:
            # after an input change (and at t = 0): restart from the fastest relative rate
            ref = _error_scale(c["peaks"], vol, vinv, n, M) + atol / rtol
            rate = jnp.max(jnp.abs(f0) / ref)
            h0 = jnp.where(rate > 0, cube / jnp.where(rate > 0, rate, 1.0), jnp.inf)
            h = jnp.minimum(jnp.where(restart, jnp.minimum(h, h0), h), max_step)
            last = h * 1.05 >= rem                     # stretch the step onto the event
            hs = jnp.where(last, rem, h)
        else:
            nleft = jnp.maximum(jnp.ceil(rem / max_step - 1e-9), 1.0)
            last = nleft <= 1.0
            hs = jnp.where(last, rem, rem / nleft)
        hs = jnp.where(can & (hs > 0), hs, 1.0)
        t_event = jnp.where(restart, t, c["t_event"])
        y1, f1, first, est = _esdirk_step(p, f0, y, u, hs, sizes, pat, tab, adaptive)
        t_new = jnp.where(last, stop, t + hs)
        if adaptive:
            scale = _error_scale(c["peaks"], vol, vinv, n, M)
            err = jnp.max(jnp.abs(est) / (rtol * scale + atol))
            # dense output right after an input change: the interpolant must agree with
            # the first implicit stage when an output time falls inside the step
            io = c["io"]
            check = (t - t_event < INTERP_WINDOW * hs) & (io < r_stop) & (t_row(io) < t_new)
            gap = _hermite(c1, hs, y, y1, f0, f1) - first
            e_i = jnp.max(jnp.abs(gap) / (INTERP_SLACK * rtol * scale + atol))
            err = jnp.where(check, jnp.maximum(err, e_i), err)
            finite = jnp.isfinite(err)
            ok = finite & (err <= 1.0)
            fac = jnp.clip(0.9 * jnp.where(err > 0, err, 1e-30) ** (-1.0 / 3.0), 0.2, 5.0)
            fac = jnp.where(ok, fac, jnp.minimum(fac, 0.9))
            h_new = hs * fac
            h_new = jnp.where(ok & last, jnp.maximum(h_new, h), h_new)
            h_new = jnp.minimum(h_new, max_step)
            failed = ~ok & (~finite | (hs <= H_MIN_FRACTION * rem))
        else:
            err = jnp.zeros((), y.dtype)
            ok = jnp.all(jnp.isfinite(y1))
            h_new = h
            failed = ~ok
        acc = can & ok
        rej = can & ~ok
        st = c["st"]
        st = jnp.stack([
            st[0] + acc, st[1] + rej, st[2] + can,
            jnp.where(acc, jnp.maximum(st[3], err), st[3]),
            jnp.where(acc, jnp.minimum(st[4], hs), st[4]),
            jnp.where(acc, jnp.maximum(st[5], hs), st[5]),
            jnp.maximum(st[6], jnp.where(can & failed, 1.0, 0.0))])

        def keep(new, old):
            return jnp.where(acc, new, old)

        return dict(c, t=keep(t_new, t), y=keep(y1, y), h=jnp.where(can, h_new, c["h"]),
                    peaks=keep(jnp.maximum(c["peaks"], jnp.abs(y1)), c["peaks"]),
                    tp=keep(t, c["tp"]), hp=keep(hs, c["hp"]), ya=keep(y, c["ya"]),
                    yb=keep(y1, c["yb"]), fa=keep(f0, c["fa"]), fb=keep(f1, c["fb"]),
                    restart=jnp.where(can, False, restart),
                    t_event=jnp.where(can, t_event, c["t_event"]), st=st)

    def cond(s):
        c, _, it = s
        return (c["io"] < r_stop) & (it < max_iter) & (c["st"][6] == 0.0)

    def body(s):
        c, buf, it = s
        c, buf = emit_interpolated((c, buf))
        c = apply_event(c)
        c, buf = emit_exact((c, buf))
        return step(c), buf, it + 1

    carry, buf, _ = lax.while_loop(cond, body, (carry, buf, jnp.zeros((), jnp.int64)))
    return carry, buf


_COMPILED: dict[tuple, Any] = {}


def _static_tableau(method: str) -> tuple:
    """``(gamma, A, b - b_hat)`` of a method as Python floats (static under jit)."""
    tab = TABLEAUS[method]
    return (float(tab.gamma), tuple(tuple(float(a) for a in row) for row in tab.A),
            tuple(float(e) for e in tab.error_weights))


def _block_function(pat: tuple[tuple[int, ...], tuple[int, ...]], adaptive: bool,
                    max_iter: int, obs_mode: str | None, method: str, block: int):
    """The jitted, vmapped block integrator for one static configuration.

    ``obs_mode``: ``None`` (full state), ``"shared"`` (one observable matrix) or
    ``"member"`` (one per member).
    """
    key = (pat, adaptive, max_iter, obs_mode, method, block)
    if key not in _COMPILED:
        fn = partial(_member_block, pat=pat, adaptive=adaptive, max_iter=max_iter,
                     tab=_static_tableau(method), block=block)
        vm = jax.vmap(fn, in_axes=(0, 0, 0, 0, 0, 0 if obs_mode == "member" else None,
                                   None, None, None, None, None, None, None, None))
        _COMPILED[key] = jax.jit(vm)
    return _COMPILED[key]


# --------------------------------------------------------------------------- host side

def _tables(schedules, n_state: int):
    """Event times (``inf`` padded), jumps and rates of every schedule, and their ends.

    The number of rows is rounded up to a power of two (at least 64, and one more
    than the longest schedule, so that the row after the last event is an ``inf``
    time with no jump) so that scenarios of the same grid share compiled code.
    """
    S = len(schedules)
    k_max = max(len(s.times) for s in schedules) + 1
    k_pad = max(64, 1 << (k_max - 1).bit_length())
    times = np.full((S, k_pad), np.inf)
    jumps = np.zeros((S, k_pad, n_state))
    rates = np.zeros((S, k_pad, n_state))
    for i, s in enumerate(schedules):
        K = len(s.times)
        times[i, :K] = s.times
        jumps[i, :K] = s.jumps
        rates[i, :K] = s.rates
    t_end = np.array([float(s.t_end) for s in schedules])
    return times, jumps, rates, t_end


class JaxBackend(Backend):
    """Adaptive ESDIRK in ``jax.lax`` (float64), jitted; batches vmapped.

    Settings (constructor arguments; ``get_backend("jax", batch_size=256)``)
    ----------------------------------------------------------------------
    block_size
        Output rows per jitted call (a Ctrl-C is honoured between calls).
    batch_size
        Members integrated together per call (default: all); bounds the memory.
    max_attempts_per_block
        Loop iterations (step attempts) a member may take for one block of
        output rows before the solve is declared failed.
    """

    name = "jax"
    methods = METHODS
    default_method = "esdirk3"
    default_rtol = DEFAULT_RTOL
    fixed_steps = True
    settings = ("block_size", "batch_size", "max_attempts_per_block")

    def __init__(self, block_size: int = 128, batch_size: int | None = None,
                 max_attempts_per_block: int = 100_000):
        from csfmodel.errors import ScenarioError

        for key, v in (("block_size", block_size), ("batch_size", batch_size),
                       ("max_attempts_per_block", max_attempts_per_block)):
            if v is None and key == "batch_size":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ScenarioError(key, v, "a whole number >= 1")
        self.block_size = int(block_size)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.max_attempts_per_block = int(max_attempts_per_block)

    def _solve(self, system, schedule, t_out, options, y0, sink):
        problem = prepare_batch([system], [schedule], t_out, y0=y0)
        try:
            values, stats = self._solve_batch(problem, options)
        except SolveInterrupted as exc:
            raise SolveInterrupted(exc.states[0]) from None
        return values[0], stats[0]

    def _solve_batch(self, problem, options):
        stack = dict(problem.stack)
        B, n_state = problem.size, problem.n_state
        t_out = problem.t_out
        T, L = len(t_out), self.block_size
        ev_times, jumps, rates, t_end = _tables(problem.schedules, n_state)
        y_init = np.zeros((B, n_state)) if problem.y0 is None else problem.y0
        sidx = problem.schedule_index
        at = (np.full(B, float(options.atol)) if options.atol is not None
              else atol_floor(problem.totals, options.rtol))
        obs = problem.observable_matrix()
        obs_mode = None if obs is None else ("member" if obs.ndim == 3 else "shared")
        n_rec = problem.n_values
        # static sparsity of the border (union over the batch): non-zero columns and rows
        cols = tuple(int(k) for k in np.flatnonzero(np.any(stack["border_cols"] != 0,
                                                           axis=(0, 1))))
        rows = tuple(int(k) for k in np.flatnonzero(np.any(stack["border_rows"] != 0,
                                                           axis=(0, 2))))
        stack = dict(stack, border_rows=stack["border_rows"][:, list(rows)],
                     border_cols=stack["border_cols"][:, :, list(cols)])
        fn = _block_function((cols, rows), bool(options.adaptive),
                             self.max_attempts_per_block, obs_mode, options.method, L)
        max_step = float(np.inf if options.max_step is None else options.max_step)
        first = float(np.inf if options.first_step is None else options.first_step)
        t_pad = np.concatenate([t_out, np.full(L + 1, np.inf)])
        shared = (jnp.asarray(ev_times), jnp.asarray(jumps), jnp.asarray(rates),
                  jnp.asarray(t_end))
        size = B if self.batch_size is None else max(1, min(self.batch_size, B))
        results, all_stats = [], []
        for start in range(0, B, size):
            sel = np.minimum(np.arange(start, start + size), B - 1)   # pad the last chunk
            n_keep = min(size, B - start)
            par = {k: jnp.asarray(v[sel]) for k, v in stack.items()}
            obs_d = None if obs is None else jnp.asarray(obs[sel] if obs.ndim == 3 else obs)
            y0 = y_init[sel]
            zeros = np.zeros((size, n_state))
            carry = {"t": jnp.zeros(size), "y": jnp.asarray(y0), "u": jnp.asarray(zeros),
                     "ke": jnp.zeros(size, jnp.int64), "h": jnp.full(size, first),
                     "peaks": jnp.asarray(np.abs(y0)),
                     "st": jnp.tile(jnp.asarray([0.0, 0.0, 0.0, 0.0, np.inf, 0.0, 0.0]),
                                    (size, 1)),
                     "io": jnp.zeros(size, jnp.int64), "tp": jnp.zeros(size),
                     "hp": jnp.ones(size), "ya": jnp.asarray(zeros), "yb": jnp.asarray(zeros),
                     "fa": jnp.asarray(zeros), "fb": jnp.asarray(zeros),
                     "restart": jnp.ones(size, bool), "t_event": jnp.zeros(size)}
            args = (par, jnp.asarray(sidx[sel]), jnp.full(size, float(options.rtol)),
                    jnp.asarray(at[sel]))
            recs = []
            try:
                for r0 in range(0, T, L):
                    n_rows = min(L, T - r0)
                    carry, buf = fn(*args, carry, obs_d, *shared, jnp.asarray(t_pad[r0:r0 + L + 1]),
                                    r0, n_rows, max_step)
                    recs.append(np.asarray(buf)[:, :n_rows])
                    reached = np.asarray(carry["io"])[:n_keep]
                    if np.any(reached < r0 + n_rows):
                        self._fail(np.asarray(carry["st"])[:n_keep], reached, r0 + n_rows,
                                   start, np.asarray(carry["t"])[:n_keep])
            except KeyboardInterrupt:
                if size != B:
                    raise
                done = np.concatenate(recs, axis=1) if recs else np.zeros((B, 0, n_rec))
                raise SolveInterrupted(done[:n_keep]) from None
            results.append(np.concatenate(recs, axis=1)[:n_keep])
            all_stats.append(np.asarray(carry["st"])[:n_keep])
        out = np.concatenate(results, axis=0)
        st = np.concatenate(all_stats, axis=0)
        if not np.all(np.isfinite(out)):
            raise SolverFailure("jax backend produced non-finite values")
        if not options.adaptive:
            st[:, 3:6] = np.nan
        if problem.summary is not None:
            out = summarize(out, t_out, problem.summary)
        return out, [Stats.from_vector(row) for row in st]

    def _fail(self, st, reached, want, offset, t_reached) -> None:
        bad = np.flatnonzero(reached < want)
        b = int(bad[0])
        why = ("the step size collapsed (non-finite or runaway values)" if st[b, 6]
               else f"more than {self.max_attempts_per_block} step attempts for one block "
                    "of output rows (raise max_attempts_per_block or rtol)")
        raise SolverFailure(f"jax backend: members {(bad + offset).tolist()} stopped (member "
                            f"{b + offset} at t = {t_reached[b]:.6g} min): {why}")
