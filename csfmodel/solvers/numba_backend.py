"""Fast backend: adaptive L-stable ESDIRK stepping on the structured matrix (numba).

The model is linear and time-invariant between dose events, so the matrix
``I - gamma h J`` of the implicit stages is factorized once per step size and
reused; the factorization and each solve cost O(N + M) through the structure
of :class:`~csfmodel.model.LinearSystem` (tridiagonal spinal block, cord
eliminated cell by cell, Schur complement for the compartment border). See
:mod:`csfmodel.solvers._numba_kernels` for the numerics; the methods
(``esdirk3``, default, and ``trbdf2``) are tableaus of
:mod:`csfmodel.solvers._tableaus`.

Accuracy is controlled: every step's local error estimate (embedded pair,
filtered) and, right after a change of the inputs, the quality of the dense
output are kept below ``rtol`` times the running peak of each output variable
(spinal CSF concentration over z, cord concentration, each compartment). With
the default ``rtol`` (5e-5) the outputs agree with the scipy reference to about
1e-4 of each variable's peak (the tests ask for 1e-3). :func:`csfmodel.simulate`
writes the step statistics into the result's attrs (``solver_steps``,
``solver_max_error_estimate``, ``solver_rtol``, ...).

The default method, ``"auto"``, runs ``esdirk3``, or, for tolerances tighter than
:data:`EXPM_RTOL` on coarse grids, propagates exactly with matrix exponentials on
the output grid (:mod:`~csfmodel.solvers.expm_backend`), which is cheaper there.

Steps land exactly on every dose event (bolus jumps, changes of infusion
rates); output times in between are filled by cubic Hermite interpolation. A
run is done one simulated week per kernel call (:func:`window_size`), so Ctrl-C
is honoured within a fraction of a second and hands back the rows already
computed (:class:`~csfmodel.solvers.SolveInterrupted`), and a ``sink`` receives
each window's rows as soon as they are computed (memory bounded by a window).

Batches (:meth:`NumbaBackend.solve_batch`) run in one parallel kernel call
(``prange`` over the threads, members dealt round-robin); with ``summary`` the kernel
keeps only each observable's maximum, time of maximum, integral and final
value, so sweeps of 10^5 scenarios need no memory for time series.

The kernels are compiled with ``cache=True``: the first call in a fresh
environment compiles them (~40 s for the single-run kernel, ~65 s more for the
parallel batch kernel on 2 cores; one line on stderr says so) and stores the
machine code next to the module (or in ``NUMBA_CACHE_DIR``); later processes
load it in well under a second.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from csfmodel.solvers import _prepare
from csfmodel.solvers._backend import Backend
from csfmodel.solvers._options import SolveInterrupted, SolverFailure, Stats
from csfmodel.solvers._prepare import (
    atol_floor,
    border_pattern,
    kernel_array,
    summary_buffer,
    summary_spec,
    summary_values,
)
from csfmodel.solvers._tableaus import METHODS, TABLEAUS

__all__ = ["NumbaBackend", "DEFAULT_RTOL", "EXPM_RTOL", "auto_method", "window_size",
           "compile_notice", "compiled_signatures"]

#: default relative tolerance (of each variable's running peak) per step; chosen so
#: that outputs agree with the reference solver to well within 1e-3 of their peak
DEFAULT_RTOL = 5e-5
#: simulated time per kernel call (min) for grids of up to WINDOW_STATES states;
#: Ctrl-C is honoured between calls
WINDOW_MIN = 7 * 1440.0
#: the window shrinks in proportion beyond this many states (finer grids cost more)
WINDOW_STATES = 250

#: The ``"auto"`` method (the default) propagates exactly with matrix exponentials
#: (:mod:`~csfmodel.solvers.expm_backend`) where that is cheaper than adaptive steps to the
#: tolerance asked for: ``rtol`` at most ``EXPM_RTOL``, at most ``EXPM_MAX_STATES`` states
#: (grids of 5 mm and coarser), distinct step lengths ``L`` with ``L n^3`` at most
#: ``EXPM_MAX_WORK`` (two exponentials of 300 states: 5 lengths at 5 mm, hundreds at
#: 2 cm) and at most ``EXPM_MAX_STEPS`` steps between output times and dose events;
#: otherwise ``esdirk3``.
#: Measured on the 7-day pump benchmark (``benchmarks/work_precision.py``, one core): at
#: 5 mm the exponentials take ~35 ms for an error below 1.2e-10 of peak, esdirk3 ~30 ms
#: at rtol 1e-6 (error 2.4e-6), ~55 ms at 1e-7 (3e-7) and ~0.3 s at 1e-9 (3e-9); at 2 mm
#: (527 states) one exponential costs about as much as esdirk3 at rtol 1e-8, at 1 mm
#: (1043 states) ~2 s, as much as esdirk3 at 1e-9.
EXPM_RTOL = 1e-7
EXPM_MAX_STATES = 300
EXPM_MAX_WORK = 2 * 300**3
EXPM_MAX_STEPS = 20_000

#: compile times measured on a clean cache (2-core machine), for the notice below
COMPILE_SECONDS = {"integrate": 40, "integrate_batch": 65}


def compile_notice(kernel_name: str) -> bool:
    """Say on stderr, once, that a kernel is about to be compiled (first use only).

    Nothing is printed when the kernel is already compiled in this process or its
    machine code is in numba's on-disk cache. Returns whether a notice was printed.
    """
    import os
    import sys

    from csfmodel.solvers import _numba_kernels as k

    kernel = getattr(k, kernel_name)
    try:
        if kernel.signatures:
            return False
        index = kernel._cache._cache_file._index_path
    except AttributeError:  # numba internals changed, or not a numba dispatcher (tests)
        return False
    if os.path.exists(index):
        return False
    print(f"csfmodel: compiling the numba solver ({kernel_name}) for this machine: once, "
          f"about {COMPILE_SECONDS[kernel_name]} s on 2 cores; later runs load it from "
          f"{os.path.dirname(index)}", file=sys.stderr, flush=True)
    return True


def compiled_signatures() -> dict[str, int]:
    """How many specialisations of each numba kernel this process has compiled or loaded.

    One per kernel is the design: the backend hands every array over in one form
    (:func:`~csfmodel.solvers._prepare.kernel_array`), so read-only, strided,
    ``int32`` or ``float32`` inputs never cost a second compilation. Kernels that
    are only inlined, or not used yet, count 0.
    """
    from numba.core.dispatcher import Dispatcher

    from csfmodel.solvers import _numba_kernels as k

    return {name: len(obj.signatures) for name, obj in vars(k).items()
            if isinstance(obj, Dispatcher)}


def window_size(n_state: int) -> tuple[float, int]:
    """Simulated time (min) and output rows per kernel call of a single run.

    Windows depend only on the problem size, never on wall time, so a run gives
    the same numbers whether its rows are kept or streamed to a sink, and from one
    run to the next. About a simulated week of the 5 mm grid (and proportionally
    less on finer grids) takes well under a second, so an interrupt is honoured
    within a second.
    """
    return (WINDOW_MIN * min(1.0, WINDOW_STATES / n_state),
            max(1, _prepare.SINK_BYTES // (8 * n_state)))


def auto_method(options, n_state: int, schedules, t_out: np.ndarray) -> str:
    """What the ``"auto"`` method runs for this problem: ``"expm"`` or ``"esdirk3"``.

    ``"expm"`` where exact propagation is the cheaper way to the tolerance asked
    for (see :data:`EXPM_RTOL`): a tight ``rtol``, adaptive steps, a coarse grid, and
    few distinct step lengths and not too many steps on the output grid.
    """
    from csfmodel.solvers.expm_backend import make_plan

    if not options.adaptive or options.rtol > EXPM_RTOL or n_state > EXPM_MAX_STATES:
        return "esdirk3"
    plans = [make_plan(s.times, t_out, options.max_step) for s in schedules]
    lengths = np.unique(np.concatenate([p.lengths for p in plans]))
    if len(lengths) * float(n_state)**3 > EXPM_MAX_WORK or \
            max(p.n_steps for p in plans) > EXPM_MAX_STEPS:
        return "esdirk3"
    return "expm"


def _check_finished(st: np.ndarray, n_out: int, t_reached: float, member: str = "") -> None:
    """Raise :class:`~csfmodel.solvers.SolverFailure` unless every output row was written."""
    from csfmodel.solvers import _numba_kernels as k

    if st[k.ST_FAILED] or int(st[k.ST_ROWS]) != n_out:
        why = ("the step size collapsed (non-finite or runaway values)" if st[k.ST_FAILED]
               else f"only {int(st[k.ST_ROWS])} of {n_out} output rows were reached")
        raise SolverFailure(f"numba backend{member}: integration stopped at t = "
                            f"{t_reached:.6g} min: {why}")


def _tableau_args(method: str) -> tuple[float, np.ndarray, np.ndarray]:
    tab = TABLEAUS[method]
    return float(tab.gamma), kernel_array(tab.A), kernel_array(tab.error_weights)


class NumbaBackend(Backend):
    """Adaptive ESDIRK on the structured matrix, compiled with numba (the default backend).

    Options: ``rtol`` (default :data:`DEFAULT_RTOL`), ``atol``, ``max_step``,
    ``first_step`` (step tried first after a bolus; default learned from the
    first bolus), ``method`` (``"auto"``, default: ``"esdirk3"``, or ``"expm"`` where
    that is cheaper, see :func:`auto_method`; ``"esdirk3"``, ``"trbdf2"``; ``"expm"``:
    exact propagation, :mod:`~csfmodel.solvers.expm_backend`), ``adaptive=False``
    (every step is the largest ``gap / 2^k`` of the interval between events not
    exceeding ``max_step``; for convergence studies). It streams to a sink.
    A :class:`~csfmodel.solvers.Solution` records the method that was run.
    """

    name = "numba"
    methods = (*METHODS, "expm", "auto")
    default_method = "auto"
    default_rtol = DEFAULT_RTOL
    fixed_steps = True
    streams = True

    def _choose(self, options, n_state, schedules, t_out):
        if options.method != "auto":
            return options
        return replace(options, method=auto_method(options, n_state, schedules, t_out))

    def _solve(self, system, schedule, t_out, options, y0, sink):
        if options.method == "expm":
            return _expm()._solve(system, schedule, t_out, options, y0, sink)
        from csfmodel.solvers import _numba_kernels as k

        s = system
        act, ptr, idx = border_pattern(s.border_rows, s.border_cols)
        y = np.zeros(s.n_state) if y0 is None else np.array(y0, float)
        total = schedule.total_dosed() + (np.abs(y).sum() if y0 is not None else 0.0)
        floor = options.atol if options.atol is not None else atol_floor(total, options.rtol)
        n_out = len(t_out)
        out = np.empty((0 if sink else n_out, s.n_state))
        st = np.zeros(k.N_STATS)
        empty_i = np.zeros(0, np.int64)
        # every array in one form (kernel_array): one compiled specialisation per kernel
        arrays = [kernel_array(getattr(s, name)) for name in _prepare.SYSTEM_FIELDS]
        head = (*arrays, act, ptr, idx, kernel_array(schedule.times),
                kernel_array(schedule.jumps), kernel_array(schedule.rates),
                float(schedule.t_end), kernel_array(t_out), y, empty_i, empty_i, np.zeros(0),
                *_tableau_args(options.method), float(options.rtol), float(floor),
                float(np.inf if options.max_step is None else options.max_step),
                float(np.inf if options.first_step is None else options.first_step),
                bool(options.adaptive))
        # integrate in windows (see window_size): between two windows Python can act on
        # Ctrl-C, and the rows already computed are handed back (or to the sink)
        resume = np.zeros(k.RESUME_SIZE + 2 + s.block.shape[0])
        window, max_rows = window_size(s.n_state)
        compile_notice("integrate")
        done = 0
        try:
            while done < n_out:
                io_stop = max(int(np.searchsorted(t_out, t_out[done] + window, side="right")),
                              done + 1)
                io_stop = min(io_stop, done + max_rows)
                buf = np.empty((io_stop - done, s.n_state)) if sink else out
                resume[k.RESUME_ROW0] = done if sink else 0
                k.integrate(*head, buf, st, np.zeros((4, 0)), np.zeros(k.SPEC_SIZE), resume,
                            io_stop)
                if st[k.ST_FAILED]:
                    break
                reached = int(resume[3])
                if sink and reached > done:
                    sink(done, buf[: reached - done])
                done = reached
                if resume[1] >= schedule.t_end:
                    break
        except KeyboardInterrupt:
            raise SolveInterrupted(out[:done], done) from None
        _check_finished(st, n_out, float(resume[1]))
        return out, Stats.from_vector(st)

    def _solve_batch(self, problem, options):
        """All members in one parallel kernel call (observables and summaries in the kernel)."""
        if options.method == "expm":
            return _expm()._solve_batch(problem, options)

        import numba

        from csfmodel.solvers import _numba_kernels as k

        stack = {name: kernel_array(a) for name, a in problem.stack.items()}
        B, n_state = problem.size, problem.n_state
        schedules = problem.schedules
        act, ptr, idx = border_pattern(stack["border_rows"], stack["border_cols"])
        s_ptr = np.zeros(len(schedules) + 1, np.int64)
        s_ptr[1:] = np.cumsum([len(s.times) for s in schedules])
        times = kernel_array(np.concatenate([np.asarray(s.times, float) for s in schedules]))
        jumps = kernel_array(np.concatenate([np.asarray(s.jumps, float) for s in schedules]))
        rates = kernel_array(np.concatenate([np.asarray(s.rates, float) for s in schedules]))
        t_end = np.array([s.t_end for s in schedules], float)[problem.schedule_index]
        rtol = np.full(B, float(options.rtol))
        floor = (np.full(B, float(options.atol)) if options.atol is not None else
                 np.array([atol_floor(tot, options.rtol) for tot in problem.totals]))
        y0s = np.zeros((B, n_state)) if problem.y0 is None else kernel_array(problem.y0)
        if problem.observables is None:
            o_ptr, o_idx, o_w = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((B, 0))
        else:
            o_ptr, o_idx, w = (kernel_array(a, dt) for a, dt in
                               zip(problem.observables, (np.int64, np.int64, np.float64)))
            # a (B, nnz) copy: np.broadcast_to alone is read-only, another numba type
            o_w = kernel_array(np.broadcast_to(w, (B, len(o_idx))))
        n_obs = problem.n_values
        t_out = problem.t_out
        summary = problem.summary
        if summary is None:            # series: no summary columns
            summ, spec = np.zeros((B, 4, 0)), np.zeros((B, k.SPEC_SIZE))
        else:
            summ, spec = summary_buffer(summary, B, n_obs), summary_spec(summary, t_out, B)
        out = np.empty((B, 0 if summary is not None else len(t_out), n_obs))
        st = np.zeros((B, k.N_STATS))
        compile_notice("integrate_batch")
        # the kernel deals the members round-robin to its threads (members differ in
        # cost, and a sweep often orders them by it)
        k.integrate_batch(stack["lower"], stack["diag"], stack["upper"], stack["cord_diag"],
                          stack["csf_to_cord"], stack["cord_to_csf"], stack["border_rows"],
                          stack["border_cols"], stack["block"], stack["volume"], act, ptr,
                          idx, times, jumps, rates, s_ptr,
                          kernel_array(problem.schedule_index, np.int64), t_end,
                          kernel_array(t_out), y0s, o_ptr, o_idx, o_w,
                          *_tableau_args(options.method),
                          rtol, floor,
                          float(np.inf if options.max_step is None else options.max_step),
                          float(np.inf if options.first_step is None
                                else options.first_step),
                          bool(options.adaptive), out, st, summ, spec,
                          numba.get_num_threads())
        for b, row in enumerate(st):
            _check_finished(row, len(t_out), float("nan"), f" (batch member {b})")
        values = summary_values(summary, summ) if summary is not None else out
        return values, [Stats.from_vector(row) for row in st]


def _expm():
    """The exact propagator (method ``"expm"``)."""
    from csfmodel.solvers.expm_backend import ExpmBackend

    return ExpmBackend()
