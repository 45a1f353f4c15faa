"""The backend contract: what every backend does, written once.

A backend is a subclass of :class:`Backend` that declares what it can do
(class attributes: its methods, default tolerance, range of tolerances, whether
it has fixed steps or streams its rows) and implements one hook,
:meth:`Backend._solve`, and, if it has a faster way than a loop over members,
:meth:`Backend._solve_batch`. The public methods :meth:`Backend.solve` and
:meth:`Backend.solve_batch` are the same for every backend (py-pde's solvers
are written the same way: the generic part once, the backend's kernels
beside it): they resolve and check the options against the backend,
check the inputs (:mod:`~csfmodel.solvers._prepare`), hand the rows to a
``sink`` for backends that do not stream themselves, and wrap the results in a
:class:`~csfmodel.solvers.Solution` / :class:`~csfmodel.solvers.BatchSolution`.

A hook may assume checked inputs: ``t_out`` a contiguous float array inside the
span of the schedule, options resolved (``rtol`` and ``method`` set, within the
backend's declared ranges), ``y0`` ``None`` or a finite ``(n_state,)`` array. It
raises :class:`~csfmodel.solvers.SolverFailure` rather than return a row it did
not reach or a non-finite value, and :class:`~csfmodel.solvers.SolveInterrupted`
with the rows completed on Ctrl-C.

Backends are reached through the registry only (:mod:`~csfmodel.solvers._registry`):
``get_backend("numba")``, ``csfmodel.solvers.solve(..., backend="jax")``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import ClassVar

import numpy as np

from csfmodel.errors import ScenarioError
from csfmodel.solvers import _prepare
from csfmodel.solvers._options import (
    BatchSolution,
    Solution,
    SolveInterrupted,
    SolverOptions,
    Stats,
    Summary,
)
from csfmodel.solvers._prepare import BatchProblem, check_inputs, prepare_batch, summarize
from csfmodel.solvers._tableaus import METHODS

__all__ = ["Backend", "Sink"]

#: ``sink(first_row, states)``: receives the output rows as they are computed
Sink = Callable[[int, np.ndarray], None]


class Backend:
    """Base class of the backends (subclass it, implement :meth:`_solve`, register it).

    Class attributes (what a backend declares)
    ------------------------------------------
    name, description
        Registry name, and one line for ``csfmodel presets solvers`` (used when the
        class itself is registered; the built-in backends are registered lazily by
        module path, with their line in :mod:`csfmodel.solvers`).
    methods, default_method
        The methods it can run (:class:`~csfmodel.solvers.SolverOptions.method`).
    default_rtol, rtol_range
        Tolerance used when none is given, and the range it can meet.
    fixed_steps
        Whether it runs ``adaptive=False`` (fixed steps).
    streams
        Whether it hands rows to a ``sink`` as it computes them (memory bounded by
        a window); otherwise :meth:`solve` solves first and then hands the rows over.
    settings
        Keyword arguments of its constructor (backend-specific settings).
    """

    name: ClassVar[str] = "backend"
    description: ClassVar[str] = ""
    methods: ClassVar[tuple[str, ...]] = METHODS
    default_method: ClassVar[str] = METHODS[0]
    default_rtol: ClassVar[float] = 1e-6
    rtol_range: ClassVar[tuple[float, float]] = (1e-12, 0.1)
    fixed_steps: ClassVar[bool] = False
    streams: ClassVar[bool] = False
    settings: ClassVar[tuple[str, ...]] = ()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.settings)
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ options
    def resolve(self, options: SolverOptions | None = None) -> SolverOptions:
        """The options with this backend's defaults filled in, checked against it.

        Raises
        ------
        ScenarioError
            A method it does not have, a tolerance outside its range, fixed steps
            where it has none.
        """
        o = SolverOptions() if options is None else options
        if not isinstance(o, SolverOptions):
            raise TypeError(f"options must be SolverOptions, not {type(o).__name__}")
        method = self.default_method if o.method is None else o.method
        if method not in self.methods:
            raise ScenarioError("method", method, f"one of ({self.name} backend): "
                                + ", ".join(self.methods))
        rtol = self.default_rtol if o.rtol is None else o.rtol
        lo, hi = self.rtol_range
        if not lo <= rtol <= hi:
            raise ScenarioError("rtol", rtol, f"a relative tolerance between {lo:g} and {hi:g} "
                                f"({self.name} backend)")
        if not o.adaptive and not self.fixed_steps:
            raise ScenarioError("adaptive", False, f"True (the {self.name} backend has no "
                                "fixed steps)")
        return replace(o, rtol=rtol, method=method)

    # ------------------------------------------------------------------ single runs
    def solve(self, system, schedule, t_out, options: SolverOptions | None = None, *,
              y0: np.ndarray | None = None, sink: Sink | None = None) -> Solution:
        """Integrate ``dy/dt = J y + u`` with the jumps of ``schedule``; states at ``t_out``.

        Parameters
        ----------
        system, schedule
            From :func:`csfmodel.model.build_model` and
            :func:`csfmodel.model.build_schedule`.
        t_out
            Output times (min), non-decreasing, within ``[0, schedule.t_end]``.
        options
            :class:`~csfmodel.solvers.SolverOptions`; default: the backend's defaults.
        y0
            Initial state (amounts, ug); zeros by default.
        sink
            If given, the states are not kept: rows are handed to
            ``sink(first_row, states)`` (at most ``SINK_BYTES`` per call) and the
            solution's ``states`` is empty.

        Raises
        ------
        ScenarioError
            Bad options or inputs (before any work).
        SolverFailure
            The integration did not reach every output time.
        SolveInterrupted
            Ctrl-C, with the rows completed (``n_done`` counts those given to a sink).
        """
        opts = self.resolve(options)
        t = check_inputs(system, schedule, t_out, y0)
        _prepare.check_schedule(schedule, system.n_state)
        opts = self._choose(opts, system.n_state, (schedule,), t)
        if y0 is not None:
            y0 = np.array(y0, float)
            if y0.shape != (system.n_state,):
                raise ValueError(f"y0 must have shape ({system.n_state},)")
        if sink is None or self.streams:
            states, stats = self._solve(system, schedule, t, opts, y0, sink)
        else:
            try:
                states, stats = self._solve(system, schedule, t, opts, y0, None)
            except SolveInterrupted as exc:
                _hand_over(exc.states, sink)
                raise SolveInterrupted(exc.states[:0], len(exc.states)) from None
            _hand_over(states, sink)
            states = states[:0]
        return Solution(t=t, states=states, stats=stats, options=opts, backend=self.name)

    def _choose(self, options: SolverOptions, n_state: int, schedules,
                t_out: np.ndarray) -> SolverOptions:
        """The method for this problem, where the resolved one leaves the choice open.

        Called with checked inputs before :meth:`_solve` / :meth:`_solve_batch`; the
        options it returns are those used and recorded. Default: unchanged (a
        backend with an ``"auto"`` method replaces it with the method it picks).
        """
        return options

    def _solve(self, system, schedule, t_out: np.ndarray, options: SolverOptions,
               y0: np.ndarray | None, sink: Sink | None) -> tuple[np.ndarray, Stats]:
        """The backend's integrator: ``(states, stats)`` (see the module docstring)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ batches
    def solve_batch(self, systems, schedules, t_out, options: SolverOptions | None = None, *,
                    schedule_index=None, y0=None, observables=None,
                    summary: bool | Summary = False) -> BatchSolution:
        """Solve many parameter sets of the same grid size.

        Parameters
        ----------
        systems
            ``B`` linear systems of the same grid size, or their arrays stacked
            along a leading batch axis (a mapping with the names of
            :data:`~csfmodel.solvers._prepare.SYSTEM_FIELDS`).
        schedules
            One schedule shared by the batch, or several: member ``b`` uses
            ``schedules[schedule_index[b]]`` (default: ``schedules[b]`` when there
            are ``B``, else the first).
        t_out
            Output times (min), shared.
        options
            As for :meth:`solve` (one tolerance for the batch).
        y0
            Initial states, ``(n_state,)`` or ``(B, n_state)``; zeros by default.
        observables
            What to keep at each output time: CSR rows ``(ptr, idx, weights)``
            over the state (``weights`` ``(nnz,)``, or ``(B, nnz)`` one row per
            member with the same pattern) or a dense ``(n_obs, n_state)`` matrix;
            default the full state.
        summary
            Keep only summaries of the observables along time: ``True`` for max,
            time of max, integral and final value, or a :class:`Summary` for
            more rows (window mean, time above a threshold, peak effect site).

        Returns
        -------
        BatchSolution
            ``values`` ``(B, len(t_out), n)`` or, with ``summary``,
            ``(B, len(rows), n)`` (``rows``: the names of the summary's rows).
        """
        opts = self.resolve(options)
        problem = prepare_batch(systems, schedules, t_out, schedule_index=schedule_index,
                                y0=y0, observables=observables, summary=summary)
        opts = self._choose(opts, problem.n_state, problem.schedules, problem.t_out)
        values, stats = self._solve_batch(problem, opts)
        return BatchSolution(t=problem.t_out, values=values, stats=tuple(stats), options=opts,
                             backend=self.name, summary=problem.summary is not None,
                             rows=() if problem.summary is None else problem.summary.rows)

    def _solve_batch(self, problem: BatchProblem, options: SolverOptions
                     ) -> tuple[np.ndarray, list[Stats]]:
        """Default: one :meth:`_solve` per member, observables and summaries on the host."""
        B, T = problem.size, len(problem.t_out)
        summary = problem.summary
        values = np.empty((B, T if summary is None else len(summary.rows), problem.n_values))
        stats = []
        for b in range(B):
            y0 = None if problem.y0 is None else problem.y0[b]
            try:
                states, st = self._solve(problem.system(b), problem.schedule(b), problem.t_out,
                                         options, y0, None)
            except SolveInterrupted:
                raise SolveInterrupted(values[:, :0]) from None
            vals = problem.observe(b, states)
            values[b] = vals if summary is None else \
                summarize(vals[None], problem.t_out, summary, members=[b])[0]
            stats.append(st)
        return values, stats


def _hand_over(states: np.ndarray, sink: Sink) -> None:
    """Hand solved rows to a sink in blocks of at most ``SINK_BYTES``.

    A Ctrl-C inside the sink becomes :class:`SolveInterrupted` with the rows
    handed over before it.
    """
    block = max(1, _prepare.SINK_BYTES // (8 * max(states.shape[1], 1)))
    done = 0
    try:
        for i0 in range(0, len(states), block):
            sink(i0, states[i0:i0 + block])
            done = min(i0 + block, len(states))
    except KeyboardInterrupt:
        raise SolveInterrupted(states[:0], done) from None
