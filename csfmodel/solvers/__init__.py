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

from csfmodel.errors import ScenarioError

__all__ = ["BACKENDS", "get_solver", "available_backends", "SolveInterrupted"]


class SolveInterrupted(Exception):
    """Raised by a backend interrupted (Ctrl-C) part-way: carries what it computed.

    ``states`` holds the rows of the output times completed before the interrupt.
    """

    def __init__(self, states):
        super().__init__(f"interrupted after {len(states)} output times")
        self.states = states

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
