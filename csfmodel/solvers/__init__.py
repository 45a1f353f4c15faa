"""Time-stepping backends behind one contract, reached through one registry.

Every backend takes the backend-neutral arrays of :mod:`csfmodel.model` (a
:class:`~csfmodel.model.LinearSystem` and a :class:`~csfmodel.model.Schedule`)
and returns the state (amounts, ug) at the output times; state at an output
time that coincides with a dose event is taken just *after* the jump::

    from csfmodel.solvers import SolverOptions, solve, solve_batch

    sol = solve(system, schedule, t_out, SolverOptions(rtol=1e-6), backend="jax")
    sol.states, sol.stats.steps, sol.options.method
    batch = solve_batch(systems, schedule, t_out, backend="numba",
                        observables=(ptr, idx, weights), summary=True)

The same options (:class:`SolverOptions`), statistics (:class:`Stats`) and
results (:class:`Solution`, :class:`BatchSolution`) for every backend; what a
backend can do it declares on its class (:class:`Backend`), and its own
settings are constructor arguments (``get_backend("jax", block_size=64)``).

Layout (one module per concept):

``_options``
    options, statistics, summaries, solutions, the two exceptions;
``_tableaus``
    the time-stepping methods as data (ESDIRK tableaus), shared by numba and jax;
``_prepare``
    host-side preparation shared by all backends (input checks, stacking,
    border sparsity, atol floor, batch normalization, summaries);
``_backend``
    the contract (:class:`Backend`): option resolution, checks, sinks, the
    default batch loop, written once;
``_registry``
    names -> backends, imported lazily; plug-ins register the same way;
``reference``, ``numba_backend`` (+ ``_numba_kernels``), ``jax_backend``, ``expm_backend``
    the backends: only their integrators and linear algebra.

``import csfmodel.solvers`` imports numpy only: a backend's module (scipy,
numba, jax) is imported the first time it is asked for.
"""

from __future__ import annotations

import numpy as np

from csfmodel.solvers._backend import Backend as Backend
from csfmodel.solvers._backend import Sink as Sink
from csfmodel.solvers._options import BatchSolution as BatchSolution
from csfmodel.solvers._options import Solution as Solution
from csfmodel.solvers._options import SolveInterrupted as SolveInterrupted
from csfmodel.solvers._options import SolverFailure as SolverFailure
from csfmodel.solvers._options import SolverOptions as SolverOptions
from csfmodel.solvers._options import Stats as Stats
from csfmodel.solvers._options import Summary as Summary
from csfmodel.solvers._options import split_options as split_options
from csfmodel.solvers._prepare import SYSTEM_FIELDS as SYSTEM_FIELDS
from csfmodel.solvers._prepare import check_batch_inputs as check_batch_inputs
from csfmodel.solvers._prepare import check_inputs as check_inputs
from csfmodel.solvers._registry import BACKENDS as BACKENDS
from csfmodel.solvers._registry import available_backends as available_backends
from csfmodel.solvers._registry import get_backend as get_backend
from csfmodel.solvers._registry import register as register
from csfmodel.solvers._tableaus import METHODS as METHODS
from csfmodel.solvers._tableaus import TABLEAUS as TABLEAUS

__all__ = ["Backend", "BatchSolution", "BACKENDS", "METHODS", "SYSTEM_FIELDS", "Sink",
           "SolveInterrupted", "SolverFailure", "SolverOptions", "Solution", "Stats",
           "Summary", "TABLEAUS", "available_backends", "check_batch_inputs", "check_inputs",
           "get_backend", "register", "solve", "solve_batch", "split_options"]


def solve(system, schedule, t_out, options: SolverOptions | None = None, *,
          backend: str | Backend = "numba", y0: np.ndarray | None = None,
          sink: Sink | None = None) -> Solution:
    """Integrate one system with backend ``backend``; see :meth:`Backend.solve`."""
    return get_backend(backend).solve(system, schedule, t_out, options, y0=y0, sink=sink)


def solve_batch(systems, schedules, t_out, options: SolverOptions | None = None, *,
                backend: str | Backend = "numba", schedule_index=None, y0=None,
                observables=None, summary: bool | Summary = False) -> BatchSolution:
    """Solve many systems of one grid size with ``backend``; see :meth:`Backend.solve_batch`."""
    return get_backend(backend).solve_batch(systems, schedules, t_out, options,
                                            schedule_index=schedule_index, y0=y0,
                                            observables=observables, summary=summary)


register("reference", "csfmodel.solvers.reference:ReferenceBackend",
         "scipy Radau on the sparse matrix, restarted at every dose event "
         "(tight tolerances; the yardstick for the other backends)")
register("numba", "csfmodel.solvers.numba_backend:NumbaBackend",
         "adaptive L-stable ESDIRK (esdirk3 or trbdf2) compiled with numba, O(N) structured "
         "solves, factorization reused per step size (fast; option rtol); matrix "
         "exponentials instead for rtol <= 1e-7 on coarse grids")
register("expm", "csfmodel.solvers.expm_backend:ExpmBackend",
         "exact propagation on the output grid: matrix exponential of the structured matrix "
         "once per step length, inputs piecewise constant (tight tolerances on coarse "
         "grids; numba switches to it there)")
register("jax", "csfmodel.solvers.jax_backend:JaxBackend",
         "JAX (float64): adaptive ESDIRK (esdirk3 or trbdf2) on the structured matrix, "
         "jitted, dense output; batches vmapped over parameter sets (CPU or GPU; option "
         "rtol)")
