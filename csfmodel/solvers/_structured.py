r"""Numba kernels of the fast backend: structured solves and adaptive ESDIRK stepping.

The matrix of the model (:class:`csfmodel.model.LinearSystem`) has three parts:
a tridiagonal spinal block ``T_s`` (``N`` cells), a diagonal cord block coupled
cell by cell to the first ``M`` spinal cells, and a dense border of ``m``
well-mixed compartments. Every implicit stage of the time stepper solves

.. math::  (I - c J)\,x = r

(``c = gamma h``) and this module does it in :math:`O(N + M)` work:

1. each cord unknown is eliminated into its spinal cell's diagonal (the cord
   block is diagonal), leaving a tridiagonal system solved by the Thomas
   algorithm (``I - cJ`` is an M-matrix, so no pivoting is needed);
2. the border is handled by a Schur complement: at factorization time
   :math:`Z = T^{-1} B` is computed for the (few) border columns that are not
   zero, and the ``m x m`` Schur complement :math:`S = K - R Z` is inverted;
   a solve is then one tridiagonal substitution (twisted: two recurrences from
   both ends, half the latency of Thomas' algorithm), a sparse product with the
   border rows, an ``m x m`` product and an update with the active columns of
   ``Z``.

A factorization depends only on ``c``; a small cache keyed by the step size
holds the factorizations of the step sizes in use (steps are ``gap / 2^k`` of
the interval between two dose events, so only a handful of sizes occur).

Time stepping is a stiffly accurate, L-stable ESDIRK method (explicit first
stage, every implicit stage with the same matrix ``I - gamma h J``), either

* ``esdirk3`` (default): ESDIRK3(2)4L[2]SA of Kennedy & Carpenter (2003, Appl.
  Numer. Math. 44:139), third order, three implicit stages, embedded second-order
  weights; or
* ``trbdf2``: TR-BDF2 (Bank et al. 1985, IEEE Trans. Electron Devices 32:1992) in
  the form analysed by Hosea & Shampine (1996, Appl. Numer. Math. 20:21), second
  order, two implicit stages, embedded third-order weights.

The stage derivatives ``F_i = J Y_i + u`` are recovered from the stage equations
(no matrix products inside a step); the local error estimate
``h sum (b_i - b_hat_i) F_i`` is filtered through ``(I - gamma h J)^{-1}`` as
Hosea & Shampine do, so stiff components are not over-estimated. The step size
is adapted to keep the estimate below ``rtol`` of the running peak of each
output variable (spinal CSF concentration, cord concentration, each
compartment); steps are ``gap / 2^k`` of the interval between dose events, so
they land exactly on every event, and output times in between are filled by
cubic Hermite interpolation (third order; it conserves mass exactly: the total
of the interpolant is the exact integral of the inputs).

Fast transients arise only at dose events (a bolus, or a change of an infusion
rate at a point). After each such event the step restarts from the size that
worked after the previous one, and for the steps right after it the
interpolant is compared with the first implicit stage (a trapezoidal step,
``R(-inf) = -1``, so it shows any transient left inside the step): a long
step that damps a transient correctly at its end but would interpolate it
badly at the output times inside is rejected.

Because every column of ``J`` sums to zero, ``1^T (I - cJ) = 1^T``: each solve
preserves the total amount, so dosed = present + eliminated holds to round-off.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


def _tableau(name: str) -> tuple[float, np.ndarray, np.ndarray, int]:
    """``(gamma, A, b - b_hat, order)`` of a stiffly accurate ESDIRK method.

    ``A`` is the Butcher matrix (explicit first stage, diagonal ``gamma``); the
    last row is the method's weights ``b``; ``b_hat`` are the embedded weights.
    """
    if name == "trbdf2":
        # TR-BDF2, gamma = 2 - sqrt 2 (Hosea & Shampine 1996, Appl. Numer. Math. 20:21)
        d = 1.0 - 1.0 / math.sqrt(2.0)
        w = math.sqrt(2.0) / 4.0
        A = np.array([[0.0, 0.0, 0.0], [d, d, 0.0], [w, w, d]])
        b_hat = np.array([(1.0 - w) / 3.0, (3.0 * w + 1.0) / 3.0, d / 3.0])
        return d, A, A[-1] - b_hat, 2
    if name == "esdirk3":
        # ESDIRK3(2)4L[2]SA (Kennedy & Carpenter 2003, Appl. Numer. Math. 44:139, the
        # implicit part of ARK3(2)4L[2]SA): order 3, L-stable, stiffly accurate
        g = 1767732205903.0 / 4055673282236.0
        A = np.zeros((4, 4))
        A[1, :2] = [g, g]
        A[2, :3] = [2746238789719.0 / 10658868560708.0, -640167445237.0 / 6845629431997.0, g]
        A[3, :4] = [1471266399579.0 / 7840856788654.0, -4482444167858.0 / 7529755066697.0,
                    11266239266428.0 / 11593286722821.0, g]
        b_hat = np.array([2756255671327.0 / 12835298489170.0,
                          -10771552573575.0 / 22201958757719.0,
                          9247589265047.0 / 10645013368117.0,
                          2193209047091.0 / 5459859503100.0])
        return g, A, A[-1] - b_hat, 3
    raise ValueError(f"unknown method {name!r}")


METHODS = ("esdirk3", "trbdf2")

#: the interpolant-vs-stage discrepancy may be this many times the tolerance
INTERP_SLACK = 3.0

#: ... for steps starting less than this many step lengths after an input change (fast
#: transients arise only at dose events: later they have decayed, or the error estimate
#: of the step sees them)
INTERP_WINDOW = 2.0

#: number of cached factorizations (distinct step sizes) per scenario
N_CACHE = 24

#: leading entries of the ``resume`` vector of :func:`integrate` (then the peaks); entry
#: ``RESUME_ROW0`` is the output index of ``out``'s first row (a caller streaming the
#: results window by window passes a buffer for that window only)
RESUME_SIZE = 9
RESUME_ROW0 = 8

# indices of the statistics vector returned by the kernels
# (``ST_ROWS``: output rows written so far; ``ST_FAILED``: 1 if the step size collapsed,
# e.g. on non-finite values, and the run was abandoned rather than looping for ever)
ST_STEPS, ST_REJECTED, ST_FACTORIZATIONS, ST_MAX_ERR, ST_MIN_H, ST_MAX_H, ST_ROWS, \
    ST_FAILED = range(8)
N_STATS = 8

#: a step below this fraction of the span between two dose events means the error
#: control cannot be met (non-finite values): the kernel gives up and says so
H_MIN_FRACTION = 2.0 ** -52


@njit(cache=True, error_model="numpy")
def _factor(c, lower, diag, upper, cord_diag, csf_to_cord, cord_to_csf, brow, bcol, block,
            act, r_ptr, r_idx, dinv, lo, back, ge, qe, einv, Z, Sinv, work_r, work_x, S):
    """Factorize ``I - c J`` into the arrays of one cache slot."""
    n = diag.shape[0]
    m_c = cord_diag.shape[0]
    m = block.shape[0]
    # cord elimination and Thomas forward sweep
    for j in range(m_c):
        e = 1.0 - c * cord_diag[j]
        einv[j] = 1.0 / e
        ge[j] = c * csf_to_cord[j] / e
        qe[j] = c * cord_to_csf[j] / e
    # twisted factorization of the tridiagonal: rows 0..p-1 eliminated downwards,
    # rows n-1..p+1 upwards, meeting at p (two independent recurrences per sweep)
    for i in range(n):
        dd = 1.0 - c * diag[i]
        if i < m_c:
            dd -= c * cord_to_csf[i] * ge[i]
        dinv[i] = dd
    p = n // 2
    prev = 0.0
    for i in range(p):
        ai = -c * lower[i - 1] if i > 0 else 0.0
        bi = -c * upper[i]
        di = 1.0 / (dinv[i] - ai * prev)
        dinv[i] = di
        lo[i] = ai * di
        back[i] = bi * di
        prev = back[i]
    cpf = prev
    prev = 0.0
    for i in range(n - 1, p, -1):
        ai = -c * lower[i - 1]
        bi = -c * upper[i] if i < n - 1 else 0.0
        di = 1.0 / (dinv[i] - bi * prev)
        dinv[i] = di
        lo[i] = bi * di
        back[i] = ai * di
        prev = back[i]
    ap = -c * lower[p - 1] if p > 0 else 0.0
    bp = -c * upper[p] if p < n - 1 else 0.0
    di = 1.0 / (dinv[p] - ap * cpf - bp * prev)
    dinv[p] = di
    lo[p] = ap * di
    back[p] = bp * di
    # Z = T^{-1} (-c B) for the active border columns
    ns = n + m_c
    for a in range(act.shape[0]):
        k = act[a]
        for i in range(ns):
            work_r[i] = -c * bcol[i, k]
        _tsolve(dinv, lo, back, ge, qe, einv, work_r, work_x, n, m_c)
        for i in range(ns):
            Z[i, a] = work_x[i]
    # Schur complement S = (I - c K) - (-c R) Z
    for k in range(m):
        for l2 in range(m):
            S[k, l2] = -c * block[k, l2]
        S[k, k] += 1.0
    for k in range(m):
        for p in range(r_ptr[k], r_ptr[k + 1]):
            i = r_idx[p]
            v = -c * brow[k, i]
            for a in range(act.shape[0]):
                S[k, act[a]] -= v * Z[i, a]
    _invert(S, Sinv)


@njit(cache=True, error_model="numpy")
def _invert(A, out):
    """Inverse of a small dense matrix, Gauss-Jordan with partial pivoting (A is destroyed)."""
    m = A.shape[0]
    for i in range(m):
        for j in range(m):
            out[i, j] = 1.0 if i == j else 0.0
    for col in range(m):
        piv = col
        best = abs(A[col, col])
        for r in range(col + 1, m):
            if abs(A[r, col]) > best:
                best = abs(A[r, col])
                piv = r
        if piv != col:
            for j in range(m):
                A[col, j], A[piv, j] = A[piv, j], A[col, j]
                out[col, j], out[piv, j] = out[piv, j], out[col, j]
        inv = 1.0 / A[col, col]
        for j in range(m):
            A[col, j] *= inv
            out[col, j] *= inv
        for r in range(m):
            if r != col:
                f = A[r, col]
                if f != 0.0:
                    for j in range(m):
                        A[r, j] -= f * A[col, j]
                        out[r, j] -= f * out[col, j]


@njit(cache=True, error_model="numpy", inline="always")
def _tsolve(dinv, lo, back, ge, qe, einv, r, x, n, m_c):
    """Solve the spatial block (spinal tridiagonal + cord) ``T x = r``.

    Twisted factorization: the sweeps run from both ends towards ``p = n // 2``
    and back, so each loop carries two independent multiply-add recurrences
    (half the latency of the Thomas algorithm).
    """
    for i in range(m_c):
        x[i] = (r[i] + qe[i] * r[n + i]) * dinv[i]
    for i in range(m_c, n):
        x[i] = r[i] * dinv[i]
    p = n // 2
    nf = p            # rows 0..p-1
    nb = n - 1 - p    # rows n-1..p+1
    gf = 0.0
    gb = 0.0
    if nf > 0:
        gf = x[0]
    if nb > 0:
        gb = x[n - 1]
    common = min(nf, nb)
    for s in range(1, common):
        i = s
        i2 = n - 1 - s
        gf = x[i] - lo[i] * gf
        x[i] = gf
        gb = x[i2] - lo[i2] * gb
        x[i2] = gb
    for i in range(max(common, 1), nf):
        gf = x[i] - lo[i] * gf
        x[i] = gf
    for s in range(max(common, 1), nb):
        i2 = n - 1 - s
        gb = x[i2] - lo[i2] * gb
        x[i2] = gb
    xp = x[p]
    if p > 0:
        xp -= lo[p] * x[p - 1]
    if p < n - 1:
        xp -= back[p] * x[p + 1]
    x[p] = xp
    up = xp
    dn = xp
    for s in range(1, common + 1):
        i = p - s
        i2 = p + s
        up = x[i] - back[i] * up
        x[i] = up
        dn = x[i2] - back[i2] * dn
        x[i2] = dn
    for i in range(p - common - 1, -1, -1):
        up = x[i] - back[i] * up
        x[i] = up
    for i2 in range(p + common + 1, n):
        dn = x[i2] - back[i2] * dn
        x[i2] = dn
    for j in range(m_c):
        x[n + j] = r[n + j] * einv[j] + ge[j] * x[j]


@njit(cache=True, error_model="numpy", inline="always", fastmath={"reassoc", "contract"})
def _row_dot(brow, k, r_ptr, r_idx, x, ns):
    """``brow[k] . x[:ns]``: over the row's nonzeros, or (if at least half of the row is
    nonzero) over the whole row, contiguously with 4 accumulators."""
    p0 = r_ptr[k]
    p1 = r_ptr[k + 1]
    if 2 * (p1 - p0) >= ns:
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        i = 0
        while i + 3 < ns:
            a0 += brow[k, i] * x[i]
            a1 += brow[k, i + 1] * x[i + 1]
            a2 += brow[k, i + 2] * x[i + 2]
            a3 += brow[k, i + 3] * x[i + 3]
            i += 4
        while i < ns:
            a0 += brow[k, i] * x[i]
            i += 1
        return (a0 + a1) + (a2 + a3)
    acc = 0.0
    for p in range(p0, p1):
        acc += brow[k, r_idx[p]] * x[r_idx[p]]
    return acc


@njit(cache=True, error_model="numpy", inline="always")
def _solve(c, brow, act, r_ptr, r_idx, dinv, lo, back, ge, qe, einv, Z, Sinv, r, x, t, w):
    """Solve ``(I - cJ) x = r`` with a cached factorization (O(N + M) work)."""
    n = dinv.shape[0]
    m_c = einv.shape[0]
    ns = n + m_c
    m = Sinv.shape[0]
    na = act.shape[0]
    _tsolve(dinv, lo, back, ge, qe, einv, r, x, n, m_c)
    for k in range(m):
        t[k] = r[ns + k]
        if r_ptr[k + 1] > r_ptr[k]:
            t[k] += c * _row_dot(brow, k, r_ptr, r_idx, x, ns)
    for k in range(m):
        acc = 0.0
        for l2 in range(m):
            acc += Sinv[k, l2] * t[l2]
        w[k] = acc
        x[ns + k] = acc
    if na == 1:
        w0 = w[act[0]]
        for i in range(ns):
            x[i] -= Z[i, 0] * w0
    elif na == 2:
        w0 = w[act[0]]
        w1 = w[act[1]]
        for i in range(ns):
            x[i] -= Z[i, 0] * w0 + Z[i, 1] * w1
    else:
        for i in range(ns):
            acc = 0.0
            for a in range(na):
                acc += Z[i, a] * w[act[a]]
            x[i] -= acc


@njit(cache=True, error_model="numpy")
def _matvec(lower, diag, upper, cord_diag, csf_to_cord, cord_to_csf, brow, bcol, block,
            act, r_ptr, r_idx, y, u, out):
    """``out = J y + u`` using the structure."""
    n = diag.shape[0]
    m_c = cord_diag.shape[0]
    ns = n + m_c
    m = block.shape[0]
    for i in range(n):
        v = diag[i] * y[i]
        if i > 0:
            v += lower[i - 1] * y[i - 1]
        if i < n - 1:
            v += upper[i] * y[i + 1]
        if i < m_c:
            v += cord_to_csf[i] * y[n + i]
        out[i] = v
    for j in range(m_c):
        out[n + j] = cord_diag[j] * y[n + j] + csf_to_cord[j] * y[j]
    for a in range(act.shape[0]):
        k = act[a]
        yk = y[ns + k]
        if yk != 0.0:
            for i in range(ns):
                out[i] += bcol[i, k] * yk
    for k in range(m):
        v = _row_dot(brow, k, r_ptr, r_idx, y, ns)
        for l2 in range(m):
            v += block[k, l2] * y[ns + l2]
        out[ns + k] = v
    for i in range(out.shape[0]):
        out[i] += u[i]


@njit(cache=True, error_model="numpy")
def _emit(y, out, row, o_ptr, o_idx, o_w):
    """Write the state (or its projection onto the observables) into ``out[row]``."""
    if o_ptr.shape[0] == 0:
        for i in range(y.shape[0]):
            out[row, i] = y[i]
    else:
        for q in range(o_ptr.shape[0] - 1):
            acc = 0.0
            for p in range(o_ptr[q], o_ptr[q + 1]):
                acc += o_w[p] * y[o_idx[p]]
            out[row, q] = acc


@njit(cache=True, error_model="numpy", inline="always")
def _project(y, ob, o_ptr, o_idx, o_w):
    """``ob = O y`` for the CSR observables."""
    for q in range(o_ptr.shape[0] - 1):
        acc = 0.0
        for p in range(o_ptr[q], o_ptr[q + 1]):
            acc += o_w[p] * y[o_idx[p]]
        ob[q] = acc


@njit(cache=True, error_model="numpy", inline="always")
def _record(io, t_out, vals, summ, prev):
    """Update max / time of max / trapezoidal integral / final value with output ``io``."""
    n_obs = vals.shape[0]
    if io == 0:
        for q in range(n_obs):
            summ[0, q] = vals[q]
            summ[1, q] = t_out[0]
            summ[2, q] = 0.0
    else:
        dt = 0.5 * (t_out[io] - t_out[io - 1])
        for q in range(n_obs):
            v = vals[q]
            if v > summ[0, q]:
                summ[0, q] = v
                summ[1, q] = t_out[io]
            summ[2, q] += dt * (v + prev[q])
    for q in range(n_obs):
        summ[3, q] = vals[q]
        prev[q] = vals[q]


@njit(cache=True, error_model="numpy", inline="always")
def _hermite(th, h, y0, y1, f0, f1):
    """Cubic Hermite interpolant at ``t0 + th h`` from values and slopes at both ends."""
    d = y1 - y0
    return y0 + th * d + th * (th - 1.0) * ((1.0 - 2.0 * th) * d + (th - 1.0) * h * f0
                                           + th * h * f1)


@njit(cache=True, error_model="numpy", inline="always")
def _interp_max(y, y1, f0, f1, ys, ivol, th, h, i0, i1):
    """``max |hermite(th) - ys| / vol`` over ``i0 <= i < i1`` (two accumulators)."""
    m0 = 0.0
    m1 = 0.0
    i = i0
    while i + 1 < i1:
        m0 = max(m0, abs(_hermite(th, h, y[i], y1[i], f0[i], f1[i]) - ys[i]) * ivol[i])
        m1 = max(m1, abs(_hermite(th, h, y[i + 1], y1[i + 1], f0[i + 1], f1[i + 1])
                         - ys[i + 1]) * ivol[i + 1])
        i += 2
    if i < i1:
        m0 = max(m0, abs(_hermite(th, h, y[i], y1[i], f0[i], f1[i]) - ys[i]) * ivol[i])
    return max(m0, m1)


@njit(cache=True, error_model="numpy", inline="always")
def _group_max(est, y, ivol, i0, i1):
    """``max |est_i| / vol_i`` and ``max |y_i| / vol_i`` over ``i0 <= i < i1``.

    The first is NaN if any ``est_i`` is not finite (``max`` alone would skip a NaN).
    """
    e0 = 0.0
    e1 = 0.0
    q0 = 0.0
    q1 = 0.0
    acc = 0.0
    i = i0
    while i + 1 < i1:
        e0 = max(e0, abs(est[i]) * ivol[i])
        e1 = max(e1, abs(est[i + 1]) * ivol[i + 1])
        q0 = max(q0, abs(y[i]) * ivol[i])
        q1 = max(q1, abs(y[i + 1]) * ivol[i + 1])
        acc += est[i] - est[i + 1]
        i += 2
    if i < i1:
        e0 = max(e0, abs(est[i]) * ivol[i])
        q0 = max(q0, abs(y[i]) * ivol[i])
        acc += est[i]
    if acc - acc != 0.0:            # NaN or inf somewhere in the group
        return np.nan, max(q0, q1)
    return max(e0, e1), max(q0, q1)


@njit(cache=True, error_model="numpy")
def integrate(lower, diag, upper, cord_diag, csf_to_cord, cord_to_csf, brow, bcol, block,
              volume, act, r_ptr, r_idx, times, jumps, rates, t_end, t_out, y0,
              o_ptr, o_idx, o_w, gamma, tab_a, tab_e, rtol, atol_floor, max_step, first_step,
              adaptive, out, stats, summ, resume, io_stop):
    """Integrate ``dy/dt = J y + u`` with jumps over ``[0, t_end]``.

    Writes the state (or the observables ``o_*``, CSR rows over the state) at
    ``t_out`` into ``out`` and the step statistics into ``stats``. If ``summ``
    has columns (one per observable), ``out`` is left alone and ``summ`` gets
    each observable's maximum, time of maximum, trapezoidal integral over
    ``t_out`` and final value (rows 0-3).

    The run can be done in windows: it returns once the outputs before index
    ``io_stop`` are written (stepping exactly to ``t_out[io_stop - 1]``), with
    the integrator's state saved in ``resume`` (``RESUME_SIZE + 2 + m``) and the
    state vector in ``y0``; a call with ``resume[0] == 1`` continues from there. With
    ``adaptive`` false every step is ``min(max_step, gap)`` divided into equal
    powers of two of the gap between dose events, with no error control (used
    to measure the order of the method).
    """
    n = diag.shape[0]
    m_c = cord_diag.shape[0]
    ns = n + m_c
    m = block.shape[0]
    nst = ns + m
    na = act.shape[0]
    # factorization cache
    keys = np.full(N_CACHE, -1.0)
    c_dinv = np.empty((N_CACHE, n))
    c_lo = np.empty((N_CACHE, n))
    c_back = np.empty((N_CACHE, n))
    c_ge = np.empty((N_CACHE, m_c))
    c_qe = np.empty((N_CACHE, m_c))
    c_einv = np.empty((N_CACHE, m_c))
    c_Z = np.empty((N_CACHE, ns, na))
    c_Sinv = np.empty((N_CACHE, m, m))
    next_slot = 0
    Swork = np.empty((m, m))
    wr = np.empty(nst)
    wx = np.empty(nst)
    tv = np.empty(m)
    wv = np.empty(m)
    # state and stage vectors
    y = y0.copy()
    ns_st = tab_a.shape[0]
    F = np.empty((ns_st, nst))
    ys = np.empty(nst)
    c1 = tab_a[1, 0] + tab_a[1, 1]
    n_obs = max(o_ptr.shape[0] - 1, 0)
    ob0 = np.empty(n_obs)
    ob1 = np.empty(n_obs)
    obf0 = np.empty(n_obs)
    obf1 = np.empty(n_obs)
    obt = np.empty(n_obs)
    prev = np.zeros(n_obs)
    summarize = summ.shape[1] > 0 and n_obs > 0
    y1 = np.empty(nst)
    est = np.empty(nst)
    rhs = np.empty(nst)
    u = np.zeros(nst)
    ivol = 1.0 / volume
    # absolute floor of the error scale as a concentration (amount floor / largest cell)
    fl_s = atol_floor / max(np.max(volume[:n]), 1e-300)
    fl_c = atol_floor / max(np.max(volume[n:ns]), 1e-300) if m_c > 0 else 1.0
    # running peak of each output variable (concentration units): spinal, cord, compartments
    peak = np.zeros(2 + m)
    K = times.shape[0]
    n_out = t_out.shape[0]
    row0 = int(resume[RESUME_ROW0])
    if resume[0] == 1.0:
        t = resume[1]
        ke = int(resume[2])
        io = int(resume[3])
        h_target = resume[4]
        h_jump = resume[5]
        first_after_jump = resume[6] != 0.0
        t_event = resume[7]
        for q in range(2 + m):
            peak[q] = resume[RESUME_SIZE + q]
        if ke > 0:
            for i in range(nst):
                u[i] = rates[ke - 1, i]
    else:
        for s_ in range(N_STATS):
            stats[s_] = 0.0
        stats[ST_MIN_H] = np.inf
        t = 0.0
        ke = 0
        io = 0
        h_target = max_step
        h_jump = first_step
        first_after_jump = False
        t_event = 0.0
    t_window = t_out[io_stop - 1] if io_stop < n_out else np.inf
    failed = False
    while True:
        # dose events at time t (jumps, then the input in force from t on)
        changed = False
        while ke < K and times[ke] <= t:
            for i in range(nst):
                if jumps[ke, i] != 0.0 or rates[ke, i] != u[i]:
                    first_after_jump = True    # a new transient starts here
                    t_event = t
                    break
            for i in range(nst):
                y[i] += jumps[ke, i]
                u[i] = rates[ke, i]
            ke += 1
            changed = True
        while io < n_out and t_out[io] <= t:
            if summarize:
                _project(y, ob0, o_ptr, o_idx, o_w)
                _record(io, t_out, ob0, summ, prev)
            else:
                _emit(y, out, io - row0, o_ptr, o_idx, o_w)
            io += 1
        if t >= t_end or io >= n_out or io >= io_stop:
            break
        stop = t_end
        if ke < K and times[ke] < stop:
            stop = times[ke]
        if t < t_window < stop:
            stop = t_window
        gap = stop - t
        _matvec(lower, diag, upper, cord_diag, csf_to_cord, cord_to_csf, brow, bcol, block,
                act, r_ptr, r_idx, y, u, F[0])
        if changed and first_after_jump and adaptive:
            h_target = min(h_target, h_jump)
        if not adaptive:
            h_target = max_step
        # sub-steps of gap / 2^k
        k = 0
        while gap / 2.0 ** k > h_target and k < 60:
            k += 1
        nsub = 2 ** k
        j = 0
        tn = t
        while j < nsub:
            h = gap / nsub
            c = gamma * h
            ic = 1.0 / c
            # cached factorization of I - cJ
            slot = -1
            for s_ in range(N_CACHE):
                if keys[s_] == h:
                    slot = s_
                    break
            if slot < 0:
                slot = next_slot
                next_slot = (next_slot + 1) % N_CACHE
                keys[slot] = h
                _factor(c, lower, diag, upper, cord_diag, csf_to_cord, cord_to_csf, brow,
                        bcol, block, act, r_ptr, r_idx, c_dinv[slot], c_lo[slot], c_back[slot],
                        c_ge[slot], c_qe[slot], c_einv[slot], c_Z[slot], c_Sinv[slot], wr, wx,
                        Swork)
                stats[ST_FACTORIZATIONS] += 1.0
            dinv = c_dinv[slot]
            lo = c_lo[slot]
            back = c_back[slot]
            ge = c_ge[slot]
            qe = c_qe[slot]
            einv = c_einv[slot]
            Zs = c_Z[slot]
            Si = c_Sinv[slot]
            # implicit stages: (I - gamma h J) Y_i = y + h sum_j a_ij F_j + gamma h u,
            # F_i = J Y_i + u recovered from the stage equation (no matrix product)
            if ns_st == 4:
                # four-stage tableau (esdirk3): the passes over the state are fused
                F0 = F[0]
                F1 = F[1]
                F2 = F[2]
                F3 = F[3]
                a10 = tab_a[1, 0] * h
                a20 = tab_a[2, 0] * h
                a21 = tab_a[2, 1] * h
                a30 = tab_a[3, 0] * h
                a31 = tab_a[3, 1] * h
                a32 = tab_a[3, 2] * h
                for i in range(nst):
                    rhs[i] = y[i] + c * u[i] + a10 * F0[i]
                _solve(c, brow, act, r_ptr, r_idx, dinv, lo, back, ge, qe, einv, Zs, Si, rhs,
                       y1, tv, wv)
                for i in range(nst):
                    F1[i] = (y1[i] - rhs[i]) * ic + u[i]
                    ys[i] = y1[i]
                    rhs[i] = y[i] + c * u[i] + a20 * F0[i] + a21 * F1[i]
                _solve(c, brow, act, r_ptr, r_idx, dinv, lo, back, ge, qe, einv, Zs, Si, rhs,
                       y1, tv, wv)
                for i in range(nst):
                    F2[i] = (y1[i] - rhs[i]) * ic + u[i]
                    rhs[i] = y[i] + c * u[i] + a30 * F0[i] + a31 * F1[i] + a32 * F2[i]
                _solve(c, brow, act, r_ptr, r_idx, dinv, lo, back, ge, qe, einv, Zs, Si, rhs,
                       y1, tv, wv)
                e0 = tab_e[0] * h
                e1 = tab_e[1] * h
                e2 = tab_e[2] * h
                e3 = tab_e[3] * h
                for i in range(nst):
                    F3[i] = (y1[i] - rhs[i]) * ic + u[i]
                    rhs[i] = e0 * F0[i] + e1 * F1[i] + e2 * F2[i] + e3 * F3[i]
            else:
                for st in range(1, ns_st):
                    for i in range(nst):
                        rhs[i] = y[i] + c * u[i]
                    for jj in range(st):
                        a_h = tab_a[st, jj] * h
                        if a_h != 0.0:
                            for i in range(nst):
                                rhs[i] += a_h * F[jj, i]
                    _solve(c, brow, act, r_ptr, r_idx, dinv, lo, back, ge, qe, einv, Zs, Si,
                           rhs, y1, tv, wv)
                    for i in range(nst):
                        F[st, i] = (y1[i] - rhs[i]) * ic + u[i]
                    if st == 1:
                        for i in range(nst):
                            ys[i] = y1[i]
                for i in range(nst):
                    rhs[i] = 0.0
                for jj in range(ns_st):
                    e_h = tab_e[jj] * h
                    for i in range(nst):
                        rhs[i] += e_h * F[jj, i]
            # stiffly accurate: the last stage is the new state, F[-1] = f(y1); rhs now
            # holds the error estimate h sum (b - b_hat)_j F_j
            err = 0.0
            if adaptive:
                _solve(c, brow, act, r_ptr, r_idx, dinv, lo, back, ge, qe, einv, Zs, Si, rhs,
                       est, tv, wv)
                # max norm scaled by rtol x running peak of each variable (spinal CSF and
                # cord concentrations share one scale each; compartments have their own)
                e_s, p_s = _group_max(est, y1, ivol, 0, n)
                e_c, p_c = _group_max(est, y1, ivol, n, ns)
                pk_s = max(peak[0], p_s)
                pk_c = max(peak[1], p_c)
                err = max(e_s / (rtol * pk_s + fl_s), e_c / (rtol * pk_c + fl_c))
                if e_s != e_s or e_c != e_c:
                    err = np.nan
                for i in range(ns, nst):
                    pk = max(peak[2 + i - ns], abs(y1[i]) * ivol[i])
                    e_k = abs(est[i]) * ivol[i] / (rtol * pk + atol_floor * ivol[i])
                    err = e_k if e_k != e_k else max(err, e_k)
                # the dense output must be as good as the step (checked only when an
                # output time falls inside the step): compare the Hermite interpolant
                # with the first implicit stage, a trapezoidal step to c1 h whose
                # R(-inf) = -1 shows any fast transient left inside the step. The stage
                # is only second order: its own error may be INTERP_SLACK x the
                # tolerance; a transient gives discrepancies far above that.
                t1 = stop if j + 1 == nsub else tn + h
                if io < n_out and t_out[io] < t1 and t_out[io] < stop and \
                        tn - t_event < INTERP_WINDOW * h:
                    ri = rtol * INTERP_SLACK
                    e_s = _interp_max(y, y1, F[0], F[ns_st - 1], ys, ivol, c1, h, 0, n)
                    e_c = _interp_max(y, y1, F[0], F[ns_st - 1], ys, ivol, c1, h, n, ns)
                    e_i = max(e_s / (ri * pk_s + fl_s), e_c / (ri * pk_c + fl_c))
                    for i in range(ns, nst):
                        pk = max(peak[2 + i - ns], abs(y1[i]) * ivol[i])
                        d = _hermite(c1, h, y[i], y1[i], F[0, i], F[ns_st - 1, i]) - ys[i]
                        e_i = max(e_i, abs(d) * ivol[i] / (ri * pk + atol_floor * ivol[i]))
                    err = max(err, e_i)
            if err <= 1.0:
                # accept; dense output (cubic Hermite) for output times inside the step
                t1 = stop if j + 1 == nsub else tn + h
                if io < n_out and t_out[io] <= t1 and t_out[io] < stop:
                    if n_obs == 0:
                        while io < n_out and t_out[io] <= t1 and t_out[io] < stop:
                            th = (t_out[io] - tn) / h
                            for i in range(nst):
                                wr[i] = _hermite(th, h, y[i], y1[i], F[0, i],
                                                 F[ns_st - 1, i])
                            _emit(wr, out, io - row0, o_ptr, o_idx, o_w)
                            io += 1
                    else:
                        # interpolate in the (linear) space of the observables
                        _project(y, ob0, o_ptr, o_idx, o_w)
                        _project(y1, ob1, o_ptr, o_idx, o_w)
                        _project(F[0], obf0, o_ptr, o_idx, o_w)
                        _project(F[ns_st - 1], obf1, o_ptr, o_idx, o_w)
                        while io < n_out and t_out[io] <= t1 and t_out[io] < stop:
                            th = (t_out[io] - tn) / h
                            if summarize:
                                for q in range(n_obs):
                                    obt[q] = _hermite(th, h, ob0[q], ob1[q], obf0[q], obf1[q])
                                _record(io, t_out, obt, summ, prev)
                            else:
                                for q in range(n_obs):
                                    out[io - row0, q] = _hermite(th, h, ob0[q], ob1[q], obf0[q],
                                                          obf1[q])
                            io += 1
                for i in range(nst):
                    y[i] = y1[i]
                    F[0, i] = F[ns_st - 1, i]
                if adaptive:
                    peak[0] = pk_s
                    peak[1] = pk_c
                    for i in range(ns, nst):
                        peak[2 + i - ns] = max(peak[2 + i - ns], abs(y[i]) * ivol[i])
                tn = t1
                j += 1
                stats[ST_STEPS] += 1.0
                stats[ST_MAX_ERR] = max(stats[ST_MAX_ERR], err)
                stats[ST_MIN_H] = min(stats[ST_MIN_H], h)
                stats[ST_MAX_H] = max(stats[ST_MAX_H], h)
                if adaptive:
                    fac = 4.0 if err < 1e-6 else min(4.0, 0.9 * err ** (-1.0 / 3.0))
                    h_target = min(h * fac, max_step)
                    if first_after_jump:
                        h_jump = h
                        first_after_jump = False
                    # coarsen while aligned on the coarser ladder
                    while k > 0 and j % 2 == 0 and h_target >= 2.0 * (gap / nsub):
                        k -= 1
                        nsub //= 2
                        j //= 2
            else:
                stats[ST_REJECTED] += 1.0
                if err != err or h <= H_MIN_FRACTION * gap:
                    failed = True
                    break
                fac = max(0.05, 0.9 * err ** (-1.0 / 3.0))
                h_target = h * fac
                while gap / nsub > h_target and k < 60:
                    k += 1
                    nsub *= 2
                    j *= 2
        if failed:
            stats[ST_FAILED] = 1.0
            break
        t = stop
    stats[ST_ROWS] = io
    # state for a later call (windowed runs)
    resume[0] = 1.0
    resume[1] = t
    resume[2] = ke
    resume[3] = io
    resume[4] = h_target
    resume[5] = h_jump
    resume[6] = 1.0 if first_after_jump else 0.0
    resume[7] = t_event
    for q in range(2 + m):
        resume[RESUME_SIZE + q] = peak[q]
    for i in range(nst):
        y0[i] = y[i]


@njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def integrate_batch(lower, diag, upper, cord_diag, csf_to_cord, cord_to_csf, brow, bcol,
                    block, volume, act, r_ptr, r_idx, times, jumps, rates, s_ptr, s_of,
                    t_end, t_out, o_ptr, o_idx, o_w, gamma, tab_a, tab_e, rtol, atol_floor,
                    max_step, first_step, out, stats, summ):
    """:func:`integrate` for a batch of parameter sets, in parallel over the batch.

    System arrays carry a leading batch axis ``B``. Schedules are concatenated:
    schedule ``s`` is ``times[s_ptr[s]:s_ptr[s+1]]`` (and the same rows of
    ``jumps``/``rates``); member ``b`` uses schedule ``s_of[b]``. The observables
    share one pattern (``o_ptr``, ``o_idx``) with weights ``o_w[b]`` per member
    (``o_ptr`` empty: full state). ``out`` is ``(B, len(t_out), n_obs)``, or
    ``summ`` ``(B, 4, n_obs)`` receives summaries instead (see :func:`integrate`).
    """
    B = diag.shape[0]
    nst = volume.shape[1]
    for b in prange(B):
        s = s_of[b]
        a0 = s_ptr[s]
        a1 = s_ptr[s + 1]
        y0 = np.zeros(nst)
        integrate(lower[b], diag[b], upper[b], cord_diag[b], csf_to_cord[b], cord_to_csf[b],
                  brow[b], bcol[b], block[b], volume[b], act, r_ptr, r_idx, times[a0:a1],
                  jumps[a0:a1], rates[a0:a1], t_end[b], t_out, y0, o_ptr, o_idx, o_w[b],
                  gamma, tab_a, tab_e, rtol[b], atol_floor[b], max_step, first_step, True,
                  out[b], stats[b], summ[b], np.zeros(RESUME_SIZE + 2 + block.shape[1]),
                  t_out.shape[0])
