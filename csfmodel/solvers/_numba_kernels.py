r"""Numba kernels of the fast backend: structured solves and adaptive ESDIRK stepping.

Longer than 400 lines: the kernels must sit in one module for numba to inline and cache them.

Only the linear algebra and the stepper live here; the methods are data
(:mod:`~csfmodel.solvers._tableaus`), the host-side preparation is shared
(:mod:`~csfmodel.solvers._prepare`) and the windows, sinks and batches are
driven from :mod:`~csfmodel.solvers.numba_backend`.

The matrix of the model (:class:`csfmodel.model.LinearSystem`) has three parts:
a tridiagonal spinal block ``T_s`` (``N`` cells), a diagonal cord block coupled
cell by cell to the first ``M`` spinal cells, and a dense border of ``m``
well-mixed compartments. Every implicit stage of the time stepper solves

.. math::  (I - c J)\,x = r

(``c = gamma h``, "the shifted system") and this module does it in
:math:`O(N + M)` work:

1. each cord unknown is eliminated into its spinal cell's diagonal (the cord
   block is diagonal: ``cord_gain`` is the cord unknown per unit spinal
   unknown, ``cord_feed`` the weight of a cord right-hand side in its spinal
   row), leaving a tridiagonal system solved without pivoting (``I - cJ`` is an
   M-matrix) by a twisted factorization: rows are eliminated from both ends
   towards the middle (``fwd_mult``, ``pivot_inv``) and substituted back
   (``back_mult``), two independent recurrences per sweep, half the latency of
   Thomas' algorithm;
2. the border is handled by a Schur complement: at factorization time
   ``border_sol`` :math:`= T^{-1} (-c B)` is computed for the (few) border
   columns that are not zero (``active_cols``), and the ``m x m`` Schur
   complement :math:`K' - R' T^{-1} B'` is inverted (``schur_inv``); a solve is
   then one tridiagonal substitution, a sparse product with the border rows
   (CSR pattern ``row_ptr``/``row_idx``), an ``m x m`` product and an update
   with ``border_sol``.

A solve is bound by the latency of its sweeps' multiply-add chains rather than by
arithmetic, so independent right-hand sides are cheaper solved together:
:func:`_solve_shifted2` and :func:`_solve_shifted3` interleave the recurrences of two
or three (bit-identical to single solves; the sensitivity kernel,
:mod:`csfmodel.fitting._kernel`, groups a step's independent solves this way).

A factorization depends only on ``c``; a small cache keyed by the step size
holds the factorizations of the step sizes in use (steps are ``gap / 2^k`` of
the interval between two dose events, so only a handful of sizes occur).

Time stepping takes any stiffly accurate ESDIRK tableau (``gamma``,
``stage_coeffs`` = the Butcher matrix, ``error_weights`` = ``b - b_hat``);
the four-stage case (``esdirk3``) has its passes over the state fused. The
stage derivatives ``F_i = J Y_i + u`` are recovered from the stage equations
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

import numpy as np
from numba import njit, prange

from csfmodel.solvers._options import Summary
from csfmodel.solvers._tableaus import INTERP_SLACK, INTERP_WINDOW

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
def _factor_shifted(c, lower, diag, upper, cord_diag, csf_to_cord, cord_to_csf, border_rows,
                    border_cols, block, active_cols, row_ptr, row_idx,
                    pivot_inv, fwd_mult, back_mult, cord_gain, cord_feed, cord_pivot_inv,
                    border_sol, schur_inv, work_r, work_x, schur):
    """Factorize ``I - c J`` into the arrays of one cache slot."""
    n = diag.shape[0]
    n_cord = cord_diag.shape[0]
    m = block.shape[0]
    # cord elimination and Thomas forward sweep
    for j in range(n_cord):
        e = 1.0 - c * cord_diag[j]
        cord_pivot_inv[j] = 1.0 / e
        cord_gain[j] = c * csf_to_cord[j] / e
        cord_feed[j] = c * cord_to_csf[j] / e
    # twisted factorization of the tridiagonal: rows 0..p-1 eliminated downwards,
    # rows n-1..p+1 upwards, meeting at p (two independent recurrences per sweep)
    for i in range(n):
        dd = 1.0 - c * diag[i]
        if i < n_cord:
            dd -= c * cord_to_csf[i] * cord_gain[i]
        pivot_inv[i] = dd
    p = n // 2
    prev = 0.0
    for i in range(p):
        ai = -c * lower[i - 1] if i > 0 else 0.0
        bi = -c * upper[i]
        di = 1.0 / (pivot_inv[i] - ai * prev)
        pivot_inv[i] = di
        fwd_mult[i] = ai * di
        back_mult[i] = bi * di
        prev = back_mult[i]
    cpf = prev
    prev = 0.0
    for i in range(n - 1, p, -1):
        ai = -c * lower[i - 1]
        bi = -c * upper[i] if i < n - 1 else 0.0
        di = 1.0 / (pivot_inv[i] - bi * prev)
        pivot_inv[i] = di
        fwd_mult[i] = bi * di
        back_mult[i] = ai * di
        prev = back_mult[i]
    ap = -c * lower[p - 1] if p > 0 else 0.0
    bp = -c * upper[p] if p < n - 1 else 0.0
    di = 1.0 / (pivot_inv[p] - ap * cpf - bp * prev)
    pivot_inv[p] = di
    fwd_mult[p] = ap * di
    back_mult[p] = bp * di
    # border_sol = T^{-1} (-c B) for the active border columns
    n_spatial = n + n_cord
    for a in range(active_cols.shape[0]):
        k = active_cols[a]
        for i in range(n_spatial):
            work_r[i] = -c * border_cols[i, k]
        _solve_spatial(pivot_inv, fwd_mult, back_mult, cord_gain, cord_feed, cord_pivot_inv,
                       work_r, work_x, n, n_cord)
        for i in range(n_spatial):
            border_sol[i, a] = work_x[i]
    # Schur complement schur = (I - c K) - (-c R) border_sol
    for k in range(m):
        for l2 in range(m):
            schur[k, l2] = -c * block[k, l2]
        schur[k, k] += 1.0
    for k in range(m):
        for p in range(row_ptr[k], row_ptr[k + 1]):
            i = row_idx[p]
            v = -c * border_rows[k, i]
            for a in range(active_cols.shape[0]):
                schur[k, active_cols[a]] -= v * border_sol[i, a]
    _invert(schur, schur_inv)


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
def _solve_spatial(pivot_inv, fwd_mult, back_mult, cord_gain, cord_feed, cord_pivot_inv, r, x,
                   n, n_cord):
    """Solve the spatial block (spinal tridiagonal + cord) ``T x = r``.

    Twisted factorization: the sweeps run from both ends towards ``p = n // 2``
    and back_mult, so each loop carries two independent multiply-add recurrences
    (half the latency of the Thomas algorithm).
    """
    for i in range(n_cord):
        x[i] = (r[i] + cord_feed[i] * r[n + i]) * pivot_inv[i]
    for i in range(n_cord, n):
        x[i] = r[i] * pivot_inv[i]
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
        gf = x[i] - fwd_mult[i] * gf
        x[i] = gf
        gb = x[i2] - fwd_mult[i2] * gb
        x[i2] = gb
    for i in range(max(common, 1), nf):
        gf = x[i] - fwd_mult[i] * gf
        x[i] = gf
    for s in range(max(common, 1), nb):
        i2 = n - 1 - s
        gb = x[i2] - fwd_mult[i2] * gb
        x[i2] = gb
    xp = x[p]
    if p > 0:
        xp -= fwd_mult[p] * x[p - 1]
    if p < n - 1:
        xp -= back_mult[p] * x[p + 1]
    x[p] = xp
    up = xp
    dn = xp
    for s in range(1, common + 1):
        i = p - s
        i2 = p + s
        up = x[i] - back_mult[i] * up
        x[i] = up
        dn = x[i2] - back_mult[i2] * dn
        x[i2] = dn
    for i in range(p - common - 1, -1, -1):
        up = x[i] - back_mult[i] * up
        x[i] = up
    for i2 in range(p + common + 1, n):
        dn = x[i2] - back_mult[i2] * dn
        x[i2] = dn
    for j in range(n_cord):
        x[n + j] = r[n + j] * cord_pivot_inv[j] + cord_gain[j] * x[j]


@njit(cache=True, error_model="numpy", inline="always", fastmath={"reassoc", "contract"})
def _row_dot(border_rows, k, row_ptr, row_idx, x, n_spatial):
    """``border_rows[k] . x[:n_spatial]``: over the row's nonzeros, or (if at least half
    of the row is nonzero) over the whole row, contiguously with 4 accumulators."""
    p0 = row_ptr[k]
    p1 = row_ptr[k + 1]
    if 2 * (p1 - p0) >= n_spatial:
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        i = 0
        while i + 3 < n_spatial:
            a0 += border_rows[k, i] * x[i]
            a1 += border_rows[k, i + 1] * x[i + 1]
            a2 += border_rows[k, i + 2] * x[i + 2]
            a3 += border_rows[k, i + 3] * x[i + 3]
            i += 4
        while i < n_spatial:
            a0 += border_rows[k, i] * x[i]
            i += 1
        return (a0 + a1) + (a2 + a3)
    acc = 0.0
    for p in range(p0, p1):
        acc += border_rows[k, row_idx[p]] * x[row_idx[p]]
    return acc


@njit(cache=True, error_model="numpy", inline="always")
def _solve_shifted(c, border_rows, active_cols, row_ptr, row_idx, pivot_inv, fwd_mult, back_mult,
                   cord_gain, cord_feed, cord_pivot_inv, border_sol, schur_inv, r, x, t, w):
    """Solve ``(I - cJ) x = r`` with a cached factorization (O(N + M) work)."""
    n = pivot_inv.shape[0]
    n_cord = cord_pivot_inv.shape[0]
    n_spatial = n + n_cord
    m = schur_inv.shape[0]
    n_active = active_cols.shape[0]
    _solve_spatial(pivot_inv, fwd_mult, back_mult, cord_gain, cord_feed, cord_pivot_inv, r, x,
                   n, n_cord)
    for k in range(m):
        t[k] = r[n_spatial + k]
        if row_ptr[k + 1] > row_ptr[k]:
            t[k] += c * _row_dot(border_rows, k, row_ptr, row_idx, x, n_spatial)
    for k in range(m):
        acc = 0.0
        for l2 in range(m):
            acc += schur_inv[k, l2] * t[l2]
        w[k] = acc
        x[n_spatial + k] = acc
    if n_active == 1:
        w0 = w[active_cols[0]]
        for i in range(n_spatial):
            x[i] -= border_sol[i, 0] * w0
    elif n_active == 2:
        w0 = w[active_cols[0]]
        w1 = w[active_cols[1]]
        for i in range(n_spatial):
            x[i] -= border_sol[i, 0] * w0 + border_sol[i, 1] * w1
    else:
        for i in range(n_spatial):
            acc = 0.0
            for a in range(n_active):
                acc += border_sol[i, a] * w[active_cols[a]]
            x[i] -= acc


@njit(cache=True, error_model="numpy", inline="always")
def _solve_spatial2(pivot_inv, fwd_mult, back_mult, cord_gain, cord_feed, cord_pivot_inv, r, x,
                    r2, x2, n, n_cord):
    """:func:`_solve_spatial` for two right-hand sides at once (``r -> x``, ``r2 -> x2``).

    The same operations in the same order for each (the results are bit-identical to
    two single solves); the two systems' recurrences are interleaved in scalar
    registers, four independent chains per sweep instead of two. A sweep is bound by
    the latency of its multiply-add chain, so the pair costs ~0.6 of two single
    solves (the sensitivity kernel pairs the solves that do not depend on each other).
    """
    for i in range(n_cord):
        x[i] = (r[i] + cord_feed[i] * r[n + i]) * pivot_inv[i]
        x2[i] = (r2[i] + cord_feed[i] * r2[n + i]) * pivot_inv[i]
    for i in range(n_cord, n):
        x[i] = r[i] * pivot_inv[i]
        x2[i] = r2[i] * pivot_inv[i]
    p = n // 2
    nf = p            # rows 0..p-1
    nb = n - 1 - p    # rows n-1..p+1
    gf = hf = gb = hb = 0.0
    if nf > 0:
        gf = x[0]
        hf = x2[0]
    if nb > 0:
        gb = x[n - 1]
        hb = x2[n - 1]
    common = min(nf, nb)
    for s in range(1, common):
        i = s
        i2 = n - 1 - s
        fi = fwd_mult[i]
        fi2 = fwd_mult[i2]
        gf = x[i] - fi * gf
        x[i] = gf
        gb = x[i2] - fi2 * gb
        x[i2] = gb
        hf = x2[i] - fi * hf
        x2[i] = hf
        hb = x2[i2] - fi2 * hb
        x2[i2] = hb
    for i in range(max(common, 1), nf):
        gf = x[i] - fwd_mult[i] * gf
        x[i] = gf
        hf = x2[i] - fwd_mult[i] * hf
        x2[i] = hf
    for s in range(max(common, 1), nb):
        i2 = n - 1 - s
        gb = x[i2] - fwd_mult[i2] * gb
        x[i2] = gb
        hb = x2[i2] - fwd_mult[i2] * hb
        x2[i2] = hb
    xp = x[p]
    xp2 = x2[p]
    if p > 0:
        xp -= fwd_mult[p] * x[p - 1]
        xp2 -= fwd_mult[p] * x2[p - 1]
    if p < n - 1:
        xp -= back_mult[p] * x[p + 1]
        xp2 -= back_mult[p] * x2[p + 1]
    x[p] = xp
    x2[p] = xp2
    up = dn = xp
    up2 = dn2 = xp2
    for s in range(1, common + 1):
        i = p - s
        i2 = p + s
        bi = back_mult[i]
        bi2 = back_mult[i2]
        up = x[i] - bi * up
        x[i] = up
        dn = x[i2] - bi2 * dn
        x[i2] = dn
        up2 = x2[i] - bi * up2
        x2[i] = up2
        dn2 = x2[i2] - bi2 * dn2
        x2[i2] = dn2
    for i in range(p - common - 1, -1, -1):
        up = x[i] - back_mult[i] * up
        x[i] = up
        up2 = x2[i] - back_mult[i] * up2
        x2[i] = up2
    for i2 in range(p + common + 1, n):
        dn = x[i2] - back_mult[i2] * dn
        x[i2] = dn
        dn2 = x2[i2] - back_mult[i2] * dn2
        x2[i2] = dn2
    for j in range(n_cord):
        x[n + j] = r[n + j] * cord_pivot_inv[j] + cord_gain[j] * x[j]
        x2[n + j] = r2[n + j] * cord_pivot_inv[j] + cord_gain[j] * x2[j]


@njit(cache=True, error_model="numpy", inline="always")
def _solve_shifted2(c, border_rows, active_cols, row_ptr, row_idx, pivot_inv, fwd_mult,
                    back_mult, cord_gain, cord_feed, cord_pivot_inv, border_sol, schur_inv, r, x,
                    r2, x2, t, w, t2, w2):
    """:func:`_solve_shifted` for two right-hand sides (``r -> x``, ``r2 -> x2``):
    bit-identical to two single solves, ~0.6 of their cost (:func:`_solve_spatial2`)."""
    n = pivot_inv.shape[0]
    n_cord = cord_pivot_inv.shape[0]
    n_spatial = n + n_cord
    m = schur_inv.shape[0]
    n_active = active_cols.shape[0]
    _solve_spatial2(pivot_inv, fwd_mult, back_mult, cord_gain, cord_feed, cord_pivot_inv, r, x,
                    r2, x2, n, n_cord)
    for k in range(m):
        t[k] = r[n_spatial + k]
        t2[k] = r2[n_spatial + k]
        if row_ptr[k + 1] > row_ptr[k]:
            t[k] += c * _row_dot(border_rows, k, row_ptr, row_idx, x, n_spatial)
            t2[k] += c * _row_dot(border_rows, k, row_ptr, row_idx, x2, n_spatial)
    for k in range(m):
        acc = 0.0
        acc2 = 0.0
        for l2 in range(m):
            acc += schur_inv[k, l2] * t[l2]
            acc2 += schur_inv[k, l2] * t2[l2]
        w[k] = acc
        x[n_spatial + k] = acc
        w2[k] = acc2
        x2[n_spatial + k] = acc2
    if n_active == 1:
        a0 = active_cols[0]
        w0 = w[a0]
        v0 = w2[a0]
        for i in range(n_spatial):
            x[i] -= border_sol[i, 0] * w0
            x2[i] -= border_sol[i, 0] * v0
    elif n_active == 2:
        a0 = active_cols[0]
        a1 = active_cols[1]
        w0 = w[a0]
        w1 = w[a1]
        v0 = w2[a0]
        v1 = w2[a1]
        for i in range(n_spatial):
            b0 = border_sol[i, 0]
            b1 = border_sol[i, 1]
            x[i] -= b0 * w0 + b1 * w1
            x2[i] -= b0 * v0 + b1 * v1
    else:
        for i in range(n_spatial):
            acc = 0.0
            acc2 = 0.0
            for a in range(n_active):
                acc += border_sol[i, a] * w[active_cols[a]]
                acc2 += border_sol[i, a] * w2[active_cols[a]]
            x[i] -= acc
            x2[i] -= acc2


@njit(cache=True, error_model="numpy", inline="always")
def _solve_spatial3(pivot_inv, fwd_mult, back_mult, cord_gain, cord_feed, cord_pivot_inv, r, x,
                    r2, x2, r3, x3, n, n_cord):
    """:func:`_solve_spatial` for three right-hand sides at once, as
    :func:`_solve_spatial2` does for two (six independent chains per sweep; ~0.55 of
    three single solves, against ~0.6 of two for a pair)."""
    for i in range(n_cord):
        x[i] = (r[i] + cord_feed[i] * r[n + i]) * pivot_inv[i]
        x2[i] = (r2[i] + cord_feed[i] * r2[n + i]) * pivot_inv[i]
        x3[i] = (r3[i] + cord_feed[i] * r3[n + i]) * pivot_inv[i]
    for i in range(n_cord, n):
        x[i] = r[i] * pivot_inv[i]
        x2[i] = r2[i] * pivot_inv[i]
        x3[i] = r3[i] * pivot_inv[i]
    p = n // 2
    nf = p            # rows 0..p-1
    nb = n - 1 - p    # rows n-1..p+1
    gf = hf = kf = gb = hb = kb = 0.0
    if nf > 0:
        gf = x[0]
        hf = x2[0]
        kf = x3[0]
    if nb > 0:
        gb = x[n - 1]
        hb = x2[n - 1]
        kb = x3[n - 1]
    common = min(nf, nb)
    for s in range(1, common):
        i = s
        i2 = n - 1 - s
        fi = fwd_mult[i]
        fi2 = fwd_mult[i2]
        gf = x[i] - fi * gf
        x[i] = gf
        gb = x[i2] - fi2 * gb
        x[i2] = gb
        hf = x2[i] - fi * hf
        x2[i] = hf
        hb = x2[i2] - fi2 * hb
        x2[i2] = hb
        kf = x3[i] - fi * kf
        x3[i] = kf
        kb = x3[i2] - fi2 * kb
        x3[i2] = kb
    for i in range(max(common, 1), nf):
        gf = x[i] - fwd_mult[i] * gf
        x[i] = gf
        hf = x2[i] - fwd_mult[i] * hf
        x2[i] = hf
        kf = x3[i] - fwd_mult[i] * kf
        x3[i] = kf
    for s in range(max(common, 1), nb):
        i2 = n - 1 - s
        gb = x[i2] - fwd_mult[i2] * gb
        x[i2] = gb
        hb = x2[i2] - fwd_mult[i2] * hb
        x2[i2] = hb
        kb = x3[i2] - fwd_mult[i2] * kb
        x3[i2] = kb
    xp = x[p]
    xp2 = x2[p]
    xp3 = x3[p]
    if p > 0:
        xp -= fwd_mult[p] * x[p - 1]
        xp2 -= fwd_mult[p] * x2[p - 1]
        xp3 -= fwd_mult[p] * x3[p - 1]
    if p < n - 1:
        xp -= back_mult[p] * x[p + 1]
        xp2 -= back_mult[p] * x2[p + 1]
        xp3 -= back_mult[p] * x3[p + 1]
    x[p] = xp
    x2[p] = xp2
    x3[p] = xp3
    up = dn = xp
    up2 = dn2 = xp2
    up3 = dn3 = xp3
    for s in range(1, common + 1):
        i = p - s
        i2 = p + s
        bi = back_mult[i]
        bi2 = back_mult[i2]
        up = x[i] - bi * up
        x[i] = up
        dn = x[i2] - bi2 * dn
        x[i2] = dn
        up2 = x2[i] - bi * up2
        x2[i] = up2
        dn2 = x2[i2] - bi2 * dn2
        x2[i2] = dn2
        up3 = x3[i] - bi * up3
        x3[i] = up3
        dn3 = x3[i2] - bi2 * dn3
        x3[i2] = dn3
    for i in range(p - common - 1, -1, -1):
        up = x[i] - back_mult[i] * up
        x[i] = up
        up2 = x2[i] - back_mult[i] * up2
        x2[i] = up2
        up3 = x3[i] - back_mult[i] * up3
        x3[i] = up3
    for i2 in range(p + common + 1, n):
        dn = x[i2] - back_mult[i2] * dn
        x[i2] = dn
        dn2 = x2[i2] - back_mult[i2] * dn2
        x2[i2] = dn2
        dn3 = x3[i2] - back_mult[i2] * dn3
        x3[i2] = dn3
    for j in range(n_cord):
        x[n + j] = r[n + j] * cord_pivot_inv[j] + cord_gain[j] * x[j]
        x2[n + j] = r2[n + j] * cord_pivot_inv[j] + cord_gain[j] * x2[j]
        x3[n + j] = r3[n + j] * cord_pivot_inv[j] + cord_gain[j] * x3[j]


@njit(cache=True, error_model="numpy", inline="always")
def _solve_border3(c, border_rows, active_cols, row_ptr, row_idx, border_sol, schur_inv, r, x,
                   r2, x2, r3, x3, t, w, t2, w2, t3, w3, n_spatial):
    """The border part of :func:`_solve_shifted` for three right-hand sides whose
    spatial part is solved (one pass over ``border_sol`` for the three)."""
    m = schur_inv.shape[0]
    n_active = active_cols.shape[0]
    for k in range(m):
        t[k] = r[n_spatial + k]
        t2[k] = r2[n_spatial + k]
        t3[k] = r3[n_spatial + k]
        if row_ptr[k + 1] > row_ptr[k]:
            t[k] += c * _row_dot(border_rows, k, row_ptr, row_idx, x, n_spatial)
            t2[k] += c * _row_dot(border_rows, k, row_ptr, row_idx, x2, n_spatial)
            t3[k] += c * _row_dot(border_rows, k, row_ptr, row_idx, x3, n_spatial)
    for k in range(m):
        acc = 0.0
        acc2 = 0.0
        acc3 = 0.0
        for l2 in range(m):
            acc += schur_inv[k, l2] * t[l2]
            acc2 += schur_inv[k, l2] * t2[l2]
            acc3 += schur_inv[k, l2] * t3[l2]
        w[k] = acc
        x[n_spatial + k] = acc
        w2[k] = acc2
        x2[n_spatial + k] = acc2
        w3[k] = acc3
        x3[n_spatial + k] = acc3
    if n_active == 1:
        a0 = active_cols[0]
        w0 = w[a0]
        v0 = w2[a0]
        z0 = w3[a0]
        for i in range(n_spatial):
            x[i] -= border_sol[i, 0] * w0
            x2[i] -= border_sol[i, 0] * v0
            x3[i] -= border_sol[i, 0] * z0
    elif n_active == 2:
        a0 = active_cols[0]
        a1 = active_cols[1]
        w0 = w[a0]
        w1 = w[a1]
        v0 = w2[a0]
        v1 = w2[a1]
        z0 = w3[a0]
        z1 = w3[a1]
        for i in range(n_spatial):
            b0 = border_sol[i, 0]
            b1 = border_sol[i, 1]
            x[i] -= b0 * w0 + b1 * w1
            x2[i] -= b0 * v0 + b1 * v1
            x3[i] -= b0 * z0 + b1 * z1
    else:
        for i in range(n_spatial):
            acc = 0.0
            acc2 = 0.0
            acc3 = 0.0
            for a in range(n_active):
                acc += border_sol[i, a] * w[active_cols[a]]
                acc2 += border_sol[i, a] * w2[active_cols[a]]
                acc3 += border_sol[i, a] * w3[active_cols[a]]
            x[i] -= acc
            x2[i] -= acc2
            x3[i] -= acc3


@njit(cache=True, error_model="numpy", inline="always")
def _solve_shifted3(c, border_rows, active_cols, row_ptr, row_idx, pivot_inv, fwd_mult,
                    back_mult, cord_gain, cord_feed, cord_pivot_inv, border_sol, schur_inv, r, x,
                    r2, x2, r3, x3, t, w, t2, w2, t3, w3):
    """:func:`_solve_shifted` for three right-hand sides, bit-identical to three single
    solves (:func:`_solve_spatial3`)."""
    n = pivot_inv.shape[0]
    n_cord = cord_pivot_inv.shape[0]
    _solve_spatial3(pivot_inv, fwd_mult, back_mult, cord_gain, cord_feed, cord_pivot_inv, r, x,
                    r2, x2, r3, x3, n, n_cord)
    _solve_border3(c, border_rows, active_cols, row_ptr, row_idx, border_sol, schur_inv, r, x,
                   r2, x2, r3, x3, t, w, t2, w2, t3, w3, n + n_cord)


@njit(cache=True, error_model="numpy")
def _jacobian_times(lower, diag, upper, cord_diag, csf_to_cord, cord_to_csf, border_rows,
                    border_cols, block, active_cols, row_ptr, row_idx, y, u, out):
    """``out = J y + u`` using the structure."""
    n = diag.shape[0]
    n_cord = cord_diag.shape[0]
    n_spatial = n + n_cord
    m = block.shape[0]
    for i in range(n):
        v = diag[i] * y[i]
        if i > 0:
            v += lower[i - 1] * y[i - 1]
        if i < n - 1:
            v += upper[i] * y[i + 1]
        if i < n_cord:
            v += cord_to_csf[i] * y[n + i]
        out[i] = v
    for j in range(n_cord):
        out[n + j] = cord_diag[j] * y[n + j] + csf_to_cord[j] * y[j]
    for a in range(active_cols.shape[0]):
        k = active_cols[a]
        yk = y[n_spatial + k]
        if yk != 0.0:
            for i in range(n_spatial):
                out[i] += border_cols[i, k] * yk
    for k in range(m):
        v = _row_dot(border_rows, k, row_ptr, row_idx, y, n_spatial)
        for l2 in range(m):
            v += block[k, l2] * y[n_spatial + l2]
        out[n_spatial + k] = v
    for i in range(out.shape[0]):
        out[i] += u[i]


@njit(cache=True, error_model="numpy")
def _write_row(y, out, row, obs_ptr, obs_idx, obs_w):
    """Write the state (or its projection onto the observables) into ``out[row]``."""
    if obs_ptr.shape[0] == 0:
        for i in range(y.shape[0]):
            out[row, i] = y[i]
    else:
        for q in range(obs_ptr.shape[0] - 1):
            acc = 0.0
            for p in range(obs_ptr[q], obs_ptr[q + 1]):
                acc += obs_w[p] * y[obs_idx[p]]
            out[row, q] = acc


@njit(cache=True, error_model="numpy", inline="always")
def _project_observables(y, ob, obs_ptr, obs_idx, obs_w):
    """``ob = O y`` for the CSR observables."""
    for q in range(obs_ptr.shape[0] - 1):
        acc = 0.0
        for p in range(obs_ptr[q], obs_ptr[q + 1]):
            acc += obs_w[p] * y[obs_idx[p]]
        ob[q] = acc


#: rows of a summary (``summary`` ``(rows, n_obs)``): the first four always, the
#: others when ``summary`` has :data:`SUMMARY_ROWS` rows (see :func:`_record_summary`;
#: their names are :attr:`csfmodel.solvers.Summary.ROWS`)
SUMMARY_ROWS = len(Summary.ROWS)
#: entries of a summary's specification ``spec``: window start t0 (min), its first
#: interpolation interval k0 and weight w0, its inner samples [ia, ib), the weight w1
#: of its end in the last interval, the threshold, the effect-site row and its
#: elimination rate ke (1/min; inf: the effect site follows the row)
SPEC_SIZE = 9


@njit(cache=True, inline="always")
def summary_scratch_size(n_obs):
    """Entries of the extended summary's scratch ``aux``: the window's previous value and
    running integral per observable, then the effect-site value and the step and
    coefficients of the last interval."""
    return 2 * n_obs + 4


@njit(cache=True, error_model="numpy", inline="always")
def _record_summary(io, t_out, vals, summary, prev, spec, aux):
    """Update a summary with the observables ``vals`` at output ``io`` (outputs in order).

    Rows 0-3: maximum, time of its first occurrence (min), trapezoidal integral over
    ``t_out`` (x min), final value. With :data:`SUMMARY_ROWS` rows also (the
    definitions of :mod:`csfmodel.metrics` and :mod:`csfmodel.effects`, in minutes):

    4. the mean over the window ``[t0, t_end]``: trapezoids over the samples inside,
       both ends interpolated linearly (``spec[0:6]``, from :func:`summary_spec`);
    5. the time at or above ``spec[6]``: whole intervals where both ends are at or
       above it, the linearly interpolated part of an interval that crosses it;
    6. the maximum of the effect-site value of row ``spec[7]``,
       ``dCe/dt = ke (C - Ce)``, ``Ce(0) = 0``, solved exactly for ``C`` linear between
       samples: ``Ce' = a Ce + (1 - a) C_i + l (C_{i+1} - C_i)`` with ``a = exp(-ke dt)``
       and ``l = 1 - (1 - a) / (ke dt)`` (``ke dt / 2`` below 1e-8); in column
       ``spec[7]`` only.

    ``prev`` holds the previous output's values, ``aux``
    (:func:`summary_scratch_size`) the window's and effect site's running state.
    """
    n_obs = vals.shape[0]
    if io == 0:
        for q in range(n_obs):
            summary[0, q] = vals[q]
            summary[1, q] = t_out[0]
            summary[2, q] = 0.0
    else:
        dt = 0.5 * (t_out[io] - t_out[io - 1])
        for q in range(n_obs):
            v = vals[q]
            if v > summary[0, q]:
                summary[0, q] = v
                summary[1, q] = t_out[io]
            summary[2, q] += dt * (v + prev[q])
    if summary.shape[0] >= SUMMARY_ROWS:
        _record_extended(io, t_out, vals, summary, prev, spec, aux)
    for q in range(n_obs):
        summary[3, q] = vals[q]
        prev[q] = vals[q]


@njit(cache=True, error_model="numpy", inline="always")
def _record_extended(io, t_out, vals, summary, prev, spec, aux):
    """Rows 4-6 of :func:`_record_summary`."""
    n_obs = vals.shape[0]
    n_out = t_out.shape[0]
    t0, k0, w0, ia, ib, w1 = spec[0], int(spec[1]), spec[2], int(spec[3]), int(spec[4]), spec[5]
    thr, er, ke = spec[6], int(spec[7]), spec[8]
    if io == 0:
        for q in range(n_obs):
            summary[4, q] = 0.0
            summary[5, q] = 0.0
            summary[6, q] = 0.0
            aux[n_obs + q] = 0.0
        aux[2 * n_obs] = 0.0
        aux[2 * n_obs + 1] = -1.0
        if ke == np.inf and er >= 0:
            aux[2 * n_obs] = vals[er]
            summary[6, er] = vals[er]
        if n_out == 1:                  # a window of no length: the value itself
            for q in range(n_obs):
                summary[4, q] = vals[q]
        return
    # window mean: its start (interpolated in [k0, k0 + 1]), the inner samples, its end
    if io == k0 + 1:
        for q in range(n_obs):
            aux[q] = (1 - w0) * prev[q] + w0 * vals[q]
    if ia <= io < ib:
        d = t_out[io] - (t0 if io == ia else t_out[io - 1])
        for q in range(n_obs):
            y = vals[q]
            aux[n_obs + q] += d * (y + aux[q]) / 2.0
            aux[q] = y
    if io == n_out - 1:
        d = t_out[io] - (t_out[ib - 1] if ib > ia else t0)
        length = t_out[io] - t0
        for q in range(n_obs):
            last = (1 - w1) * prev[q] + w1 * vals[q]
            ac = aux[n_obs + q] + d * (last + aux[q]) / 2.0
            summary[4, q] = ac / length if length > 0 else last
    # time at or above the threshold
    if thr < np.inf:
        d = t_out[io] - t_out[io - 1]
        for q in range(n_obs):
            a, b = prev[q], vals[q]
            if a >= thr:
                if b >= thr:
                    summary[5, q] += d
                else:
                    frac = (thr - a) / (b - a) if b != a else 0.0
                    summary[5, q] += frac * d
            elif b >= thr:
                frac = (thr - a) / (b - a) if b != a else 0.0
                summary[5, q] += (1.0 - frac) * d
    # effect site
    if er >= 0:
        j = 2 * n_obs
        if ke == np.inf:
            ce = vals[er]
        else:
            dt = t_out[io] - t_out[io - 1]
            if dt != aux[j + 1]:
                kh = ke * dt
                a = np.exp(-kh)
                aux[j + 1] = dt
                aux[j + 2] = a
                aux[j + 3] = 1.0 - (1.0 - a) / kh if kh > 1e-8 else 0.5 * kh
            a = aux[j + 2]
            ce = a * aux[j] + (1.0 - a) * prev[er] + aux[j + 3] * (vals[er] - prev[er])
        aux[j] = ce
        if ce > summary[6, er]:
            summary[6, er] = ce


@njit(cache=True, nogil=True, error_model="numpy")
def summarize_series(values, t_out, summary, spec):
    """:func:`_record_summary` over stored series ``values`` ``(B, T, n_obs)`` into
    ``summary`` ``(B, rows, n_obs)`` (``spec`` ``(B, SPEC_SIZE)``): the summaries of a
    backend that returns series, the same arithmetic as inside the kernel."""
    B, T, n_obs = values.shape
    prev = np.zeros(n_obs)
    aux = np.zeros(summary_scratch_size(n_obs))
    for b in range(B):
        for io in range(T):
            _record_summary(io, t_out, values[b, io], summary[b], prev, spec[b], aux)


@njit(cache=True, error_model="numpy", inline="always")
def _hermite(th, h, y0, y1, f0, f1):
    """Cubic Hermite interpolant at ``t0 + th h`` from values and slopes at both ends."""
    d = y1 - y0
    return y0 + th * d + th * (th - 1.0) * ((1.0 - 2.0 * th) * d + (th - 1.0) * h * f0
                                           + th * h * f1)


@njit(cache=True, error_model="numpy", inline="always")
def _interpolant_gap(y, y1, f0, f1, ys, ivol, th, h, i0, i1):
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
def _group_error(est, y, ivol, i0, i1):
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


@njit(cache=True, error_model="numpy", inline="always")
def _ladder_after_accept(err, h, max_step, k, nsub, j, gap):
    """Step-size control after an accepted step: the target step h * fac (third-order
    error, growth at most 4x, never beyond ``max_step``), and the dyadic ladder of the gap
    (``gap / nsub``, ``nsub = 2**k``, step ``j``) coarsened while the position is aligned
    on the coarser rung and the target allows it. Returns (h_target, k, nsub, j)."""
    fac = 4.0 if err < 1e-6 else min(4.0, 0.9 * err ** (-1.0 / 3.0))
    h_target = min(h * fac, max_step)
    while k > 0 and j % 2 == 0 and h_target >= 2.0 * (gap / nsub):
        k -= 1
        nsub //= 2
        j //= 2
    return h_target, k, nsub, j


@njit(cache=True, error_model="numpy", inline="always")
def _ladder_after_reject(err, h, k, nsub, j, gap):
    """Step-size control after a rejected step: shrink to h * fac (at least 1/20) and
    refine the dyadic ladder until its rung is no longer than the target (at most 60
    halvings). Returns (h_target, k, nsub, j)."""
    fac = max(0.05, 0.9 * err ** (-1.0 / 3.0))
    h_target = h * fac
    while gap / nsub > h_target and k < 60:
        k += 1
        nsub *= 2
        j *= 2
    return h_target, k, nsub, j


@njit(cache=True, error_model="numpy")
def integrate(lower, diag, upper, cord_diag, csf_to_cord, cord_to_csf, border_rows, border_cols,
              block, volume, active_cols, row_ptr, row_idx, times, jumps, rates, t_end, t_out, y0,
              obs_ptr, obs_idx, obs_w, gamma, stage_coeffs, error_weights, rtol, atol_floor,
              max_step, first_step, adaptive, out, stats, summary, spec, resume, io_stop):
    """Integrate ``dy/dt = J y + u`` with jumps over ``[0, t_end]``.

    Writes the state (or the observables ``o_*``, CSR rows over the state) at
    ``t_out`` into ``out`` and the step statistics into ``stats``. If ``summary``
    has columns (one per observable), ``out`` is left alone and ``summary`` gets
    each observable's maximum, time of maximum, trapezoidal integral over
    ``t_out`` and final value (rows 0-3) and, with :data:`SUMMARY_ROWS` rows, the
    rows of :func:`_record_summary` that ``spec`` describes (summaries need the
    whole run in one call: no windows).

    The run can be done in windows: it returns once the outputs before index
    ``io_stop`` are written (stepping exactly to ``t_out[io_stop - 1]``), with
    the integrator's state saved in ``resume`` (``RESUME_SIZE + 2 + m``) and the
    state vector in ``y0``; a call with ``resume[0] == 1`` continues from there. With
    ``adaptive`` false every step is ``min(max_step, gap)`` divided into equal
    powers of two of the gap between dose events, with no error control (used
    to measure the order of the method).
    """
    n = diag.shape[0]
    n_cord = cord_diag.shape[0]
    n_spatial = n + n_cord
    m = block.shape[0]
    n_state = n_spatial + m
    n_active = active_cols.shape[0]
    # factorization cache
    keys = np.full(N_CACHE, -1.0)
    cache_pivot_inv = np.empty((N_CACHE, n))
    cache_fwd_mult = np.empty((N_CACHE, n))
    cache_back_mult = np.empty((N_CACHE, n))
    cache_cord_gain = np.empty((N_CACHE, n_cord))
    cache_cord_feed = np.empty((N_CACHE, n_cord))
    cache_cord_pivot_inv = np.empty((N_CACHE, n_cord))
    cache_border_sol = np.empty((N_CACHE, n_spatial, n_active))
    cache_schur_inv = np.empty((N_CACHE, m, m))
    next_slot = 0
    schur_work = np.empty((m, m))
    work_r = np.empty(n_state)
    work_x = np.empty(n_state)
    work_t = np.empty(m)
    work_w = np.empty(m)
    # state and stage vectors
    y = y0.copy()
    n_stages = stage_coeffs.shape[0]
    F = np.empty((n_stages, n_state))
    ys = np.empty(n_state)
    c1 = stage_coeffs[1, 0] + stage_coeffs[1, 1]
    n_obs = max(obs_ptr.shape[0] - 1, 0)
    ob0 = np.empty(n_obs)
    ob1 = np.empty(n_obs)
    obf0 = np.empty(n_obs)
    obf1 = np.empty(n_obs)
    obt = np.empty(n_obs)
    prev = np.zeros(n_obs)
    aux = np.zeros(summary_scratch_size(n_obs))
    summarize = summary.shape[1] > 0 and n_obs > 0
    y1 = np.empty(n_state)
    est = np.empty(n_state)
    rhs = np.empty(n_state)
    u = np.zeros(n_state)
    ivol = 1.0 / volume
    # absolute floor of the error scale as a concentration (amount floor / largest cell)
    fl_s = atol_floor / max(np.max(volume[:n]), 1e-300)
    fl_c = atol_floor / max(np.max(volume[n:n_spatial]), 1e-300) if n_cord > 0 else 1.0
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
            for i in range(n_state):
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
            for i in range(n_state):
                if jumps[ke, i] != 0.0 or rates[ke, i] != u[i]:
                    first_after_jump = True    # a new transient starts here
                    t_event = t
                    break
            for i in range(n_state):
                y[i] += jumps[ke, i]
                u[i] = rates[ke, i]
            ke += 1
            changed = True
        while io < n_out and t_out[io] <= t:
            if summarize:
                _project_observables(y, ob0, obs_ptr, obs_idx, obs_w)
                _record_summary(io, t_out, ob0, summary, prev, spec, aux)
            else:
                _write_row(y, out, io - row0, obs_ptr, obs_idx, obs_w)
            io += 1
        if t >= t_end or io >= n_out or io >= io_stop:
            break
        stop = t_end
        if ke < K and times[ke] < stop:
            stop = times[ke]
        if t < t_window < stop:
            stop = t_window
        gap = stop - t
        _jacobian_times(lower, diag, upper, cord_diag, csf_to_cord, cord_to_csf, border_rows,
                        border_cols, block, active_cols, row_ptr, row_idx, y, u, F[0])
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
                _factor_shifted(c, lower, diag, upper, cord_diag, csf_to_cord, cord_to_csf,
                                border_rows, border_cols, block, active_cols, row_ptr, row_idx,
                                cache_pivot_inv[slot], cache_fwd_mult[slot],
                                cache_back_mult[slot], cache_cord_gain[slot],
                                cache_cord_feed[slot], cache_cord_pivot_inv[slot],
                                cache_border_sol[slot], cache_schur_inv[slot], work_r, work_x,
                                schur_work)
                stats[ST_FACTORIZATIONS] += 1.0
            pivot_inv = cache_pivot_inv[slot]
            fwd_mult = cache_fwd_mult[slot]
            back_mult = cache_back_mult[slot]
            cord_gain = cache_cord_gain[slot]
            cord_feed = cache_cord_feed[slot]
            cord_pivot_inv = cache_cord_pivot_inv[slot]
            border_sol = cache_border_sol[slot]
            schur_inv = cache_schur_inv[slot]
            # implicit stages: (I - gamma h J) Y_i = y + h sum_j a_ij F_j + gamma h u,
            # F_i = J Y_i + u recovered from the stage equation (no matrix product)
            if n_stages == 4:
                # four-stage tableau (esdirk3): the passes over the state are fused
                F0 = F[0]
                F1 = F[1]
                F2 = F[2]
                F3 = F[3]
                a10 = stage_coeffs[1, 0] * h
                a20 = stage_coeffs[2, 0] * h
                a21 = stage_coeffs[2, 1] * h
                a30 = stage_coeffs[3, 0] * h
                a31 = stage_coeffs[3, 1] * h
                a32 = stage_coeffs[3, 2] * h
                for i in range(n_state):
                    rhs[i] = y[i] + c * u[i] + a10 * F0[i]
                _solve_shifted(c, border_rows, active_cols, row_ptr, row_idx, pivot_inv, fwd_mult,
                               back_mult, cord_gain, cord_feed, cord_pivot_inv, border_sol,
                               schur_inv, rhs, y1, work_t, work_w)
                for i in range(n_state):
                    F1[i] = (y1[i] - rhs[i]) * ic + u[i]
                    ys[i] = y1[i]
                    rhs[i] = y[i] + c * u[i] + a20 * F0[i] + a21 * F1[i]
                _solve_shifted(c, border_rows, active_cols, row_ptr, row_idx, pivot_inv, fwd_mult,
                               back_mult, cord_gain, cord_feed, cord_pivot_inv, border_sol,
                               schur_inv, rhs, y1, work_t, work_w)
                for i in range(n_state):
                    F2[i] = (y1[i] - rhs[i]) * ic + u[i]
                    rhs[i] = y[i] + c * u[i] + a30 * F0[i] + a31 * F1[i] + a32 * F2[i]
                _solve_shifted(c, border_rows, active_cols, row_ptr, row_idx, pivot_inv, fwd_mult,
                               back_mult, cord_gain, cord_feed, cord_pivot_inv, border_sol,
                               schur_inv, rhs, y1, work_t, work_w)
                e0 = error_weights[0] * h
                e1 = error_weights[1] * h
                e2 = error_weights[2] * h
                e3 = error_weights[3] * h
                for i in range(n_state):
                    F3[i] = (y1[i] - rhs[i]) * ic + u[i]
                    rhs[i] = e0 * F0[i] + e1 * F1[i] + e2 * F2[i] + e3 * F3[i]
            else:
                for stage in range(1, n_stages):
                    for i in range(n_state):
                        rhs[i] = y[i] + c * u[i]
                    for jj in range(stage):
                        a_h = stage_coeffs[stage, jj] * h
                        if a_h != 0.0:
                            for i in range(n_state):
                                rhs[i] += a_h * F[jj, i]
                    _solve_shifted(c, border_rows, active_cols, row_ptr, row_idx, pivot_inv,
                                   fwd_mult, back_mult, cord_gain, cord_feed, cord_pivot_inv,
                                   border_sol, schur_inv, rhs, y1, work_t, work_w)
                    for i in range(n_state):
                        F[stage, i] = (y1[i] - rhs[i]) * ic + u[i]
                    if stage == 1:
                        for i in range(n_state):
                            ys[i] = y1[i]
                for i in range(n_state):
                    rhs[i] = 0.0
                for jj in range(n_stages):
                    e_h = error_weights[jj] * h
                    for i in range(n_state):
                        rhs[i] += e_h * F[jj, i]
            # stiffly accurate: the last stage is the new state, F[-1] = f(y1); rhs now
            # holds the error estimate h sum (b - b_hat)_j F_j
            err = 0.0
            if adaptive:
                _solve_shifted(c, border_rows, active_cols, row_ptr, row_idx, pivot_inv, fwd_mult,
                               back_mult, cord_gain, cord_feed, cord_pivot_inv, border_sol,
                               schur_inv, rhs, est, work_t, work_w)
                # max norm scaled by rtol x running peak of each variable (spinal CSF and
                # cord concentrations share one scale each; compartments have their own)
                e_s, p_s = _group_error(est, y1, ivol, 0, n)
                e_c, p_c = _group_error(est, y1, ivol, n, n_spatial)
                pk_s = max(peak[0], p_s)
                pk_c = max(peak[1], p_c)
                err = max(e_s / (rtol * pk_s + fl_s), e_c / (rtol * pk_c + fl_c))
                if e_s != e_s or e_c != e_c:
                    err = np.nan
                for i in range(n_spatial, n_state):
                    pk = max(peak[2 + i - n_spatial], abs(y1[i]) * ivol[i])
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
                    e_s = _interpolant_gap(y, y1, F[0], F[n_stages - 1], ys, ivol, c1, h, 0, n)
                    e_c = _interpolant_gap(y, y1, F[0], F[n_stages - 1], ys, ivol, c1, h, n,
                                           n_spatial)
                    e_i = max(e_s / (ri * pk_s + fl_s), e_c / (ri * pk_c + fl_c))
                    for i in range(n_spatial, n_state):
                        pk = max(peak[2 + i - n_spatial], abs(y1[i]) * ivol[i])
                        d = _hermite(c1, h, y[i], y1[i], F[0, i], F[n_stages - 1, i]) - ys[i]
                        e_i = max(e_i, abs(d) * ivol[i] / (ri * pk + atol_floor * ivol[i]))
                    err = max(err, e_i)
            if err <= 1.0:
                # accept; dense output (cubic Hermite) for output times inside the step
                t1 = stop if j + 1 == nsub else tn + h
                if io < n_out and t_out[io] <= t1 and t_out[io] < stop:
                    if n_obs == 0:
                        while io < n_out and t_out[io] <= t1 and t_out[io] < stop:
                            th = (t_out[io] - tn) / h
                            for i in range(n_state):
                                work_r[i] = _hermite(th, h, y[i], y1[i], F[0, i],
                                                 F[n_stages - 1, i])
                            _write_row(work_r, out, io - row0, obs_ptr, obs_idx, obs_w)
                            io += 1
                    else:
                        # interpolate in the (linear) space of the observables
                        _project_observables(y, ob0, obs_ptr, obs_idx, obs_w)
                        _project_observables(y1, ob1, obs_ptr, obs_idx, obs_w)
                        _project_observables(F[0], obf0, obs_ptr, obs_idx, obs_w)
                        _project_observables(F[n_stages - 1], obf1, obs_ptr, obs_idx, obs_w)
                        while io < n_out and t_out[io] <= t1 and t_out[io] < stop:
                            th = (t_out[io] - tn) / h
                            if summarize:
                                for q in range(n_obs):
                                    obt[q] = _hermite(th, h, ob0[q], ob1[q], obf0[q], obf1[q])
                                _record_summary(io, t_out, obt, summary, prev, spec, aux)
                            else:
                                for q in range(n_obs):
                                    out[io - row0, q] = _hermite(th, h, ob0[q], ob1[q], obf0[q],
                                                          obf1[q])
                            io += 1
                for i in range(n_state):
                    y[i] = y1[i]
                    F[0, i] = F[n_stages - 1, i]
                if adaptive:
                    peak[0] = pk_s
                    peak[1] = pk_c
                    for i in range(n_spatial, n_state):
                        peak[2 + i - n_spatial] = max(peak[2 + i - n_spatial], abs(y[i]) * ivol[i])
                tn = t1
                j += 1
                stats[ST_STEPS] += 1.0
                stats[ST_MAX_ERR] = max(stats[ST_MAX_ERR], err)
                stats[ST_MIN_H] = min(stats[ST_MIN_H], h)
                stats[ST_MAX_H] = max(stats[ST_MAX_H], h)
                if adaptive:
                    h_target, k, nsub, j = _ladder_after_accept(err, h, max_step, k, nsub,
                                                                j, gap)
                    if first_after_jump:
                        h_jump = h
                        first_after_jump = False
            else:
                stats[ST_REJECTED] += 1.0
                if err != err or h <= H_MIN_FRACTION * gap:
                    failed = True
                    break
                h_target, k, nsub, j = _ladder_after_reject(err, h, k, nsub, j, gap)
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
    for i in range(n_state):
        y0[i] = y[i]


@njit(cache=True, parallel=True, nogil=True, error_model="numpy")
def integrate_batch(lower, diag, upper, cord_diag, csf_to_cord, cord_to_csf, border_rows,
                    border_cols, block, volume, active_cols, row_ptr, row_idx, times, jumps, rates,
                    s_ptr, s_of, t_end, t_out, y0s, obs_ptr, obs_idx, obs_w, gamma, stage_coeffs,
                    error_weights, rtol, atol_floor, max_step, first_step, adaptive, out, stats,
                    summary, spec, n_threads):
    """:func:`integrate` for a batch of parameter sets, in parallel over the batch
    (``n_threads``: the number of numba threads, ``numba.get_num_threads()``).

    System arrays carry a leading batch axis ``B``. Schedules are concatenated:
    schedule ``s`` is ``times[s_ptr[s]:s_ptr[s+1]]`` (and the same rows of
    ``jumps``/``rates``); member ``b`` uses schedule ``s_of[b]`` and starts from
    ``y0s[b]``. The observables share one pattern (``obs_ptr``, ``obs_idx``) with
    weights ``obs_w[b]`` per member (``obs_ptr`` empty: full state). ``out`` is
    ``(B, len(t_out), n_obs)``, or ``summary`` ``(B, 4, n_obs)`` receives summaries
    instead (see :func:`integrate`).
    """
    B = diag.shape[0]
    # members dealt round-robin to the threads: prange splits its range statically into
    # contiguous blocks (set_parallel_chunksize does not change that under the OpenMP
    # layer), and the members of a sweep are often ordered by cost (a parameter swept
    # from low to high), which contiguous blocks would load onto one thread
    T = max(1, min(n_threads, B))
    for tid in prange(T):
        for b in range(tid, B, T):
            s = s_of[b]
            a0 = s_ptr[s]
            a1 = s_ptr[s + 1]
            y0 = y0s[b].copy()
            # statistics are updated every step: kept in the member's own array until the
            # end, so that members solved side by side never share a cache line
            st = np.zeros(N_STATS)
            integrate(lower[b], diag[b], upper[b], cord_diag[b], csf_to_cord[b],
                      cord_to_csf[b], border_rows[b], border_cols[b], block[b], volume[b],
                      active_cols, row_ptr, row_idx, times[a0:a1], jumps[a0:a1],
                      rates[a0:a1], t_end[b], t_out, y0, obs_ptr, obs_idx, obs_w[b], gamma,
                      stage_coeffs, error_weights, rtol[b], atol_floor[b], max_step,
                      first_step, adaptive, out[b], st, summary[b], spec[b],
                      np.zeros(RESUME_SIZE + 2 + block.shape[1]), t_out.shape[0])
            for q in range(N_STATS):
                stats[b, q] = st[q]
