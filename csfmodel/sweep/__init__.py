"""Sweeps: many scenarios solved in batches, on one machine or a Dask cluster.

Two ways in:

- :func:`run_batch` solves a base scenario with some keys replaced, in this
  process, and returns one Dataset (numba: one parallel kernel call per chunk)::

      from csfmodel.sweep import run_batch
      ds = run_batch("pump.toml", {"patient.dispersion": ["0.2 cm^2/min", "0.4 cm^2/min"],
                                   "dose[0].rate": ["0.5 mg/day", "1 mg/day"]})

- :func:`run_sweep` runs a :class:`Sweep` (a base scenario, swept
  :class:`Parameter` values or distributions with units, a :class:`Design`:
  product, zip, Latin hypercube or Sobol) on Dask workers into one zarr store,
  chunk by chunk, with per-scenario summary metrics (:class:`Outputs`); an
  interrupted sweep resumes where it stopped. ``csfmodel sweep SWEEP.toml -o
  STORE.zarr`` does the same from a sweep file (:func:`read_sweep`).
  :func:`sobol_indices` gives first-order and total Sobol indices of any summary
  output of a Sobol design.

Longer than one module: batches (``_batch``), definitions and designs
(``_design``), per-scenario outputs (``_outputs``), the store (``_store``), the
Dask engine (``_engine``) and global sensitivity (``_sobol``).
"""

from csfmodel.sweep._batch import (
    DEFAULT_VARIABLES,
    NON_GEOMETRIC_FIELDS,
    SITES,
    TIP,
    VARIABLES,
    _Assembly,
    _set,
    iter_batches,
    merge_schedules,
    run_batch,
    scenario_sets,
)
from csfmodel.sweep._design import (
    DESIGNS,
    DISTRIBUTIONS,
    Design,
    Outputs,
    Parameter,
    Sweep,
    read_sweep,
)
from csfmodel.sweep._engine import run_sweep
from csfmodel.sweep._sobol import plot_sobol, sobol_indices, sobol_table
from csfmodel.sweep._store import open_store

__all__ = ["run_batch", "iter_batches", "scenario_sets", "merge_schedules", "run_sweep",
           "open_store", "read_sweep", "sobol_indices", "sobol_table", "plot_sobol", "Sweep",
           "Parameter", "Design", "Outputs",
           "DESIGNS", "DISTRIBUTIONS", "VARIABLES", "DEFAULT_VARIABLES",
           "NON_GEOMETRIC_FIELDS", "TIP", "SITES", "_set", "_Assembly"]
