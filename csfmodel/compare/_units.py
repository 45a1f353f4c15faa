"""The steady-state responses of each route per unit dose (PK only, linear in the dose).

Routes and their units: :data:`ROUTES`, the clinical rule of thumb, mg/day per unit
dose; the reported concentrations of a state (:func:`_concentrations`); each
infusion's plateau per 1 ug/min (:func:`unit_plateaus`); an oral regimen's periodic
steady state (:func:`reference_steady_state`); and :class:`_Units`, all of them
for one model, catheter tip and oral regimen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from csfmodel.dosing import OralDose
    from csfmodel.model import Model

#: The clinics' rule of thumb (seeds: 1/300 of the oral dose, 1/100 of the IV dose).
CLINICAL_RULE = {"oral": 300.0, "iv": 100.0, "intrathecal": 1.0}

_PER_DAY = 1.44     # ug/min -> mg/day

ROUTES = ("oral", "iv", "intrathecal")

_OBSERVED = {"cord": "cord_concentration", "brain": "brain_concentration",
             "plasma": "plasma_concentration", "lumbar_csf": "csf_concentration"}


def _concentrations(model, states: np.ndarray) -> dict[str, np.ndarray]:
    """Reported concentrations (ng/mL) from amounts; works on (n_state,) or (k, n_state).

    The same observation of the state as the results of a simulation
    (:func:`csfmodel.results.observation`); ``lumbar_csf`` is the spinal CSF cell at L3.
    """
    from csfmodel.results import observation

    obs = observation(model, tuple(_OBSERVED.values())).apply(np.asarray(states),
                                                                model.system.volume)
    z_l3 = model.anatomy.level_z("L3")
    n = model.system.n_spinal
    i_l3 = int(np.clip(np.searchsorted(model.grid.edges, z_l3) - 1, 0, n - 1))
    out = {k: obs[v] for k, v in _OBSERVED.items()}
    out["lumbar_csf"] = out["lumbar_csf"][..., i_l3]
    return out


def unit_plateaus(model: Model, site_z: float) -> dict[str, dict[str, np.ndarray]]:
    """Plateau concentrations per 1 ug/min of IT infusion at ``site_z`` and of IV infusion."""
    from csfmodel.steady_state import input_vector, plateau

    u = np.stack([input_vector(model, "intrathecal", 1.0, site_z),
                  input_vector(model, "iv", 1.0)], axis=1)
    y = plateau(model, u)
    return {"intrathecal": _concentrations(model, y[:, 0]),
            "iv": _concentrations(model, y[:, 1])}


def reference_steady_state(model: Model, regimen: OralDose, period: float, step: float = 5.0
                           ) -> tuple[np.ndarray, dict[str, np.ndarray], Any]:
    """Periodic steady state of a periodic regimen: (t in h, concentrations, raw result)."""
    from csfmodel.dosing import expand
    from csfmodel.model import build_schedule
    from csfmodel.steady_state import periodic_steady_state

    sched = build_schedule(model, expand([regimen], period), period)
    pss = periodic_steady_state(model, sched, n_out=int(np.ceil(period / step)) + 1)
    return pss.times / 60.0, _concentrations(model, pss.states), pss


def _mean(t: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.trapezoid(y, t, axis=0) / (t[-1] - t[0])


@dataclass
class _Units:
    """Steady-state responses per unit dose of each route (PK only, linear in the dose).

    ``oral``: periodic steady state per 1 ug every ``period`` min (time course over
    one period, ``t`` in h); ``iv``/``intrathecal``: plateau per 1 ug/min.
    """

    t: np.ndarray
    period: float
    oral: dict[str, np.ndarray]
    plateau: dict[str, dict[str, np.ndarray]]

    def per_day(self, route: str) -> float:
        """mg/day per unit dose of ``route``."""
        return 1.44 / self.period if route == "oral" else _PER_DAY

    def conc(self, route: str, k: float) -> dict[str, np.ndarray]:
        src = self.oral if route == "oral" else self.plateau[route]
        return {n: k * v for n, v in src.items()}

    def mean_cord(self, route: str) -> np.ndarray:
        if route == "oral":
            return _mean(self.t, self.oral["cord"])
        return self.plateau[route]["cord"]


def _units(model, site_z: float, formulation: str, period: float) -> _Units:
    from csfmodel.dosing import OralDose

    t, conc, _ = reference_steady_state(model, OralDose(1.0, formulation=formulation), period)
    return _Units(t=t, period=period, oral=conc, plateau=unit_plateaus(model, site_z))

