"""Time-stepping backends, registered by name and imported lazily.

Every backend is a function ``solve(system, schedule, t_out, **options)`` that
takes the backend-neutral arrays of :mod:`csfmodel.model` and returns the state
(amounts, ug) at the output times, shape ``(len(t_out), n_state)``. State at an
output time that coincides with a dose event is taken just *after* the jump.

``import csfmodel`` never imports numba or jax: a backend's module is imported
the first time it is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np

from csfmodel.errors import ScenarioError

__all__ = ["BACKENDS", "get_solver", "available_backends", "SolveInterrupted", "SolverFailure",
           "check_inputs", "check_batch_inputs"]


class SolveInterrupted(Exception):
    """Raised by a backend interrupted (Ctrl-C) part-way: carries what it computed.

    ``states`` holds the rows of the output times completed before the interrupt.
    """

    def __init__(self, states):
        super().__init__(f"interrupted after {len(states)} output times")
        self.states = states


class SolverFailure(RuntimeError):
    """A backend could not integrate the system (never a silent NaN or an unfilled row)."""


def check_inputs(system, schedule, t_out, y0=None) -> np.ndarray:
    """Refuse what no backend can integrate, before any work starts.

    Every array of the linear system and of the schedule must be finite, the
    output times finite, non-decreasing and within ``[0, schedule.t_end]`` (so
    that every output row is reached and filled), ``y0`` finite. Returns the
    output times as a contiguous float array.

    Raises
    ------
    ScenarioError
        Naming the offending array and what is allowed.
    """
    t = np.ascontiguousarray(t_out, dtype=float)
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
    for name in ("lower", "diag", "upper", "cord_diag", "csf_to_cord", "cord_to_csf",
                 "border_rows", "border_cols", "block", "volume"):
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


def check_batch_inputs(stack: dict, schedules, t_out) -> np.ndarray:
    """:func:`check_inputs` for stacked systems (arrays with a leading batch axis)."""
    from types import SimpleNamespace

    for name, a in stack.items():
        if not np.all(np.isfinite(np.asarray(a))):
            raise ScenarioError(f"system.{name}", "non-finite entries",
                                "finite rates and volumes (check the patient and drug values)")
    placeholder = SimpleNamespace(**{k: np.zeros(1) for k in stack})
    for sch in schedules:
        t_out = check_inputs(placeholder, sch, t_out)
    return t_out


#: name -> (module, function, one-line description)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "reference": ("csfmodel.solvers.reference", "solve",
                  "scipy Radau on the sparse matrix, restarted at every dose event "
                  "(tight tolerances; the yardstick for the other backends)"),
    "numba": ("csfmodel.solvers.numba_backend", "solve",
              "adaptive L-stable ESDIRK (3rd order) compiled with numba, O(N) structured "
              "solves, factorization reused per step size (fast; option rtol)"),
    "jax": ("csfmodel.solvers.jax_backend", "solve",
            "JAX (float64): adaptive TR-BDF2 on the structured matrix, jitted; "
            "solve_batch vmaps over parameter sets (CPU or GPU; option rtol)"),
}


def register(name: str, module: str, function: str, description: str) -> None:
    """Register a backend (used by the built-in backends and by plug-ins)."""
    BACKENDS[name] = (module, function, description)


def get_solver(name: str) -> Callable:
    """Return the ``solve`` function of backend ``name``, importing it on first use."""
    if name not in BACKENDS:
        raise ScenarioError("simulation.solver", name, "one of: " + ", ".join(BACKENDS))
    module, function, _ = BACKENDS[name]
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ScenarioError("simulation.solver", name,
                            "a backend whose dependencies are installed",
                            detail=f"import failed: {exc}") from None
    return getattr(mod, function)


def available_backends() -> dict[str, str]:
    """Backend names and their descriptions."""
    return {k: v[2] for k, v in BACKENDS.items()}
