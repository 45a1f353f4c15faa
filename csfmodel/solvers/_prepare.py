"""Host-side preparation shared by every backend, written once.

Before any backend's kernel runs, the same things are done in numpy:

* the input checks (:func:`check_inputs`, :func:`check_batch_inputs`,
  :func:`check_schedule`): finite arrays, output times inside the simulated
  span, schedule arrays that fit the state;
* stacking the arrays of :class:`~csfmodel.model.LinearSystem` along a batch
  axis (:data:`SYSTEM_FIELDS`, the one list of those arrays;
  :func:`stack_systems`);
* the sparsity pattern of the compartment border (:func:`border_pattern`);
* the absolute floor of the error scale (:func:`atol_floor`);
* a batch problem in one normalized form (:class:`BatchProblem`: stacked
  systems, schedules and which member uses which, initial states, CSR
  observables) and host-side summaries of output rows (:func:`summarize`).

Nothing here imports scipy, numba or jax.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from csfmodel.errors import ScenarioError
from csfmodel.solvers._options import Summary

__all__ = ["SYSTEM_FIELDS", "SINK_BYTES", "kernel_array", "check_inputs", "check_batch_inputs",
           "check_schedule", "stack_systems", "border_pattern", "atol_floor", "BatchProblem",
           "prepare_batch", "summarize"]

#: the arrays of :class:`~csfmodel.model.LinearSystem` a backend consumes (all but the
#: sizes ``n_spinal`` and ``n_cord``); the one list of them (tested against the class)
SYSTEM_FIELDS = ("lower", "diag", "upper", "cord_diag", "csf_to_cord", "cord_to_csf",
                 "border_rows", "border_cols", "block", "volume")

#: most output rows handed to a ``sink`` at once, as bytes of states (the numba
#: backend's windows, and the blocks of backends that do not stream themselves)
SINK_BYTES = 32 * 2**20


# ------------------------------------------------------------------ array form
def kernel_array(a, dtype=np.float64) -> np.ndarray:
    """``a`` as an aligned, writable, C-contiguous array of native ``dtype``.

    The one form of every array handed to a compiled kernel. numba compiles one
    specialisation per array *type*, and its array type includes the dtype, the
    layout (C / any), whether the array is read-only and whether it is aligned: a
    read-only view from :func:`numpy.broadcast_to`, a column slice, ``int32``
    indices or ``float32`` rates would each cost a second compilation of a whole
    kernel (a minute on 2 cores). The array is returned as it is when it already
    has that form, else copied once.
    """
    arr = np.asarray(a)
    dt = np.dtype(dtype)
    f = arr.flags
    if arr.dtype == dt and f.c_contiguous and f.writeable and f.aligned:
        return arr
    return np.array(arr, dtype=dt, order="C", copy=True)


# ------------------------------------------------------------------ checks
def check_inputs(system, schedule, t_out, y0=None) -> np.ndarray:
    """Refuse what no backend can integrate, before any work starts.

    Every array of the linear system and of the schedule must be finite, the
    output times finite, non-decreasing and within ``[0, schedule.t_end]`` (so
    that every output row is reached and filled), ``y0`` finite. Returns the
    output times in kernel form (:func:`kernel_array`).

    Raises
    ------
    ScenarioError
        Naming the offending array and what is allowed.
    """
    t = kernel_array(t_out)
    if t.ndim != 1 or t.size == 0:
        raise ScenarioError("t_out", t_out, "a non-empty 1-D array of output times (min)")
    if not np.all(np.isfinite(t)):
        raise ScenarioError("t_out", "non-finite output times", "finite times (min)")
    if np.any(np.diff(t) < 0):
        raise ScenarioError("t_out", "decreasing output times", "non-decreasing times (min)")
    t_end = float(schedule.t_end)
    if not np.isfinite(t_end) or t[0] < 0 or t[-1] > t_end:
        raise ScenarioError("t_out", f"{t[0]:.17g} .. {t[-1]:.17g} min",
                            f"output times within the simulated span [0, {t_end:.17g}] min")
    for name in SYSTEM_FIELDS:
        a = np.asarray(getattr(system, name))
        if not np.all(np.isfinite(a)):
            raise ScenarioError(f"system.{name}", "non-finite entries",
                                "finite rates and volumes (check the patient and drug values)")
    for name in ("times", "jumps", "rates"):
        if not np.all(np.isfinite(np.asarray(getattr(schedule, name)))):
            raise ScenarioError(f"schedule.{name}", "non-finite entries",
                                "finite dose times, amounts and rates")
    if y0 is not None and not np.all(np.isfinite(np.asarray(y0, float))):
        raise ScenarioError("y0", "non-finite entries", "a finite initial state (ug)")
    return t


def check_batch_inputs(stack: Mapping[str, np.ndarray], schedules, t_out) -> np.ndarray:
    """:func:`check_inputs` for stacked systems (arrays with a leading batch axis)."""
    for name, a in stack.items():
        if not np.all(np.isfinite(np.asarray(a))):
            raise ScenarioError(f"system.{name}", "non-finite entries",
                                "finite rates and volumes (check the patient and drug values)")
    placeholder = SimpleNamespace(**{k: np.zeros(1) for k in SYSTEM_FIELDS})
    for sch in schedules:
        t_out = check_inputs(placeholder, sch, t_out)
    return t_out


def check_schedule(schedule, n_state: int) -> None:
    """Dose times increasing from 0 on, one jump and one rate per state at each."""
    times = np.asarray(schedule.times, float)
    K = len(times)
    if np.shape(schedule.jumps) != (K, n_state) or np.shape(schedule.rates) != (K, n_state):
        raise ValueError("schedule arrays do not match the state size of the system")
    if K and (np.any(np.diff(times) <= 0) or times[0] < 0):
        raise ValueError("schedule times must be increasing and non-negative")


#: the absolute floor of the error scale as a fraction of ``rtol`` x the total amount
ATOL_FLOOR_FRACTION = 1e-7


def atol_floor(total: float | np.ndarray, rtol: float) -> float | np.ndarray:
    """Absolute floor of the error scale (ug): ``1e-7 rtol`` of the total amount.

    ``total`` is the amount dosed plus the initial amount. The floor keeps the error
    scale positive before anything is dosed. It must stay far below ``rtol`` times
    the peak of every reported variable, including small ones that are still rising
    (cisternal CSF minutes after an IV bolus, the cord far from a catheter tip early
    in an infusion): with 1e-4 such variables were off by up to 2e-2 of their peak
    (27 of 930 random scenarios beyond 1e-3); with 1e-7 the 320 random scenarios of
    ``tests/test_invariants.py`` (slow profile) and its fixed cases are all within 1e-3,
    for about 15 % more steps on the 7-day pump benchmark.
    """
    return np.maximum(ATOL_FLOOR_FRACTION * rtol * total, 1e-300) if np.ndim(total) else \
        max(ATOL_FLOOR_FRACTION * rtol * total, 1e-300)


# ------------------------------------------------------------------ systems
def stack_systems(systems) -> dict[str, np.ndarray]:
    """The arrays of several systems stacked along a leading batch axis.

    Parameters
    ----------
    systems
        A sequence of :class:`~csfmodel.model.LinearSystem` of the same grid size,
        a single one (a batch of one), or a mapping of already stacked arrays with
        the names of :data:`SYSTEM_FIELDS`, each with a leading batch axis.

    Returns
    -------
    dict
        ``name -> float array (B, ...)`` in kernel form (:func:`kernel_array`) for
        every name of :data:`SYSTEM_FIELDS`.
    """
    from csfmodel.model import LinearSystem

    if isinstance(systems, LinearSystem):
        systems = [systems]
    if isinstance(systems, Mapping):
        stack = {k: kernel_array(systems[k]) for k in SYSTEM_FIELDS}
        if stack["diag"].ndim != 2:
            raise ValueError("stacked arrays need a leading batch axis")
    else:
        systems = list(systems)
        if not systems:
            raise ValueError("no systems to solve")
        shapes = {(s.n_spinal, s.n_cord, s.n_state) for s in systems}
        if len(shapes) > 1:
            raise ValueError("all systems of a batch must have the same grid size")
        stack = {k: kernel_array(np.stack([np.asarray(getattr(s, k), float)
                                           for s in systems]))
                 for k in SYSTEM_FIELDS}
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


def border_pattern(border_rows: np.ndarray, border_cols: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparsity of the compartment border (union over a leading batch axis, if any).

    Returns ``(active_cols, row_ptr, row_idx)``: the compartments that feed the
    spatial states (non-zero border columns), and the CSR pattern of the border
    rows (which spatial states feed each compartment).
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


# ------------------------------------------------------------------ batches
@dataclass(frozen=True, eq=False)
class BatchProblem:
    """A batch in the one form every backend receives (made by :func:`prepare_batch`).

    Attributes
    ----------
    stack
        The systems' arrays, ``name -> (B, ...)`` (:func:`stack_systems`).
    schedules
        The distinct schedules; member ``b`` uses ``schedules[schedule_index[b]]``.
    schedule_index
        ``(B,)`` int64.
    t_out
        Output times (min), shared.
    y0
        Initial states ``(B, n_state)``, or ``None`` (zeros).
    observables
        ``None`` (the full state) or CSR rows ``(ptr, idx, weights)`` over the
        state, ``weights`` ``(nnz,)`` shared or ``(B, nnz)`` one row per member.
    summary
        The summaries wanted instead of series (:class:`~csfmodel.solvers.Summary`,
        :func:`summarize`), or ``None``.
    totals
        ``(B,)`` amount dosed to each member plus its initial amount (ug).
    """

    stack: dict[str, np.ndarray]
    schedules: tuple
    schedule_index: np.ndarray
    t_out: np.ndarray
    y0: np.ndarray | None
    observables: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    summary: Summary | None
    totals: np.ndarray

    @property
    def size(self) -> int:
        return self.stack["diag"].shape[0]

    @property
    def n_spinal(self) -> int:
        return self.stack["diag"].shape[1]

    @property
    def n_cord(self) -> int:
        return self.stack["cord_diag"].shape[1]

    @property
    def n_state(self) -> int:
        return self.stack["volume"].shape[1]

    @property
    def n_values(self) -> int:
        """Entries per output row: states, or observables."""
        return self.n_state if self.observables is None else len(self.observables[0]) - 1

    def system(self, b: int):
        """Member ``b`` as a :class:`~csfmodel.model.LinearSystem`."""
        from csfmodel.model import LinearSystem

        return LinearSystem(n_spinal=self.n_spinal, n_cord=self.n_cord,
                            **{k: v[b] for k, v in self.stack.items()})

    def schedule(self, b: int):
        return self.schedules[int(self.schedule_index[b])]

    def observe(self, b: int, states: np.ndarray) -> np.ndarray:
        """Member ``b``'s rows of states ``(T, n_state)`` as its observables ``(T, n_obs)``."""
        if self.observables is None:
            return states
        ptr, idx, w = self.observables
        w = w[b] if w.ndim == 2 else w
        out = np.zeros((states.shape[0], len(ptr) - 1))
        for q in range(len(ptr) - 1):
            sl = slice(ptr[q], ptr[q + 1])
            out[:, q] = states[:, idx[sl]] @ w[sl]
        return out

    def observable_matrix(self) -> np.ndarray | None:
        """The observables as dense matrices: ``(n_obs, n_state)`` if shared, else
        ``(B, n_obs, n_state)``; ``None`` for the full state."""
        if self.observables is None:
            return None
        ptr, idx, w = self.observables
        rows = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
        if w.ndim == 1:
            dense = np.zeros((len(ptr) - 1, self.n_state))
            np.add.at(dense, (rows, idx), w)
            return dense
        dense = np.zeros((self.size, len(ptr) - 1, self.n_state))
        for b in range(self.size):
            np.add.at(dense[b], (rows, idx), w[b])
        return dense


def _as_csr(observables, n_state: int, B: int):
    if observables is None:
        return None
    if isinstance(observables, tuple) and len(observables) == 3:
        ptr = kernel_array(observables[0], np.int64)
        idx = kernel_array(observables[1], np.int64)
        w = kernel_array(observables[2])
        nnz = len(idx)
        if ptr.ndim != 1 or len(ptr) < 1 or ptr[0] != 0 or ptr[-1] != nnz or \
                np.any(np.diff(ptr) < 0):
            raise ValueError("observables: ptr must run from 0 to len(idx), non-decreasing")
        if nnz and (idx.min() < 0 or idx.max() >= n_state):
            raise ValueError(f"observables: state indices must lie in [0, {n_state})")
        if w.shape not in ((nnz,), (B, nnz)):
            raise ValueError(f"observables: weights must have shape ({nnz},) or ({B}, {nnz})")
        if not np.all(np.isfinite(w)):
            raise ValueError("observables: weights must be finite")
        return ptr, idx, w
    dense = np.asarray(observables, float)
    if dense.ndim != 2 or dense.shape[1] != n_state:
        raise ValueError(f"observables must be a (n_obs, {n_state}) matrix or CSR rows "
                         "(ptr, idx, weights)")
    rows, idx = np.nonzero(dense)
    ptr = np.zeros(dense.shape[0] + 1, np.int64)
    ptr[1:] = np.cumsum(np.bincount(rows, minlength=dense.shape[0]))
    return _as_csr((ptr, idx, dense[rows, idx]), n_state, B)


def prepare_batch(systems, schedules, t_out, *, schedule_index=None, y0=None,
                  observables=None, summary: bool | Summary = False) -> BatchProblem:
    """Check and normalize the inputs of ``solve_batch`` (see :class:`BatchProblem`).

    ``systems``: as for :func:`stack_systems`. ``schedules``: one shared
    :class:`~csfmodel.model.Schedule` or several; without ``schedule_index``
    member ``b`` uses ``schedules[b]`` when there are ``B`` of them, else the
    first. ``y0``: ``(n_state,)`` or ``(B, n_state)``. ``observables``: CSR
    rows ``(ptr, idx, weights)`` or a dense ``(n_obs, n_state)`` matrix.
    """
    from csfmodel.model import Schedule

    stack = stack_systems(systems)
    B = stack["diag"].shape[0]
    n_state = stack["volume"].shape[1]
    if isinstance(schedules, Schedule):
        schedules = [schedules]
    schedules = tuple(schedules)
    if not schedules:
        raise ValueError("no schedule given")
    if schedule_index is None:
        schedule_index = np.arange(B) if len(schedules) == B else np.zeros(B, np.int64)
    sidx = kernel_array(schedule_index, np.int64)
    if sidx.shape != (B,) or sidx.min() < 0 or sidx.max() >= len(schedules):
        raise ValueError("schedule_index must give a schedule for each system")
    for s in schedules:
        check_schedule(s, n_state)
    t_out = check_batch_inputs(stack, schedules, t_out)
    if y0 is not None:
        y0 = np.asarray(y0, float)
        if y0.shape not in ((n_state,), (B, n_state)):
            raise ValueError(f"y0 must have shape ({n_state},) or ({B}, {n_state})")
        if not np.all(np.isfinite(y0)):
            raise ScenarioError("y0", "non-finite entries", "a finite initial state (ug)")
        y0 = kernel_array(np.broadcast_to(y0, (B, n_state)))
    observables = _as_csr(observables, n_state, B)
    summary = _as_summary(summary, observables, B)
    totals = np.array([s.total_dosed() for s in schedules])[sidx]
    totals = totals + (np.abs(y0).sum(axis=1) if y0 is not None else 0.0)
    return BatchProblem(stack=stack, schedules=schedules, schedule_index=sidx, t_out=t_out,
                        y0=y0, observables=observables, summary=summary, totals=totals)


def _as_summary(summary: bool | Summary | None, observables, B: int) -> Summary | None:
    """``summary`` of ``solve_batch`` as a :class:`Summary` (``None``: series)."""
    if summary is None or summary is False:
        return None
    if summary is True:
        summary = Summary()
    if not isinstance(summary, Summary):
        raise ScenarioError("summary", summary, "True, False or a csfmodel.solvers.Summary")
    if observables is None:
        raise ValueError("summary needs observables")
    n_obs = len(observables[0]) - 1
    if summary.effect_row is not None and summary.effect_row >= n_obs:
        raise ScenarioError("summary.effect_row", summary.effect_row,
                            f"an observable row, 0 to {n_obs - 1}")
    if np.ndim(summary.effect_half_life) not in (0, 1) or \
            np.size(summary.effect_half_life) not in (1, B):
        raise ScenarioError("summary.effect_half_life", np.shape(summary.effect_half_life),
                            f"one half-life (min) or one per member ({B})")
    return summary


def summary_spec(summary: Summary, t_out: np.ndarray, B: int) -> np.ndarray:
    """The kernel's description of ``summary`` per member, ``(B, SPEC_SIZE)``: the
    window's start, interpolation and inner samples over ``t_out`` (min), the
    threshold, the effect-site row and each member's ``ke`` (1/min)."""
    from csfmodel.solvers._numba_kernels import SPEC_SIZE

    t = np.asarray(t_out, float)
    spec = np.zeros((B, SPEC_SIZE))
    t1 = t[-1]
    t0 = t1 if summary.window is None else max(t1 - float(summary.window), t[0])
    if len(t) > 1:
        def at(x: float) -> tuple[int, float]:
            k = int(np.clip(np.searchsorted(t, x, side="right") - 1, 0, len(t) - 2))
            return k, (x - t[k]) / (t[k + 1] - t[k]) if t[k + 1] > t[k] else 0.0

        inner = np.flatnonzero((t > t0) & (t < t1))
        ia, ib = (int(inner[0]), int(inner[-1]) + 1) if len(inner) else (0, 0)
        k0, w0 = at(t0)
        spec[:, :6] = [t0, k0, w0, ia, ib, at(t1)[1]]
    spec[:, 6] = np.inf if summary.threshold is None else float(summary.threshold)
    spec[:, 7] = -1 if summary.effect_row is None else int(summary.effect_row)
    hl = np.broadcast_to(np.asarray(summary.effect_half_life, float), (B,))
    with np.errstate(divide="ignore"):
        spec[:, 8] = np.where(hl > 0, np.log(2.0) / np.where(hl > 0, hl, 1.0), np.inf)
    return spec


def summary_buffer(summary: Summary, B: int, n_obs: int) -> np.ndarray:
    """Zeros for the kernel's summary rows of ``B`` members: the four basic rows, or all
    of :attr:`Summary.ROWS` when more are asked for (see :func:`summary_values`)."""
    return np.zeros((B, len(Summary.ROWS) if summary.extended else 4, n_obs))


def summary_values(summary: Summary, buffer: np.ndarray) -> np.ndarray:
    """The rows of ``summary`` (:attr:`Summary.rows`) from a :func:`summary_buffer`."""
    if not summary.extended:
        return buffer
    return buffer[:, [Summary.ROWS.index(r) for r in summary.rows]]


def summarize(values: np.ndarray, t_out: np.ndarray, summary: Summary | None = None,
              members: np.ndarray | None = None) -> np.ndarray:
    """The rows of ``summary`` (default: ``Summary()``) from series.

    ``values`` ``(B, T, n)`` -> ``(B, len(summary.rows), n)``: the numba kernel's own
    arithmetic (:func:`~csfmodel.solvers._numba_kernels.summarize_series`) applied to
    stored series, for the backends that return series. ``members``: the batch
    members ``values`` are (for a per-member ``effect_half_life``; default all).
    """
    from csfmodel.solvers._numba_kernels import summarize_series

    summary = Summary() if summary is None else summary
    values = np.ascontiguousarray(values, dtype=float)
    B, T, n = values.shape
    t = np.ascontiguousarray(t_out, dtype=float)
    if T == 0:
        raise ValueError("summaries need at least one output time")
    out = summary_buffer(summary, B, n)
    if members is not None:
        summary = summary.for_members(members)
    summarize_series(values, t, out, summary_spec(summary, t, B))
    return summary_values(summary, out)
