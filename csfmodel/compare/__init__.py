r"""Route comparison: equianalgesic doses of intrathecal, IV and oral morphine.

Given a reference regimen (by default controlled-release oral morphine 30 mg
every 12 h) and a pain target (a cord segment or a range of them), this module
finds, at steady state,

* the **intrathecal infusion rate** at a given catheter tip, and
* the **IV infusion rate**,

that give the same analgesia as the reference, with analgesia from the
spinal + supraspinal response surface of :mod:`csfmodel.effects`; and, beside
them, the rates that give the same **dorsal-horn concentration** at the
target. It reports the dose ratios oral : IV : IT, each route's supraspinal
exposure and respiratory depression at those doses, the coverage along the
spine, and the elasticities of the ratios with respect to the parameters that
drive them.

How it is computed
------------------
*Steady states directly* (:mod:`csfmodel.steady_state`): the reference's
periodic steady state by one linear solve; each infusion's plateau by one
sparse solve of :math:`J_c y = -u` for a unit rate.

*Linearity*: concentrations scale with the rate, so the concentration-matching
rate is one division. Analgesia is nonlinear (sigmoid), so the equianalgesic
rate is the root of :math:`A(k\,c_{unit}) = A_{ref}` in :math:`k`, found with
:func:`scipy.optimize.brentq` on :math:`\log k` (A rises monotonically with k).

*Analgesia of a periodic reference*: the time average over the dosing
interval of the analgesia at periodic steady state (effect sites at their own
periodic steady state).

The CLI ``csfmodel compare`` runs it with the defaults and no arguments,
prints a table (a figure only with ``--plot FILE``), and ``--json`` prints the same numbers.

Private modules, one concept each:

* ``_units.py``: :data:`ROUTES`, :data:`CLINICAL_RULE`, each route's steady state per
  unit dose (:func:`unit_plateaus`, :func:`reference_steady_state`, ``_Units``);
* ``_finder.py``: the equianalgesic finder (analgesia as a function of the dose, its
  root, the dose ratios, the spinal EC50 implied by the clinical rule);
* ``_sensitivity.py``: the elasticities of the ratios;
* ``_record.py``: :class:`RouteResult`, :class:`RouteComparison` (table, JSON, Dataset);
* ``_figure.py``: :meth:`RouteComparison.plot`;
* ``_entry.py``: :func:`compare_routes`, the entry point.
"""

from ._entry import _setup as _setup  # tests, benchmarks, docs/route_comparison.md
from ._entry import compare_routes as compare_routes
from ._record import RouteComparison as RouteComparison
from ._record import RouteResult as RouteResult
from ._units import _PER_DAY as _PER_DAY  # tests
from ._units import CLINICAL_RULE as CLINICAL_RULE
from ._units import ROUTES as ROUTES
from ._units import _concentrations as _concentrations  # tests
from ._units import reference_steady_state as reference_steady_state
from ._units import unit_plateaus as unit_plateaus

__all__ = ["compare_routes", "RouteComparison", "RouteResult", "CLINICAL_RULE",
           "unit_plateaus", "reference_steady_state", "ROUTES"]
