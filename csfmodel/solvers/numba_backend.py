"""Fast backend: adaptive L-stable ESDIRK stepping on the structured matrix (numba).

The model is linear and time-invariant between dose events, so the matrix
``I - gamma h J`` of the implicit stages is factorized once per step size and
reused; the factorization and each solve cost O(N + M) through the structure
of :class:`~csfmodel.model.LinearSystem` (tridiagonal spinal block, cord
eliminated cell by cell, Schur complement for the compartment border). See
:mod:`csfmodel.solvers._structured` for the numerics.

Accuracy is controlled: every step's local error estimate (embedded pair,
filtered) and, right after a change of the inputs, the quality of the dense
output are kept below ``rtol`` times the running peak of each output variable
(spinal CSF concentration over z, cord concentration, each compartment). With
the default ``rtol`` (5e-5) the outputs agree with the scipy reference to about
1e-4 of each variable's peak (the tests ask for 1e-3). :func:`csfmodel.simulate`
writes the step statistics into the result's attrs (``solver_steps``,
``solver_max_error_estimate``, ``solver_rtol``, ...); pass a dict as ``stats`` to
:func:`solve` to get them directly.

Steps land exactly on every dose event (bolus jumps, changes of infusion
rates); output times in between are filled by cubic Hermite interpolation. A
run is done one simulated week per kernel call, so Ctrl-C is honoured within a
fraction of a second and hands back the rows already computed
(:class:`~csfmodel.solvers.SolveInterrupted`).

The kernels are compiled with ``cache=True``: the first call in a fresh
environment compiles them (~25 s for the single-run kernel, ~35 s more for the
parallel batch kernel) and stores the machine code next to the module (or in
``NUMBA_CACHE_DIR``); later processes load it in well under a second.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from csfmodel.model import LinearSystem, Schedule

__all__ = ["solve", "solve_batch", "border_pattern", "DEFAULT_RTOL", "DEFAULT_METHOD"]

#: default relative tolerance (of each variable's running peak) per step; chosen so
#: that outputs agree with the reference solver to well within 1e-3 of their peak
DEFAULT_RTOL = 5e-5
#: default time-stepping method
DEFAULT_METHOD = "esdirk3"
#: simulated time per kernel call (min) for grids of up to WINDOW_STATES states;
#: Ctrl-C is honoured between calls
WINDOW_MIN = 7 * 1440.0
#: the window shrinks in proportion beyond this many states (finer grids cost more)
WINDOW_STATES = 250
#: most output rows per kernel call, as bytes of states (also what a ``sink`` gets)
SINK_BYTES = 32 * 2**20


#: compile times measured on a clean cache (2-core machine), for the notice below
COMPILE_SECONDS = {"integrate": 40, "integrate_batch": 65}


def compile_notice(kernel_name: str) -> bool:
    """Say on stderr, once, that a kernel is about to be compiled (first use only).

    Nothing is printed when the kernel is already compiled in this process or its
    machine code is in numba's on-disk cache. Returns whether a notice was printed.
    """
    import os
    import sys

    from csfmodel.solvers import _structured as k

    kernel = getattr(k, kernel_name)
    if kernel.signatures:
        return False
    try:
        index = kernel._cache._cache_file._index_path
    except AttributeError:  # pragma: no cover - numba internals changed
        return False
    if os.path.exists(index):
        return False
    print(f"csfmodel: compiling the numba solver ({kernel_name}) for this machine: once, "
          f"about {COMPILE_SECONDS[kernel_name]} s on 2 cores; later runs load it from "
          f"{os.path.dirname(index)}", file=sys.stderr, flush=True)
    return True


def window_size(n_state: int) -> tuple[float, int]:
    """Simulated time (min) and output rows per kernel call of :func:`solve`.

    Windows depend only on the problem size, never on wall time, so a run gives
    the same numbers whether its rows are kept or streamed to a sink, and from one
    run to the next. About a simulated week of the 5 mm grid (and proportionally
    less on finer grids) takes well under a second, so an interrupt is honoured
    within a second.
    """
    return (WINDOW_MIN * min(1.0, WINDOW_STATES / n_state),
            max(1, SINK_BYTES // (8 * n_state)))

_STAT_NAMES = ("steps", "rejected", "factorizations", "max_error_estimate",
               "min_step_min", "max_step_min")


def border_pattern(border_rows: np.ndarray, border_cols: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparsity of the compartment border (union over a leading batch axis, if any).

    Returns ``(active_columns, row_ptr, row_idx)``: the compartments that feed
    the spatial states, and the CSR pattern of the border rows.
    """
    br = np.asarray(border_rows)
    bc = np.asarray(border_cols)
    if br.ndim == 3:
        br = np.any(br != 0.0, axis=0)
        bc = np.any(bc != 0.0, axis=0)
    else:
        br = br != 0.0
        bc = bc != 0.0
    act = np.flatnonzero(bc.any(axis=0)).astype(np.int64)
    ptr = np.zeros(br.shape[0] + 1, np.int64)
    ptr[1:] = np.cumsum(br.sum(axis=1))
    idx = np.concatenate([np.flatnonzero(r) for r in br]).astype(np.int64) \
        if br.shape[0] else np.zeros(0, np.int64)
    return act, ptr, idx


def _floor(total: float, rtol: float) -> float:
    # absolute floor of the error scale (ug): 1e-4 of the tolerance on the total dose,
    # far below rtol x the peak of any reported variable in practice
    return max(1e-4 * rtol * total, 1e-300)


def _check(rtol: float, max_step: float | None, method: str) -> None:
    from csfmodel.errors import ScenarioError
    from csfmodel.solvers._structured import METHODS

    if method not in METHODS:
        raise ScenarioError("method", method, "one of: " + ", ".join(METHODS))
    if not (isinstance(rtol, (int, float)) and 1e-12 <= rtol <= 1e-1):
        raise ScenarioError("rtol", rtol, "a relative tolerance between 1e-12 and 0.1")
    if max_step is not None and not (max_step > 0):
        raise ScenarioError("max_step", max_step, "a positive step in min")


def _check_finished(st: np.ndarray, n_out: int, t_reached: float, member: str = "") -> None:
    """Raise :class:`~csfmodel.solvers.SolverFailure` unless every output row was written."""
    from csfmodel.solvers import SolverFailure
    from csfmodel.solvers import _structured as k

    if st[k.ST_FAILED] or int(st[k.ST_ROWS]) != n_out:
        why = ("the step size collapsed (non-finite or runaway values)" if st[k.ST_FAILED]
               else f"only {int(st[k.ST_ROWS])} of {n_out} output rows were reached")
        raise SolverFailure(f"numba backend{member}: integration stopped at t = "
                            f"{t_reached:.6g} min: {why}")


def solve(system: LinearSystem, schedule: Schedule, t_out: np.ndarray, *,
          rtol: float = DEFAULT_RTOL, max_step: float | None = None,
          first_step: float | None = None, adaptive: bool = True, method: str = DEFAULT_METHOD,
          y0: np.ndarray | None = None, stats: dict | None = None,
          sink: Callable[[int, np.ndarray], None] | None = None) -> np.ndarray:
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
        output variable.
    max_step
        Largest step (min); default unlimited (steps end on dose events anyway).
    first_step
        Step (min) tried first after a bolus; default: learned from the first bolus.
    adaptive
        ``False`` disables error control: every step is the largest ``gap / 2^k``
        of the interval between events not exceeding ``max_step`` (for
        convergence studies).
    method
        ``"esdirk3"`` (third order, default) or ``"trbdf2"`` (second order); both
        are L-stable and stiffly accurate with one matrix ``I - gamma h J`` per step.
    y0
        Initial state (amounts, ug); zeros by default.
    stats
        If a dict is given, it is filled with ``steps``, ``rejected``,
        ``factorizations``, ``max_error_estimate`` (largest accepted scaled error,
        ≤ 1), ``min_step_min`` and ``max_step_min``.
    sink
        If given, the states are not kept: each window's rows are handed to
        ``sink(first_row, states)`` as soon as they are computed (at most
        ``SINK_BYTES`` per call), so memory stays bounded however long the run.

    Returns
    -------
    numpy.ndarray
        States (ug), shape ``(len(t_out), n_state)``; ``(0, n_state)`` with a sink.
    """
    from csfmodel.solvers import _structured as k
    from csfmodel.solvers import check_inputs

    _check(rtol, max_step, method)
    if not adaptive and max_step is None:
        raise ValueError("adaptive=False needs max_step")
    s = system
    t_out = check_inputs(system, schedule, t_out, y0)
    act, ptr, idx = border_pattern(s.border_rows, s.border_cols)
    y = np.zeros(s.n_state) if y0 is None else np.array(y0, float)
    n_out = len(t_out)
    out = np.empty((0 if sink else n_out, s.n_state))
    st = np.zeros(k.N_STATS)
    empty_i = np.zeros(0, np.int64)
    head = (s.lower, s.diag, s.upper, s.cord_diag, s.csf_to_cord, s.cord_to_csf,
            np.ascontiguousarray(s.border_rows), np.ascontiguousarray(s.border_cols),
            np.ascontiguousarray(s.block), s.volume, act, ptr, idx,
            np.ascontiguousarray(schedule.times, dtype=float),
            np.ascontiguousarray(schedule.jumps), np.ascontiguousarray(schedule.rates),
            float(schedule.t_end), t_out, y, empty_i, empty_i, np.zeros(0),
            *k._tableau(method)[:3], float(rtol), _floor(schedule.total_dosed(), rtol),
            float(np.inf if max_step is None else max_step),
            float(np.inf if first_step is None else first_step), bool(adaptive))
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
            k.integrate(*head, buf, st, np.zeros((4, 0)), resume, io_stop)
            if st[k.ST_FAILED]:
                break
            reached = int(resume[3])
            if sink and reached > done:
                sink(done, buf[: reached - done])
            done = reached
            if resume[1] >= schedule.t_end:
                break
    except KeyboardInterrupt:
        from csfmodel.solvers import SolveInterrupted

        raise SolveInterrupted(out[:done]) from None
    _check_finished(st, len(t_out), float(resume[1]))
    if stats is not None:
        stats.update({name: (int(v) if i < 3 else float(v))
                      for i, (name, v) in enumerate(zip(_STAT_NAMES, st))})
    return out


def solve_batch(systems: list[LinearSystem], schedules: list[Schedule], t_out: np.ndarray, *,
                schedule_index: np.ndarray | None = None,
                observables: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                rtol: float | np.ndarray = DEFAULT_RTOL, max_step: float | None = None,
                method: str = DEFAULT_METHOD, stats: list | None = None) -> np.ndarray:
    """Solve many parameter sets of the same grid size in one parallel call.

    Parameters
    ----------
    systems
        ``B`` linear systems with identical shapes (same grid size).
    schedules
        Dose schedules; member ``b`` uses ``schedules[schedule_index[b]]``
        (default: one schedule per system, or a single shared one).
    t_out
        Output times (min), shared by the batch.
    observables
        Optional CSR rows ``(ptr, idx, weights)`` over the state: what is stored
        at each output time (default: the full state). ``weights`` may be 2-D,
        one row per member (same pattern, e.g. divided by each member's volumes).
    rtol
        Tolerance, scalar or one per member.
    stats
        If a list is given, one dict of step statistics per member is appended.

    Returns
    -------
    numpy.ndarray
        ``(B, len(t_out), n_state or n_observables)``.
    """

    B = len(systems)
    if B == 0:
        return np.zeros((0, len(t_out), 0))
    s0 = systems[0]
    for s in systems:
        if (s.n_spinal, s.n_cord, s.n_state) != (s0.n_spinal, s0.n_cord, s0.n_state):
            raise ValueError("all systems of a batch must have the same grid size")
    if schedule_index is None:
        schedule_index = np.arange(B) if len(schedules) == B else np.zeros(B, np.int64)
    schedule_index = np.asarray(schedule_index, np.int64)
    if schedule_index.shape != (B,) or schedule_index.min() < 0 or \
            schedule_index.max() >= len(schedules):
        raise ValueError("schedule_index must give a schedule for each system")
    rt = np.broadcast_to(np.asarray(rtol, float), (B,)).copy()
    for r in rt:
        _check(float(r), max_step, method)
    stack = {name: np.ascontiguousarray(np.stack([getattr(s, name) for s in systems]))
             for name in ("lower", "diag", "upper", "cord_diag", "csf_to_cord", "cord_to_csf",
                          "border_rows", "border_cols", "block", "volume")}
    return _run_batch(stack, schedules, schedule_index, t_out, observables, rt, max_step, method,
                      stats)


def _run_batch(stack: dict, schedules: list[Schedule], schedule_index: np.ndarray,
               t_out: np.ndarray, observables, rt: np.ndarray, max_step: float | None,
               method: str, stats: list | None, out: np.ndarray | None = None,
               summary: bool = False) -> np.ndarray:
    """Call the parallel kernel on stacked arrays (``stack[name]`` has a batch axis).

    ``out`` may pass a buffer of the result's shape to reuse. With ``summary``
    (observables only) the result is ``(B, 4, n_obs)``: maximum, time of maximum
    (min), integral over the output times (x min) and final value.
    """
    job = batch_job(stack, schedules, schedule_index, t_out, observables, rt, max_step,
                    method, out, summary)
    run_batch_job(job)
    return job_result(job, stats)


def batch_job(stack: dict, schedules: list[Schedule], schedule_index: np.ndarray,
              t_out: np.ndarray, observables, rt: np.ndarray, max_step: float | None,
              method: str, out: np.ndarray | None = None, summary: bool = False) -> dict:
    """Everything the batch kernel needs, prepared in Python (see :func:`run_batch_job`).

    Separate from the kernel call so that a caller can prepare the next batch
    while the compiled kernel (which releases the GIL) runs in another thread.
    """
    from csfmodel.solvers import _structured as k

    B = stack["diag"].shape[0]
    n_state = stack["volume"].shape[1]
    act, ptr, idx = border_pattern(stack["border_rows"], stack["border_cols"])
    s_ptr = np.zeros(len(schedules) + 1, np.int64)
    s_ptr[1:] = np.cumsum([len(s.times) for s in schedules])
    times = np.concatenate([s.times for s in schedules]).astype(float)
    jumps = np.ascontiguousarray(np.concatenate([s.jumps for s in schedules]))
    rates = np.ascontiguousarray(np.concatenate([s.rates for s in schedules]))
    totals = np.array([s.total_dosed() for s in schedules])[schedule_index]
    t_end = np.array([s.t_end for s in schedules], float)[schedule_index]
    floor = np.array([_floor(tot, r) for tot, r in zip(totals, rt)])
    if observables is None:
        o_ptr, o_idx, o_w = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((B, 0))
        n_obs = n_state
    else:
        o_ptr, o_idx = (np.ascontiguousarray(observables[0], np.int64),
                        np.ascontiguousarray(observables[1], np.int64))
        o_w = np.ascontiguousarray(np.broadcast_to(np.asarray(observables[2], float),
                                                   (B, len(o_idx))))
        n_obs = len(o_ptr) - 1
    t_out = np.ascontiguousarray(t_out, dtype=float)
    from csfmodel.solvers import check_batch_inputs

    check_batch_inputs(stack, schedules, t_out)
    if summary and observables is None:
        raise ValueError("summary needs observables")
    summ = np.zeros((B, 4, n_obs if summary else 0))
    if summary:
        out = np.empty((B, 0, n_obs))
    elif out is None or out.shape != (B, len(t_out), n_obs) or not out.flags.c_contiguous:
        out = np.empty((B, len(t_out), n_obs))
    st = np.zeros((B, k.N_STATS))
    args = (stack["lower"], stack["diag"], stack["upper"], stack["cord_diag"],
            stack["csf_to_cord"], stack["cord_to_csf"], stack["border_rows"],
            stack["border_cols"], stack["block"], stack["volume"], act, ptr, idx,
            times, jumps, rates, np.ascontiguousarray(s_ptr),
            np.ascontiguousarray(schedule_index, np.int64), t_end, t_out,
            o_ptr, o_idx, o_w, *k._tableau(method)[:3], np.ascontiguousarray(rt, float), floor,
            float(np.inf if max_step is None else max_step), float(np.inf), out, st, summ)
    return {"args": args, "out": out, "summ": summ, "stats": st, "summary": summary,
            "n_out": len(t_out)}


def run_batch_job(job: dict) -> None:
    """Run the parallel kernel on a prepared job (no Python work: the GIL is free)."""
    import numba

    from csfmodel.solvers import _structured as k

    compile_notice("integrate_batch")
    # dynamic scheduling (one member at a time): members differ in cost, and the
    # caller may be assembling the next batch on one of the cores meanwhile
    old_chunk = numba.set_parallel_chunksize(1)
    try:
        k.integrate_batch(*job["args"])
    finally:
        numba.set_parallel_chunksize(old_chunk)


def job_result(job: dict, stats: list | None = None) -> np.ndarray:
    """The result of a finished job (and its step statistics appended to ``stats``).

    Raises :class:`~csfmodel.solvers.SolverFailure` if any member did not reach every
    output time.
    """
    n_out = job["n_out"]
    for b, row in enumerate(job["stats"]):
        _check_finished(row, n_out, float("nan"), f" (batch member {b})")
    if stats is not None:
        for row in job["stats"]:
            stats.append({name: (int(v) if i < 3 else float(v))
                          for i, (name, v) in enumerate(zip(_STAT_NAMES, row))})
    return job["summ"] if job["summary"] else job["out"]
