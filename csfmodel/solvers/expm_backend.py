r"""Exact propagation on the output grid: matrix exponentials of the structured matrix.

Between two dose events the model is linear with constant coefficients and a
constant input, ``dy/dt = J y + u``, so over a step of length ``h``

.. math::

    y(t + h) = e^{hJ}\,y(t) + h\,\varphi_1(hJ)\,u, \qquad
    \varphi_1(z) = \frac{e^{z} - 1}{z},

with no truncation error. Both propagators come out of one exponential of the
augmented matrix (Van Loan 1978, IEEE Trans Autom Control 23:395; Higham 2008,
*Functions of Matrices*, sec. 10.7):

.. math::

    \exp\begin{pmatrix} hJ & hU \\ 0 & 0 \end{pmatrix}
    = \begin{pmatrix} e^{hJ} & h\,\varphi_1(hJ)\,U \\ 0 & I \end{pmatrix},

where the columns of ``U`` span every input the schedule ever has (the unit
vectors of the few states that receive an infusion, or the distinct rate
vectors, whichever are fewer), so ``u = U c`` on each interval. The exponential
is computed densely (:func:`scipy.linalg.expm`, scaling and squaring with Padé
approximants, Al-Mohy & Higham 2009) once per distinct step length and reused
for every interval of that length: on a regular output grid with dose events on
the grid that is a single exponential, and the run is one matrix-vector product
per output time.

The steps are the gaps between consecutive output times and dose events (an
interval that contains an event is split there, the jump is applied at its
time, and the rate of the new interval is used after it), so events are
aligned exactly and the only errors are those of rounding: about 1e-12 of each
variable's peak against the scipy reference at its tightest tolerance (the
tests ask for 1e-9). There is no error control and no tolerance to meet:
``rtol`` is accepted for a common interface and recorded, and ``max_step``
splits longer gaps into equal parts (``adaptive`` makes no difference).

Cost: ``O((n + r)^3)`` per distinct step length for the exponential and
``O(n^2)`` per step; it wins where an adaptive method must take many steps to
reach a tight tolerance on a small grid (5 mm and coarser; see
``benchmarks/work_precision.py``), and the numba backend switches to it there
(:data:`csfmodel.solvers.numba_backend.EXPM_RTOL`). Batches reuse the
exponentials of members with the same matrix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from csfmodel.solvers import _prepare
from csfmodel.solvers._backend import Backend
from csfmodel.solvers._options import SolveInterrupted, SolverFailure, Stats
from csfmodel.solvers._prepare import summarize

__all__ = ["ExpmBackend", "Plan", "make_plan", "input_basis", "Propagators", "propagate"]


# ------------------------------------------------------------------ the steps
@dataclass(frozen=True, eq=False)
class Plan:
    """The steps of one run: the times visited and what happens at each.

    Attributes
    ----------
    points
        ``(P,)`` increasing times (min) from 0: every output time, every dose
        event up to the last output time, and the points that split gaps longer
        than ``max_step``.
    lengths
        The distinct step lengths (min).
    step_length
        ``(P - 1,)`` index into ``lengths`` of the step from ``points[j]`` to
        ``points[j + 1]``.
    step_rate
        ``(P - 1,)`` the schedule interval (row of ``rates``) in force during that
        step, ``-1`` before the first event.
    jump
        ``(P,)`` the event whose jump is applied at ``points[j]`` (``-1``: none).
    rows
        ``(P + 1,)`` output rows ``rows[j]:rows[j + 1]`` are the state at
        ``points[j]`` (after the jump there).
    """

    points: np.ndarray
    lengths: np.ndarray
    step_length: np.ndarray
    step_rate: np.ndarray
    jump: np.ndarray
    rows: np.ndarray

    @property
    def n_steps(self) -> int:
        return len(self.step_length)


def make_plan(times, t_out: np.ndarray, max_step: float | None = None) -> Plan:
    """The steps from 0 to the last output time (see :class:`Plan`).

    Step lengths that differ by no more than a few rounding errors of the times
    themselves (``8 eps`` of the last time) count as one length.
    """
    times = np.asarray(times, float)
    t_out = np.asarray(t_out, float)
    t_last = float(t_out[-1])
    events = times[times <= t_last]
    points = np.unique(np.concatenate([[0.0], events, t_out]))
    if max_step is not None and np.isfinite(max_step) and len(points) > 1:
        gaps = np.diff(points)
        parts = np.maximum(np.ceil(gaps / max_step - 1e-12), 1).astype(np.int64)
        if np.any(parts > 1):
            extra = [points[j] + gaps[j] * np.arange(1, parts[j]) / parts[j]
                     for j in np.flatnonzero(parts > 1)]
            points = np.unique(np.concatenate([points, *extra]))
    gaps = np.diff(points)
    lengths, step_length = _group_lengths(gaps, 8 * np.finfo(float).eps * max(t_last, 1.0))
    step_rate = np.searchsorted(times, points[:-1], side="right") - 1
    k = np.searchsorted(times, points, side="left")
    on_event = (k < len(times)) & (times[np.minimum(k, len(times) - 1)] == points) \
        if len(times) else np.zeros(len(points), bool)
    jump = np.where(on_event, k, -1)
    rows = np.searchsorted(t_out, points, side="left")
    rows = np.append(rows, len(t_out))
    return Plan(points=points, lengths=lengths, step_length=step_length,
                step_rate=step_rate.astype(np.int64), jump=jump.astype(np.int64),
                rows=rows.astype(np.int64))


def _group_lengths(gaps: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Distinct lengths (within ``tol``) and the index of each gap's length."""
    if gaps.size == 0:
        return np.zeros(0), np.zeros(0, np.int64)
    order = np.argsort(gaps, kind="stable")
    g = gaps[order]
    new = np.concatenate([[True], np.diff(g) > tol])
    group = np.cumsum(new) - 1
    lengths = g[new]
    index = np.empty(len(gaps), np.int64)
    index[order] = group
    return lengths, index


def input_basis(schedules) -> tuple[np.ndarray, list[np.ndarray]]:
    """A basis ``U`` (n x r) of every input rate of the schedules, and the coefficients.

    Returns ``U`` and, per schedule, ``C`` (K x r) with ``rates[k] = U @ C[k]``:
    the unit vectors of the states that ever receive an input, or the distinct
    rate vectors, whichever are fewer.
    """
    rates = [np.asarray(s.rates, float) for s in schedules]
    n = rates[0].shape[1]
    allr = np.concatenate(rates) if rates else np.zeros((0, n))
    support = np.flatnonzero(np.any(allr != 0.0, axis=0))
    nonzero = allr[np.any(allr != 0.0, axis=1)]
    distinct = np.unique(nonzero, axis=0) if len(nonzero) else np.zeros((0, n))
    if len(distinct) < len(support):
        U = np.ascontiguousarray(distinct.T)
        coeffs = []
        for r in rates:
            C = np.zeros((len(r), len(distinct)))
            for k, row in enumerate(r):
                if np.any(row != 0.0):
                    C[k, int(np.flatnonzero(np.all(distinct == row, axis=1))[0])] = 1.0
            coeffs.append(C)
        return U, coeffs
    U = np.zeros((n, len(support)))
    U[support, np.arange(len(support))] = 1.0
    return U, [np.ascontiguousarray(r[:, support]) for r in rates]


class Propagators:
    """``(e^{hJ}, h phi_1(hJ) U)`` of one matrix, computed once per step length.

    Where every column of ``J`` sums to zero (the model conserves mass: what leaves
    one state enters another, the eliminated amount included), so do those of
    ``e^{hJ} - I`` and ``J phi_1(hJ)``: ``1^T e^{hJ} = 1^T`` and ``1^T h phi_1(hJ) U =
    h 1^T U``. The rounding errors of the exponential (~1e-15 per column) are moved
    onto the diagonal (onto the largest entry of each input column) so that both
    hold to the last bit; otherwise they would add up over thousands of equal steps
    (1e-12 of the amount dosed after 432 steps).
    """

    def __init__(self, system, U: np.ndarray):
        self.J = system.to_dense()
        self.U = U
        self.cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        scale = np.abs(self.J).sum(axis=0)
        self.conservative = bool(np.all(np.abs(self.J.sum(axis=0)) <= 1e-12 * scale))

    def __call__(self, h: float) -> tuple[np.ndarray, np.ndarray]:
        if h not in self.cache:
            from scipy.linalg import expm
            from threadpoolctl import threadpool_limits

            n, r = self.J.shape[0], self.U.shape[1]
            A = np.zeros((n + r, n + r))
            A[:n, :n] = h * self.J
            A[:n, n:] = h * self.U
            # a few hundred states: one BLAS thread is fastest (several threads contend
            # for the cores and make the exponential 10-30x slower on a busy machine)
            with threadpool_limits(limits=1 if n + r <= 600 else None, user_api="blas"):
                E = expm(A)
            if not np.all(np.isfinite(E)):
                raise SolverFailure(f"expm backend: the exponential over {h:.6g} min is not "
                                    "finite (non-finite or runaway rates)")
            Phi, W = np.ascontiguousarray(E[:n, :n]), np.ascontiguousarray(E[:n, n:])
            if self.conservative:
                Phi[np.diag_indices(n)] += 1.0 - Phi.sum(axis=0)
                if r:
                    top = np.argmax(np.abs(W), axis=0)
                    W[top, np.arange(r)] += h * self.U.sum(axis=0) - W.sum(axis=0)
            self.cache[h] = (Phi, W)
        return self.cache[h]


# ------------------------------------------------------------------ stepping
def propagate(props: Propagators, plan: Plan, schedule, coeffs: np.ndarray,
              y0: np.ndarray | None, n_out: int, sink=None) -> np.ndarray:
    """States at the output times of ``plan`` (rows to ``sink`` in blocks, if given).

    ``coeffs`` are the schedule's input coefficients in the basis of ``props``
    (:func:`input_basis`). On Ctrl-C raises
    :class:`~csfmodel.solvers.SolveInterrupted` with the rows completed (those
    handed to a sink are counted, not returned).
    """
    n = props.J.shape[0]
    jumps = np.asarray(schedule.jumps, float)
    y = np.zeros(n) if y0 is None else np.array(y0, float)
    block = max(1, _prepare.SINK_BYTES // (8 * n)) if sink else n_out
    out = np.empty((block if sink else n_out, n))
    rows, step_length, step_rate = plan.rows, plan.step_length, plan.step_rate
    mats = [props(float(h)) for h in plan.lengths]
    # the constant part of each step, per (length, schedule interval), made when first met
    forced: dict[tuple[int, int], np.ndarray | None] = {}
    done = 0          # rows completed (handed to the sink, or kept)
    first = 0         # output row of out[0] (sink: the current block)
    try:
        for j in range(len(plan.points)):
            if j:
                g, k = int(step_length[j - 1]), int(step_rate[j - 1])
                Phi, W = mats[g]
                y = Phi @ y
                if k >= 0:
                    key = (g, k)
                    if key not in forced:
                        c = coeffs[k]
                        forced[key] = W @ c if np.any(c) else None
                    f = forced[key]
                    if f is not None:
                        y += f
            e = int(plan.jump[j])
            if e >= 0:
                y = y + jumps[e]
            for i in range(int(rows[j]), int(rows[j + 1])):
                if sink and i - first == block:
                    sink(first, out)
                    first, done = i, i
                out[i - first] = y
                if not sink:
                    done = i + 1
        if sink and n_out > first:
            sink(first, out[: n_out - first])
            done = n_out
    except KeyboardInterrupt:
        raise SolveInterrupted(out[:0] if sink else out[:done], done) from None
    if not np.all(np.isfinite(y)):
        raise SolverFailure("expm backend: the state became non-finite")
    return out[:0] if sink else out


def _stats(plan: Plan, n_exponentials: int) -> Stats:
    steps = plan.n_steps
    h = plan.lengths
    return Stats(steps=steps, rejected=0, factorizations=n_exponentials,
                 min_step_min=float(h.min()) if h.size else None,
                 max_step_min=float(h.max()) if h.size else None)


def _system_key(problem, b: int) -> bytes:
    """A fingerprint of member ``b``'s matrix (members with equal arrays share one)."""
    d = hashlib.blake2b(digest_size=16)
    for name in _prepare.SYSTEM_FIELDS:
        d.update(np.ascontiguousarray(problem.stack[name][b]).tobytes())
    return d.digest()


class ExpmBackend(Backend):
    """Exact propagation on the output grid with matrix exponentials (see the module).

    Options: ``max_step`` splits longer steps into equal parts; ``rtol`` is
    recorded (the result is exact to rounding whatever it is); ``atol`` and
    ``first_step`` have no effect; every step is fixed (``adaptive`` makes no
    difference). It streams to a sink.
    """

    name = "expm"
    description = ("exact propagation on the output grid: matrix exponential of the "
                   "structured matrix once per step length, inputs piecewise constant "
                   "(tight tolerances on coarse grids)")
    methods = ("expm",)
    default_method = "expm"
    default_rtol = 1e-12
    rtol_range = (1e-14, 0.1)
    fixed_steps = True
    streams = True

    def _solve(self, system, schedule, t_out, options, y0, sink):
        plan = make_plan(schedule.times, t_out, options.max_step)
        U, (coeffs,) = input_basis([schedule])
        props = Propagators(system, U)
        states = propagate(props, plan, schedule, coeffs, y0, len(t_out), sink)
        return states, _stats(plan, len(props.cache))

    def _solve_batch(self, problem, options):
        """One member at a time; members with the same matrix share their exponentials."""
        B, T = problem.size, len(problem.t_out)
        summary = problem.summary
        values = np.empty((B, T if summary is None else len(summary.rows), problem.n_values))
        U, coeffs = input_basis(problem.schedules)
        plans = [make_plan(s.times, problem.t_out, options.max_step) for s in problem.schedules]
        shared: dict[bytes, Propagators] = {}
        stats = []
        for b in range(B):
            key = _system_key(problem, b)
            if key not in shared:
                shared[key] = Propagators(problem.system(b), U)
            props = shared[key]
            s = int(problem.schedule_index[b])
            before = len(props.cache)
            y0 = None if problem.y0 is None else problem.y0[b]
            try:
                states = propagate(props, plans[s], problem.schedules[s], coeffs[s], y0, T)
            except SolveInterrupted:
                raise SolveInterrupted(values[:, :0]) from None
            vals = problem.observe(b, states)
            values[b] = vals if summary is None else \
                summarize(vals[None], problem.t_out, summary, members=[b])[0]
            stats.append(_stats(plans[s], len(props.cache) - before))
        return values, stats
