"""What goes into a solve and what comes out: options, statistics, solutions, errors.

Plain frozen records, the same for every backend (diffrax's ``PIDController``,
``SaveAt`` and ``Solution`` are the model). :class:`SolverOptions` checks its
values once, when it is made; what depends on the backend (the methods it
has, its default tolerance, the range of tolerances it can meet) is checked
by :meth:`csfmodel.solvers.Backend.resolve`, which fills in the defaults, so a
:class:`Solution` always says which tolerance and method were used.

Settings that only one backend has (jax's ``block_size`` and ``batch_size``)
are not options: they are arguments of that backend's constructor
(``get_backend("jax", block_size=64)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from numbers import Real
from typing import Any, ClassVar

import numpy as np

from csfmodel.errors import ScenarioError

__all__ = ["SolverOptions", "Stats", "Solution", "BatchSolution", "Summary",
           "SolveInterrupted", "SolverFailure", "split_options"]


def _number(name: str, value: Any, allowed: str, *, upper: float = math.inf,
            allow_inf: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ScenarioError(name, value, allowed)
    v = float(value)
    if not (v > 0.0) or v > upper or (math.isinf(v) and not allow_inf):
        raise ScenarioError(name, value, allowed)
    return v


@dataclass(frozen=True)
class SolverOptions:
    """How accurately and with which method to integrate (the same for every backend).

    Attributes
    ----------
    rtol
        Local error tolerance per step, relative to the running peak of each
        output variable (numba, jax), or scipy's ``rtol`` (reference). ``None``:
        the backend's default (``Backend.default_rtol``).
    atol
        Absolute floor of the error scale (ug). ``None``: ``1e-4 * rtol`` times
        the total amount dosed plus the initial amount (numba, jax; see
        :func:`csfmodel.solvers._prepare.atol_floor`), ``1e-13`` times it
        (reference, scipy's ``atol``).
    max_step
        Largest step (min); ``None``: unlimited (steps end on dose events anyway).
    first_step
        Step (min) tried first (after every bolus: numba, jax); ``None``: chosen
        by the backend.
    method
        The time-stepping method: a tableau of :data:`csfmodel.solvers.METHODS`
        (``"esdirk3"``, ``"trbdf2"``) for numba and jax, a scipy method
        (``"Radau"``, ``"BDF"``) for the reference, ``"expm"`` (exact propagation
        with matrix exponentials) for the expm backend and numba. ``None``: the
        backend's default (numba's, ``"auto"``, picks ``"esdirk3"`` or, for tight
        tolerances on coarse grids, ``"expm"``; the solution records which).
    adaptive
        ``False`` turns the error control off: fixed steps of at most
        ``max_step`` (required then), for convergence studies (numba, jax).
    """

    rtol: float | None = None
    atol: float | None = None
    max_step: float | None = None
    first_step: float | None = None
    method: str | None = None
    adaptive: bool = True

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "rtol", _number("rtol", self.rtol, "a relative tolerance in (0, 0.1]",
                                   upper=0.1))
        set_(self, "atol", _number("atol", self.atol, "a positive absolute tolerance (ug)"))
        set_(self, "max_step", _number("max_step", self.max_step, "a positive step in min",
                                       allow_inf=True))
        set_(self, "first_step", _number("first_step", self.first_step,
                                         "a positive step in min"))
        if self.method is not None and not isinstance(self.method, str):
            raise ScenarioError("method", self.method, "the name of a method")
        if not isinstance(self.adaptive, (bool, np.bool_)):
            raise ScenarioError("adaptive", self.adaptive, "True or False")
        set_(self, "adaptive", bool(self.adaptive))
        if not self.adaptive and (self.max_step is None or math.isinf(self.max_step)):
            raise ScenarioError("max_step", self.max_step,
                                "a finite step in min when adaptive is False")


def split_options(options: Mapping[str, Any]) -> tuple[SolverOptions, dict[str, Any]]:
    """``{"rtol": 1e-6, "block_size": 64}`` -> ``(SolverOptions(rtol=1e-6), {"block_size": 64})``.

    The keys that are fields of :class:`SolverOptions` make the options; the
    others are the backend's settings (checked by its constructor).
    """
    names = {f.name for f in fields(SolverOptions)}
    opts = {k: v for k, v in options.items() if k in names}
    return SolverOptions(**opts), {k: v for k, v in options.items() if k not in names}


@dataclass(frozen=True)
class Stats:
    """What the integrator did (``None`` where a backend does not count it).

    ``max_error_estimate`` is the largest accepted scaled error estimate (≤ 1 when
    the error control held); step sizes are in min.
    """

    steps: int | None = None
    rejected: int | None = None
    factorizations: int | None = None
    max_error_estimate: float | None = None
    min_step_min: float | None = None
    max_step_min: float | None = None

    #: order of the entries in the statistics vectors of the numba and jax kernels
    VECTOR: ClassVar[tuple[str, ...]] = ("steps", "rejected", "factorizations",
                                         "max_error_estimate", "min_step_min",
                                         "max_step_min")

    @classmethod
    def from_vector(cls, row) -> Stats:
        """From a kernel's statistics vector (entries in the order of :attr:`VECTOR`)."""
        return cls(*(int(row[i]) if i < 3 else float(row[i]) for i in range(6)))

    def as_dict(self) -> dict[str, int | float]:
        """The counted entries (what :func:`csfmodel.simulate` writes as ``solver_<name>``)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True, eq=False)
class Solution:
    """The result of :func:`csfmodel.solvers.solve`.

    Attributes
    ----------
    t
        Output times (min).
    states
        Amounts (ug) at ``t``, ``(len(t), n_state)``; state at an output time that
        coincides with a dose event is taken just after the jump. ``(0, n_state)``
        when a ``sink`` took the rows.
    stats
        Step statistics.
    options
        The options used, defaults filled in (``rtol``, ``method``).
    backend
        Name of the backend.
    """

    t: np.ndarray
    states: np.ndarray
    stats: Stats
    options: SolverOptions
    backend: str


@dataclass(frozen=True, eq=False)
class Summary:
    r"""What a batch keeps of its observables instead of their time series.

    Given to ``solve_batch(..., summary=Summary(...))`` (``summary=True`` is
    ``Summary()``). Every backend computes the same rows with the same arithmetic
    (numba inside its kernel, as each output time is reached; the others from the
    series they return), over the output times :math:`t_0 < \dots < t_{T-1}`
    (min) of each observable :math:`y`:

    ``max``, ``time_of_max``, ``integral``, ``final``
        :math:`\max_i y_i`, the first :math:`t_i` where it occurs,
        :math:`\sum_i (t_{i+1} - t_i)(y_i + y_{i+1})/2` (x min), :math:`y_{T-1}`;
    ``window_mean`` (with ``window``)
        the mean over :math:`[t_{T-1} - w, t_{T-1}]` (``w`` = ``window``, min;
        clipped to the run): trapezoids over the samples inside, both ends
        interpolated linearly (:func:`csfmodel.metrics.cavg`);
    ``time_above`` (with ``threshold``)
        minutes with :math:`y \ge` ``threshold``, :math:`y` linear between samples
        (:func:`csfmodel.metrics.segment_coverage`);
    ``effect_max`` (with ``effect_row``)
        in column ``effect_row`` only (0 elsewhere): :math:`\max_i C_e(t_i)` of the
        effect site :math:`dC_e/dt = k_e (y - C_e)`, :math:`C_e(0) = 0`,
        :math:`k_e = \ln 2 / t_{1/2}` with ``effect_half_life`` (min; one value or
        one per member; 0: :math:`C_e = y`), exact for :math:`y` linear between
        samples (:func:`csfmodel.effects.effect_site`).

    Attributes
    ----------
    window
        Length (min) of the final window of ``window_mean``; ``None``: no such row.
    threshold
        Level of ``time_above`` (the observables' units); ``None``: no such row.
    effect_row
        Observable whose effect site is followed; ``None``: no such row.
    effect_half_life
        Half-life (min) of that effect site: a number or ``(B,)`` per member.
    """

    window: float | None = None
    threshold: float | None = None
    effect_row: int | None = None
    effect_half_life: Any = 0.0

    #: every row a summary can have, in the order of the kernel's rows
    ROWS: ClassVar[tuple[str, ...]] = ("max", "time_of_max", "integral", "final",
                                       "window_mean", "time_above", "effect_max")

    def __post_init__(self) -> None:
        if self.window is not None and not (float(self.window) >= 0.0):
            raise ScenarioError("summary.window", self.window, "a length >= 0 (min)")
        if self.threshold is not None and math.isnan(float(self.threshold)):
            raise ScenarioError("summary.threshold", self.threshold, "a number")
        if self.effect_row is not None and int(self.effect_row) < 0:
            raise ScenarioError("summary.effect_row", self.effect_row, "a row number >= 0")
        hl = np.asarray(self.effect_half_life, float)
        if not np.all(hl >= 0.0) or not np.all(np.isfinite(hl)):
            raise ScenarioError("summary.effect_half_life", self.effect_half_life,
                                "half-lives >= 0 (min)")

    @property
    def rows(self) -> tuple[str, ...]:
        """The rows of ``BatchSolution.values`` this summary gives, in order."""
        extra = (("window_mean",) if self.window is not None else ()) + \
            (("time_above",) if self.threshold is not None else ()) + \
            (("effect_max",) if self.effect_row is not None else ())
        return self.ROWS[:4] + extra

    @property
    def extended(self) -> bool:
        """Whether rows beyond the first four are asked for."""
        return len(self.rows) > 4

    def for_members(self, members: Any) -> Summary:
        """This summary for the batch members ``members`` (indices) of the batch it was
        made for: a per-member ``effect_half_life`` restricted to them."""
        half_life = np.asarray(self.effect_half_life, float)
        if half_life.ndim == 0:
            return self
        return replace(self, effect_half_life=half_life[np.asarray(members)])


@dataclass(frozen=True, eq=False)
class BatchSolution:
    """The result of :func:`csfmodel.solvers.solve_batch`.

    Attributes
    ----------
    t
        Output times (min), shared by the batch.
    values
        ``(B, len(t), n)``: states (ug) or, with observables, the observables;
        with ``summary``, ``(B, len(rows), n)``: the rows named by :attr:`rows`.
    stats
        Step statistics, one per member.
    options, backend, summary
        As in :class:`Solution`; whether ``values`` holds summaries.
    rows
        The names of the summary rows (:attr:`Summary.rows`); empty for series.
    """

    t: np.ndarray
    values: np.ndarray
    stats: tuple[Stats, ...]
    options: SolverOptions
    backend: str
    summary: bool = False
    rows: tuple[str, ...] = ()

    #: rows of a summary: maximum over the output times, time of the (first) maximum
    #: (min), trapezoidal integral over the output times (x min), final value
    SUMMARY: ClassVar[tuple[str, ...]] = Summary.ROWS[:4]


class SolveInterrupted(Exception):
    """Raised by a backend interrupted (Ctrl-C) part-way: carries what it computed.

    ``states`` holds the rows of the output times completed before the interrupt
    (for a batch, ``(B, rows, ...)``); ``n_done`` counts the rows completed, also
    those already handed to a sink (then ``states`` is empty).
    """

    def __init__(self, states, n_done: int | None = None):
        self.states = states
        self.n_done = int(n_done if n_done is not None else
                          (states.shape[1] if np.ndim(states) == 3 else len(states)))
        super().__init__(f"interrupted after {self.n_done} output times")


class SolverFailure(RuntimeError):
    """A backend could not integrate the system (never a silent NaN or an unfilled row)."""
