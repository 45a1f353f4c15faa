"""The linear model: compartments, processes and their assembly into arrays.

Between dose events the state (drug amounts, ug) obeys ``dy/dt = J y + u``, and a bolus
is a jump ``y(t_k+) = y(t_k-) + b_k``. The equations -- every transfer as a clearance
times a concentration difference, so that every column of ``J`` sums to zero -- are
written out in one place, the docstring and code of ``_system.py`` (:func:`build_model`).

Private modules, one concept each:

* ``_grid.py``: :class:`Grid`, :func:`make_grid` (cell-centred finite volumes along z);
* ``_matrix.py``: :data:`COMPARTMENTS` (the state layout), :class:`LinearSystem`
  (``J`` in structured form) and the assembler that fills it;
* ``_system.py``: the equations: :func:`build_model`, :class:`Model`, the dispersion
  profile (:func:`stroke_profile`, :func:`dispersion`) and :func:`bulk_flow`;
* ``_batch.py``: :func:`build_models` (the equations of ``_system.py`` over a batch
  axis: many models sharing a grid in one pass);
* ``_doses.py``: :func:`deposit` (an intrathecal bolus once spread),
  :func:`bolus_inputs` (its spread over the mixing time, as jumps and rates),
  :class:`Schedule`, :func:`build_schedule` and :func:`build_schedules` (many at once,
  for sweeps).
"""

from ._batch import BATCHED_ANATOMY_FIELDS as BATCHED_ANATOMY_FIELDS
from ._batch import build_models as build_models
from ._doses import SPREAD_STAGES as SPREAD_STAGES
from ._doses import STAGED_MIN_VOLUME as STAGED_MIN_VOLUME
from ._doses import Schedule as Schedule
from ._doses import _hat_weights as _hat_weights  # steady_state.input_vector
from ._doses import _mixing_interval as _mixing_interval  # tests
from ._doses import add_bolus as add_bolus
from ._doses import bolus_inputs as bolus_inputs
from ._doses import bolus_times as bolus_times
from ._doses import build_schedule as build_schedule
from ._doses import build_schedules as build_schedules
from ._doses import deposit as deposit
from ._grid import Grid as Grid
from ._grid import make_grid as make_grid
from ._matrix import COMPARTMENTS as COMPARTMENTS
from ._matrix import LinearSystem as LinearSystem
from ._matrix import _Assembler as _Assembler  # tests
from ._system import Model as Model
from ._system import build_model as build_model
from ._system import bulk_flow as bulk_flow
from ._system import dispersion as dispersion
from ._system import stroke_profile as stroke_profile

__all__ = [
    "COMPARTMENTS",
    "SPREAD_STAGES",
    "STAGED_MIN_VOLUME",
    "Grid",
    "LinearSystem",
    "Schedule",
    "Model",
    "add_bolus",
    "bolus_inputs",
    "bolus_times",
    "build_model",
    "build_models",
    "build_schedule",
    "build_schedules",
    "bulk_flow",
    "deposit",
    "dispersion",
    "make_grid",
    "stroke_profile",
]
