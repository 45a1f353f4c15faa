"""Gradients and fitting: exact sensitivities of every output, and fits to a user's data.

* :func:`sensitivity`: d output / d parameter for every output variable of
  :func:`csfmodel.simulate` and any numeric scenario value that does not move the grid
  or an event (forward sensitivity equations; the model arrays' derivatives by complex
  step), with elasticities.
* :func:`fit`: weighted least squares (or MAP with log-normal priors) of scenario
  values to observations in a CSV file (``time_h, site, value, unit[, sd]``), with
  standard errors, Laplace and profile-likelihood intervals, correlations, residuals
  and a figure (:class:`FitResult`).
* :func:`read_observations`: the CSV file, checked row by row.

Private modules, one concept each: ``_parameters`` (scenario keys as parameters),
``_kernel`` (the numba integrator of the augmented system), ``_sensitivity``,
``_data`` (observations), ``_objective`` (residuals and their Jacobian), ``_fit``
(the optimizer and the report), ``_profile`` (profile likelihood), ``_figure``.
"""

from ._data import Observations as Observations
from ._data import read_observations as read_observations
from ._fit import DEFAULT_PRIOR_CV as DEFAULT_PRIOR_CV
from ._fit import PRIOR_LOG_SD as PRIOR_LOG_SD
from ._fit import FitResult as FitResult
from ._fit import fit as fit
from ._parameters import SUPPORTED_PATIENT as SUPPORTED_PATIENT
from ._parameters import Parameter as Parameter
from ._sensitivity import ELASTICITY_FLOOR as ELASTICITY_FLOOR
from ._sensitivity import Sensitivities as Sensitivities
from ._sensitivity import sensitivity as sensitivity
from ._sensitivity import solve_sensitivities as solve_sensitivities

__all__ = ["DEFAULT_PRIOR_CV", "ELASTICITY_FLOOR", "FitResult", "Observations", "PRIOR_LOG_SD",
           "Parameter", "SUPPORTED_PATIENT", "Sensitivities", "fit", "read_observations",
           "sensitivity", "solve_sensitivities"]
