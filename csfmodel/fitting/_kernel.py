r"""Numba kernel of the forward sensitivity equations (the augmented linear system).

The model is linear, ``dy/dt = J(θ) y + u(θ, t)`` with jumps ``y+ = y- + b(θ)``.
The sensitivities :math:`s_k = \partial y / \partial θ_k` obey

.. math::

    \dot s_k = J s_k + J_k\,y + u_k, \qquad s_k^+ = s_k^- + b_k,

with :math:`J_k = \partial J/\partial θ_k`, :math:`u_k`, :math:`b_k` the derivatives
of the assembled arrays (obtained exactly by complex-step differentiation of the
assembly, :mod:`csfmodel.fitting._sensitivity`). The augmented matrix
``[[J, 0], [J_k, J]]`` is block lower triangular, so every implicit stage of the
ESDIRK method solves with the same matrix ``I - gamma h J`` as the state's own
stage: the primal stage first, then one solve per parameter with the right-hand
side ``s_n + h sum_j a_ij G_j + gamma h (J_k Y_i + u_k)``, through the structured
factorization of the numba backend (:mod:`csfmodel.solvers._numba_kernels`,
``O(N + M)`` per solve). ``J_k`` has the structure of ``J`` and is applied part by
part (only the parts a parameter touches; contiguous loops, no scattered updates:
a COO product cost as much as a structured solve).

A Runge-Kutta method applied to the augmented system gives exactly the derivative
of the method's own discrete solution at fixed steps ("internal differentiation",
Hairer, Norsett & Wanner, Solving ODEs I, II.17). By default the steps are chosen
by the state's error control alone, weighed as the numba backend weighs it (``rtol``
of each output variable's running peak; CVODES calls this leaving the sensitivities
out of the error test, ``errconS = false``): the state is then the backend's own
discrete solution and the sensitivities its exact derivative along those steps,
which converges to the derivative of the exact solution as ``rtol`` falls, and each
parameter costs three structured solves per step (one per implicit stage). Solves that
do not depend on each other run together, up to three at a time (the state's next stage
or its error estimate beside the sensitivities of the stage just solved; a step's solves
are scheduled as jobs, each ready when what it reads is solved;
:func:`~csfmodel.solvers._numba_kernels._solve_shifted2` and ``_solve_shifted3``): a
solve's sweeps are bound by the latency of their recurrences, and two or three
interleaved cost ~0.6 or ~0.55 of as many apart, bit for bit the same numbers. With
``control_all`` each sensitivity, scaled by its parameter (``θ_k s_k``, the change of
the output for a 100 % change of the parameter), also enters the error test
against the same scale (one more solve per parameter and step, and more steps).
Output times inside a step get cubic Hermite values of state and sensitivities (the
interpolant is linear in its data, so its derivative is the interpolant of the
derivatives). The passes over the state are fused (one pass per stage right-hand
side, as in the numba backend's kernel); every work array is allocated once.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from csfmodel.solvers._numba_kernels import (
    H_MIN_FRACTION,
    N_CACHE,
    _factor_shifted,
    _hermite,
    _jacobian_times,
    _ladder_after_accept,
    _ladder_after_reject,
    _row_dot,
    _solve_shifted,
    _solve_shifted2,
    _solve_shifted3,
)
from csfmodel.solvers._tableaus import INTERP_SLACK, INTERP_WINDOW

#: entries of the statistics vector
ST_STEPS, ST_REJECTED, ST_FACTORIZATIONS, ST_ROWS, ST_FAILED = range(5)
N_STATS = 5


@njit(cache=True, error_model="numpy", inline="always")
def _tangent_times(k, d_flags, d_tri, d_cord, d_rows, d_row_ptr, d_row_idx, d_csr_ptr,
                   d_csr_idx, d_cols, d_col_ptr, d_col_idx, d_block, y, du, out):
    """``out = J_k y + du`` for parameter ``k`` using the structure of ``J_k``.

    ``J_k`` has the structure of ``J``: ``d_tri[k]`` the spinal tridiagonal (rows
    lower, shifted so that row ``i`` couples to ``i - 1``; diag; upper), ``d_cord[k]``
    the cord block (cord_diag, csf_to_cord, cord_to_csf), ``d_rows[k * m + r]`` border
    row ``r`` (CSR pattern ``d_csr_ptr``/``d_csr_idx`` over those ``P m`` rows, for
    :func:`~csfmodel.solvers._numba_kernels._row_dot`), ``d_cols[k]`` the border columns
    (stored transposed, each contiguous); only the rows and columns listed
    (``d_row_idx``; ``d_col_idx`` rows ``(column, first, end)``: the span of its
    nonzero entries, from ``d_*_ptr[k]``) are not zero, ``d_block[k]``
    the compartment block. ``d_flags[k]``: whether ``du``, the tridiagonal (2: its
    diagonal alone), the cord block and the compartment block are not zero. Contiguous
    loops over the parts that are there (no scattered COO updates).
    """
    n = d_tri.shape[2]
    n_cord = d_cord.shape[2]
    n_spatial = n + n_cord
    m = d_block.shape[1]
    n_state = out.shape[0]
    if d_flags[k, 0]:
        for i in range(n_state):
            out[i] = du[i]
    else:
        for i in range(n_state):
            out[i] = 0.0
    if d_flags[k, 1] == 2:                  # the diagonal alone
        dg = d_tri[k, 1]
        for i in range(n):
            out[i] += dg[i] * y[i]
    elif d_flags[k, 1]:
        lo = d_tri[k, 0]
        dg = d_tri[k, 1]
        up = d_tri[k, 2]
        if n == 1:
            out[0] += dg[0] * y[0]
        else:
            out[0] += dg[0] * y[0] + up[0] * y[1]
            for i in range(1, n - 1):
                out[i] += lo[i] * y[i - 1] + dg[i] * y[i] + up[i] * y[i + 1]
            out[n - 1] += lo[n - 1] * y[n - 2] + dg[n - 1] * y[n - 1]
    if d_flags[k, 2]:
        cd = d_cord[k, 0]
        c2c = d_cord[k, 1]
        c2s = d_cord[k, 2]
        for j in range(n_cord):
            out[j] += c2s[j] * y[n + j]
            out[n + j] += cd[j] * y[n + j] + c2c[j] * y[j]
    for a in range(d_col_ptr[k], d_col_ptr[k + 1]):
        col = d_col_idx[a, 0]
        yk = y[n_spatial + col]
        if yk != 0.0:
            bc = d_cols[k, col]
            for i in range(d_col_idx[a, 1], d_col_idx[a, 2]):
                out[i] += bc[i] * yk
    for a in range(d_row_ptr[k], d_row_ptr[k + 1]):
        row = d_row_idx[a]
        out[n_spatial + row] += _row_dot(d_rows, k * m + row, d_csr_ptr, d_csr_idx, y,
                                         n_spatial)
    if d_flags[k, 3]:
        blk = d_block[k]
        for r in range(m):
            acc = 0.0
            for l2 in range(m):
                acc += blk[r, l2] * y[n_spatial + l2]
            out[n_spatial + r] += acc


@njit(cache=True, error_model="numpy", inline="always")
def _stage_rhs(base, inp, c, F, stage_coeffs, stage, h, rhs):
    """``rhs = base + c inp + h sum_{j < stage} a_{stage j} F_j`` in one pass."""
    n_state = rhs.shape[0]
    if stage == 1:
        a0 = stage_coeffs[1, 0] * h
        for i in range(n_state):
            rhs[i] = base[i] + c * inp[i] + a0 * F[0, i]
    elif stage == 2:
        a0 = stage_coeffs[2, 0] * h
        a1 = stage_coeffs[2, 1] * h
        for i in range(n_state):
            rhs[i] = base[i] + c * inp[i] + a0 * F[0, i] + a1 * F[1, i]
    elif stage == 3:
        a0 = stage_coeffs[3, 0] * h
        a1 = stage_coeffs[3, 1] * h
        a2 = stage_coeffs[3, 2] * h
        for i in range(n_state):
            rhs[i] = base[i] + c * inp[i] + a0 * F[0, i] + a1 * F[1, i] + a2 * F[2, i]
    else:
        for i in range(n_state):
            rhs[i] = base[i] + c * inp[i]
        for jj in range(stage):
            a_h = stage_coeffs[stage, jj] * h
            for i in range(n_state):
                rhs[i] += a_h * F[jj, i]


@njit(cache=True, error_model="numpy", inline="always")
def _error_rhs(F, error_weights, h, rhs):
    """``rhs = h sum_j (b - b_hat)_j F_j`` in one pass (up to four stages)."""
    n_state = rhs.shape[0]
    n_stages = F.shape[0]
    if n_stages == 4:
        e0 = error_weights[0] * h
        e1 = error_weights[1] * h
        e2 = error_weights[2] * h
        e3 = error_weights[3] * h
        for i in range(n_state):
            rhs[i] = e0 * F[0, i] + e1 * F[1, i] + e2 * F[2, i] + e3 * F[3, i]
    elif n_stages == 3:
        e0 = error_weights[0] * h
        e1 = error_weights[1] * h
        e2 = error_weights[2] * h
        for i in range(n_state):
            rhs[i] = e0 * F[0, i] + e1 * F[1, i] + e2 * F[2, i]
    else:
        for i in range(n_state):
            rhs[i] = 0.0
        for jj in range(n_stages):
            e_h = error_weights[jj] * h
            for i in range(n_state):
                rhs[i] += e_h * F[jj, i]


@njit(cache=True, error_model="numpy")
def _scaled_error(est, ivol, n, n_spatial, scale, peak, rtol, fl_s, fl_c, atol_floor):
    """Max over the groups of ``scale |est| / vol`` against ``rtol x peak + floor``."""
    n_state = est.shape[0]
    e_s = 0.0
    e_c = 0.0
    for i in range(n):
        e_s = max(e_s, abs(est[i]) * ivol[i])
    for i in range(n, n_spatial):
        e_c = max(e_c, abs(est[i]) * ivol[i])
    err = max(scale * e_s / (rtol * peak[0] + fl_s), scale * e_c / (rtol * peak[1] + fl_c))
    for i in range(n_spatial, n_state):
        e_k = scale * abs(est[i]) * ivol[i] / (rtol * peak[2 + i - n_spatial]
                                                + atol_floor * ivol[i])
        err = max(err, e_k)
    if not np.isfinite(err):
        return np.nan
    return err


@njit(cache=True, error_model="numpy")
def integrate_sensitivities(lower, diag, upper, cord_diag, csf_to_cord, cord_to_csf,
                            border_rows, border_cols, block, volume, active_cols, row_ptr,
                            row_idx, times, jumps, rates, t_end, t_out, d_flags, d_tri, d_cord,
                            d_rows, d_row_ptr, d_row_idx, d_csr_ptr, d_csr_idx, d_cols,
                            d_col_ptr, d_col_idx, d_block, d_jumps, d_rates, scales, gamma,
                            stage_coeffs, error_weights, rtol, atol_floor, max_step,
                            control_all, out, d_out, stats):
    """Integrate the state and its ``P`` sensitivities over ``[0, t_end]``.

    ``out`` ``(n_out, n_state)`` receives the state, ``d_out`` ``(P, n_out, n_state)``
    the sensitivities at ``t_out``. ``d_flags`` ... ``d_block`` hold each ``J_k`` in
    the structure of ``J`` (see :func:`_tangent_times`), ``d_jumps``/``d_rates``
    ``(P, K, n_state)`` the derivatives of the schedule, ``scales`` ``(P,)`` the
    parameter values the
    error control weighs the sensitivities with when ``control_all`` (otherwise
    only the state's error is tested).
    """
    n = diag.shape[0]
    n_cord = cord_diag.shape[0]
    n_spatial = n + n_cord
    m = block.shape[0]
    n_state = n_spatial + m
    n_active = active_cols.shape[0]
    P = d_jumps.shape[0]
    keys = np.full(N_CACHE, -1.0)
    c_pivot_inv = np.empty((N_CACHE, n))
    c_fwd_mult = np.empty((N_CACHE, n))
    c_back_mult = np.empty((N_CACHE, n))
    c_cord_gain = np.empty((N_CACHE, n_cord))
    c_cord_feed = np.empty((N_CACHE, n_cord))
    c_cord_pivot_inv = np.empty((N_CACHE, n_cord))
    c_border_sol = np.empty((N_CACHE, n_spatial, n_active))
    c_schur_inv = np.empty((N_CACHE, m, m))
    next_slot = 0
    schur_work = np.empty((m, m))
    work_r = np.empty(n_state)
    work_x = np.empty(n_state)
    work_t = np.empty(m)
    work_w = np.empty(m)
    work_t2 = np.empty(m)
    work_w2 = np.empty(m)
    work_t3 = np.empty(m)
    work_w3 = np.empty(m)
    n_stages = stage_coeffs.shape[0]
    c1 = stage_coeffs[1, 0] + stage_coeffs[1, 1]
    y = np.zeros(n_state)
    s = np.zeros((P, n_state))
    F = np.empty((n_stages, n_state))
    G = np.empty((P, n_stages, n_state))
    ybuf = np.empty((n_stages, n_state))    # the state's stages Y_1 .. Y_{s-1}
    ys = ybuf[1]                            # the first implicit stage
    y1 = ybuf[n_stages - 1]                 # the last: the new state (stiffly accurate)
    js = np.empty(P, np.int64)
    s1 = np.empty((P, n_state))
    rs = np.empty((P, n_state))
    qs = np.empty((P, n_state))
    rhs = np.empty(n_state)
    est = np.empty(n_state)
    q = np.empty(n_state)
    u = np.zeros(n_state)
    du = np.zeros((P, n_state))
    ivol = 1.0 / volume
    fl_s = atol_floor / max(np.max(volume[:n]), 1e-300)
    fl_c = atol_floor / max(np.max(volume[n:n_spatial]), 1e-300) if n_cord > 0 else 1.0
    peak = np.zeros(2 + m)
    pk_new = np.empty(2 + m)
    K = times.shape[0]
    n_out = t_out.shape[0]
    for i in range(N_STATS):
        stats[i] = 0.0
    t = 0.0
    ke = 0
    io = 0
    h_target = max_step
    h_jump = np.inf
    first_after_jump = False
    t_event = 0.0
    while True:
        changed = False
        while ke < K and times[ke] <= t:
            for i in range(n_state):
                if jumps[ke, i] != 0.0 or rates[ke, i] != u[i]:
                    first_after_jump = True
                    t_event = t
                    break
            for i in range(n_state):
                y[i] += jumps[ke, i]
                u[i] = rates[ke, i]
            for k in range(P):
                for i in range(n_state):
                    s[k, i] += d_jumps[k, ke, i]
                    du[k, i] = d_rates[k, ke, i]
            ke += 1
            changed = True
        while io < n_out and t_out[io] <= t:
            for i in range(n_state):
                out[io, i] = y[i]
            for k in range(P):
                for i in range(n_state):
                    d_out[k, io, i] = s[k, i]
            io += 1
        if t >= t_end or io >= n_out:
            break
        stop = t_end
        if ke < K and times[ke] < stop:
            stop = times[ke]
        gap = stop - t
        # first stage (explicit): F0 = J y + u, G0 = J s + J_k y + u_k
        _jacobian_times(lower, diag, upper, cord_diag, csf_to_cord, cord_to_csf, border_rows,
                        border_cols, block, active_cols, row_ptr, row_idx, y, u, F[0])
        for k in range(P):
            _tangent_times(k, d_flags, d_tri, d_cord, d_rows, d_row_ptr, d_row_idx, d_csr_ptr,
                           d_csr_idx, d_cols, d_col_ptr, d_col_idx, d_block, y, du[k], q)
            _jacobian_times(lower, diag, upper, cord_diag, csf_to_cord, cord_to_csf,
                            border_rows, border_cols, block, active_cols, row_ptr, row_idx,
                            s[k], q, G[k, 0])
        if changed and first_after_jump:
            h_target = min(h_target, h_jump)
        kk = 0
        while gap / 2.0 ** kk > h_target and kk < 60:
            kk += 1
        nsub = 2 ** kk
        j = 0
        tn = t
        failed = False
        while j < nsub:
            h = gap / nsub
            c = gamma * h
            ic = 1.0 / c
            slot = -1
            for sl in range(N_CACHE):
                if keys[sl] == h:
                    slot = sl
                    break
            if slot < 0:
                slot = next_slot
                next_slot = (next_slot + 1) % N_CACHE
                keys[slot] = h
                _factor_shifted(c, lower, diag, upper, cord_diag, csf_to_cord, cord_to_csf,
                                border_rows, border_cols, block, active_cols, row_ptr, row_idx,
                                c_pivot_inv[slot], c_fwd_mult[slot], c_back_mult[slot],
                                c_cord_gain[slot], c_cord_feed[slot], c_cord_pivot_inv[slot],
                                c_border_sol[slot], c_schur_inv[slot], work_r, work_x,
                                schur_work)
                stats[ST_FACTORIZATIONS] += 1.0
            pivot_inv = c_pivot_inv[slot]
            fwd_mult = c_fwd_mult[slot]
            back_mult = c_back_mult[slot]
            cord_gain = c_cord_gain[slot]
            cord_feed = c_cord_feed[slot]
            cord_pivot_inv = c_cord_pivot_inv[slot]
            border_sol = c_border_sol[slot]
            schur_inv = c_schur_inv[slot]
            # the step's solves as jobs: the state's stages 1 .. s-1 (Y_j in ybuf[j]) and
            # its error estimate (jp = s), each sensitivity's stages 1 .. s-1 (js[k]).
            # A job is ready when what it reads is solved (the state's stage j reads
            # F_0 .. F_{j-1}; a sensitivity's stage j reads Y_j and its own G_0 ..
            # G_{j-1}); ready jobs are solved up to three at a time, the state's first
            # (it is the critical path), then the sensitivities at the lowest stage
            jp = 1
            for k in range(P):
                js[k] = 1
            while True:
                ja = -2
                jb = -2
                jc = -2
                if jp <= n_stages:
                    ja = -1
                for _ in range(3):
                    pick = -2
                    low = n_stages
                    for k in range(P):
                        if js[k] < low and js[k] < jp and k != ja and k != jb:
                            pick = k
                            low = js[k]
                    if pick == -2:
                        break
                    if ja == -2:
                        ja = pick
                    elif jb == -2:
                        jb = pick
                    else:
                        jc = pick
                        break
                if ja == -2:
                    break
                # right-hand sides: the state's (I - cJ) Y_j = y + h sum a F + c u, or the
                # error estimate h sum (b - b_hat) F; a sensitivity's
                # (I - cJ) S_j = s + h sum a G + c (J_k Y_j + u_k)
                for slot in range(3):
                    job = ja if slot == 0 else (jb if slot == 1 else jc)
                    if job == -1:
                        if jp < n_stages:
                            _stage_rhs(y, u, c, F, stage_coeffs, jp, h, rhs)
                        else:
                            _error_rhs(F, error_weights, h, rhs)
                    elif job >= 0:
                        _tangent_times(job, d_flags, d_tri, d_cord, d_rows, d_row_ptr,
                                       d_row_idx, d_csr_ptr, d_csr_idx, d_cols, d_col_ptr,
                                       d_col_idx, d_block, ybuf[js[job]], du[job], qs[job])
                        _stage_rhs(s[job], qs[job], c, G[job], stage_coeffs, js[job], h,
                                   rs[job])
                ra = rhs if ja == -1 else rs[ja]
                xa = (ybuf[jp] if jp < n_stages else est) if ja == -1 else s1[ja]
                if jb == -2:
                    _solve_shifted(c, border_rows, active_cols, row_ptr, row_idx, pivot_inv,
                                   fwd_mult, back_mult, cord_gain, cord_feed, cord_pivot_inv,
                                   border_sol, schur_inv, ra, xa, work_t, work_w)
                elif jc == -2:
                    _solve_shifted2(c, border_rows, active_cols, row_ptr, row_idx, pivot_inv,
                                    fwd_mult, back_mult, cord_gain, cord_feed, cord_pivot_inv,
                                    border_sol, schur_inv, ra, xa, rs[jb], s1[jb], work_t,
                                    work_w, work_t2, work_w2)
                else:
                    _solve_shifted3(c, border_rows, active_cols, row_ptr, row_idx, pivot_inv,
                                    fwd_mult, back_mult, cord_gain, cord_feed, cord_pivot_inv,
                                    border_sol, schur_inv, ra, xa, rs[jb], s1[jb], rs[jc],
                                    s1[jc], work_t, work_w, work_t2, work_w2, work_t3, work_w3)
                # stage derivatives from the stage equations: F_j = (Y_j - rhs) / c + u,
                # G_j = (S_j - rhs) / c + J_k Y_j + u_k
                for slot in range(3):
                    job = ja if slot == 0 else (jb if slot == 1 else jc)
                    if job == -1:
                        if jp < n_stages:
                            Fj = F[jp]
                            Yj = ybuf[jp]
                            for i in range(n_state):
                                Fj[i] = (Yj[i] - rhs[i]) * ic + u[i]
                        jp += 1
                    elif job >= 0:
                        Gj = G[job, js[job]]
                        s1k = s1[job]
                        rk = rs[job]
                        qk = qs[job]
                        for i in range(n_state):
                            Gj[i] = (s1k[i] - rk[i]) * ic + qk[i]
                        js[job] += 1
            for q_ in range(2 + m):
                pk_new[q_] = peak[q_]
            p_s = 0.0
            for i in range(n):
                p_s = max(p_s, abs(y1[i]) * ivol[i])
            p_c = 0.0
            for i in range(n, n_spatial):
                p_c = max(p_c, abs(y1[i]) * ivol[i])
            pk_new[0] = max(pk_new[0], p_s)
            pk_new[1] = max(pk_new[1], p_c)
            for i in range(n_spatial, n_state):
                pk_new[2 + i - n_spatial] = max(pk_new[2 + i - n_spatial], abs(y1[i]) * ivol[i])
            err = _scaled_error(est, ivol, n, n_spatial, 1.0, pk_new, rtol, fl_s, fl_c,
                                atol_floor)
            for k in range(P):
                if err != err or not control_all:
                    break
                _error_rhs(G[k], error_weights, h, rhs)
                _solve_shifted(c, border_rows, active_cols, row_ptr, row_idx, pivot_inv,
                               fwd_mult, back_mult, cord_gain, cord_feed, cord_pivot_inv,
                               border_sol, schur_inv, rhs, est, work_t, work_w)
                e_k = _scaled_error(est, ivol, n, n_spatial, scales[k], pk_new, rtol, fl_s,
                                    fl_c, atol_floor)
                err = e_k if e_k != e_k else max(err, e_k)
            # dense output check after an input change (as the numba backend does)
            t1 = stop if j + 1 == nsub else tn + h
            if err == err and io < n_out and t_out[io] < t1 and t_out[io] < stop and \
                    tn - t_event < INTERP_WINDOW * h:
                ri = rtol * INTERP_SLACK
                e_i = 0.0
                for i in range(n_state):
                    d = abs(_hermite(c1, h, y[i], y1[i], F[0, i], F[n_stages - 1, i]) - ys[i])
                    if i < n:
                        sc = ri * pk_new[0] + fl_s
                    elif i < n_spatial:
                        sc = ri * pk_new[1] + fl_c
                    else:
                        sc = ri * pk_new[2 + i - n_spatial] + atol_floor * ivol[i]
                    e_i = max(e_i, d * ivol[i] / sc)
                err = max(err, e_i)
            if err <= 1.0:
                while io < n_out and t_out[io] <= t1 and t_out[io] < stop:
                    th = (t_out[io] - tn) / h
                    for i in range(n_state):
                        out[io, i] = _hermite(th, h, y[i], y1[i], F[0, i], F[n_stages - 1, i])
                    for k in range(P):
                        for i in range(n_state):
                            d_out[k, io, i] = _hermite(th, h, s[k, i], s1[k, i], G[k, 0, i],
                                                       G[k, n_stages - 1, i])
                    io += 1
                for i in range(n_state):
                    y[i] = y1[i]
                    F[0, i] = F[n_stages - 1, i]
                for k in range(P):
                    for i in range(n_state):
                        s[k, i] = s1[k, i]
                        G[k, 0, i] = G[k, n_stages - 1, i]
                for q_ in range(2 + m):
                    peak[q_] = pk_new[q_]
                tn = t1
                j += 1
                stats[ST_STEPS] += 1.0
                h_target, kk, nsub, j = _ladder_after_accept(err, h, max_step, kk, nsub, j,
                                                             gap)
                if first_after_jump:
                    h_jump = h
                    first_after_jump = False
            else:
                stats[ST_REJECTED] += 1.0
                if err != err or h <= H_MIN_FRACTION * gap:
                    failed = True
                    break
                h_target, kk, nsub, j = _ladder_after_reject(err, h, kk, nsub, j, gap)
        if failed:
            stats[ST_FAILED] = 1.0
            break
        t = stop
    stats[ST_ROWS] = io


def compile_notice() -> bool:
    """Say on stderr, once, that the sensitivity kernel is about to be compiled (when
    its machine code is neither loaded nor in numba's on-disk cache)."""
    import os
    import sys

    try:
        if integrate_sensitivities.signatures:
            return False
        index = integrate_sensitivities._cache._cache_file._index_path
    except AttributeError:  # pragma: no cover - numba internals changed
        return False
    if os.path.exists(index):
        return False
    print("csfmodel: compiling the sensitivity solver for this machine: once, about a "
          f"minute on 2 cores; later runs load it from {os.path.dirname(index)}",
          file=sys.stderr, flush=True)
    return True
