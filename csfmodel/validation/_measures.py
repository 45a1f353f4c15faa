"""How a study turns simulated curves into its numbers: the simulated arms
(a Dataset, or a plateau solved directly) and the measures computed from samples
(terminal half-life, AUC(0-inf), a refined peak)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class _Run:
    """A simulated study arm: the Dataset and where the study sampled CSF."""

    ds: Any
    sample_z: float | None = None

    def csf(self) -> tuple[np.ndarray, np.ndarray]:
        """(time h, lumbar CSF ng/mL at the sampling level)."""
        c = self.ds.csf_concentration.interp(z=self.sample_z)
        return self.ds.time.values, c.values

    def plasma(self) -> tuple[np.ndarray, np.ndarray]:
        return self.ds.time.values, self.ds.plasma_concentration.values


@dataclass
class _SteadyRun:
    """A study arm at steady state under a constant intrathecal infusion (a plateau,
    solved directly: :func:`csfmodel.steady_state.plateau`)."""

    z: np.ndarray            # cell centres, cm
    csf_profile: np.ndarray  # spinal CSF, ng/mL per (ug/min) infused
    cisterna: float
    plasma: float
    anatomy: Any
    site_z: float

    def csf_at(self, z: float) -> float:
        return float(np.interp(z, self.z, self.csf_profile))


def _plateau_run(sc: dict) -> _SteadyRun:
    """Steady state of a scenario's intrathecal infusion (1 ug/min; linear, so ratios
    do not depend on the rate)."""
    from csfmodel.api import prepare
    from csfmodel.steady_state import input_vector, plateau

    prep = prepare(sc)
    scen, model = prep.scenario, prep.model
    site = scen.catheter_sites()[0]
    y = plateau(model, input_vector(model, "intrathecal", 1.0, site))
    c = y / model.system.volume * 1000.0
    n = model.system.n_spinal
    return _SteadyRun(z=model.grid.centers, csf_profile=c[:n],
                      cisterna=float(c[model.system.index("cisterna")]),
                      plasma=float(c[model.system.index("plasma")]),
                      anatomy=scen.anatomy, site_z=float(site))


def _at(t: np.ndarray, c: np.ndarray, times_h) -> np.ndarray:
    return np.interp(np.asarray(times_h, float), t, c)


def terminal_half_life(t_h: np.ndarray, c: np.ndarray) -> float:
    """Half-life (min) of a log-linear least-squares fit through (t, c) samples."""
    slope = np.polyfit(np.asarray(t_h) * 60.0, np.log(np.asarray(c)), 1)[0]
    return float(np.log(2.0) / -slope) if slope < 0 else float("inf")


def auc_inf(t_h: np.ndarray, c: np.ndarray, terminal_from_h: float) -> float:
    """AUC(0-inf) (ng/mL*min): trapezoids over the curve, extrapolated with the
    terminal slope fitted from ``terminal_from_h`` on."""
    t_h, c = np.asarray(t_h, float), np.asarray(c, float)
    t_min = t_h * 60.0
    auc = float(np.trapezoid(c, t_min))
    # solver round-off may leave tiny negative values where the curve has died out
    sel = (t_h >= terminal_from_h) & (c > 1e-9 * c.max())
    if sel.sum() >= 3 and c[-1] > 0:
        slope = np.polyfit(t_min[sel], np.log(c[sel]), 1)[0]
        if slope < 0:
            auc += float(c[-1] / -slope)
    return auc


def peak(t: np.ndarray, c: np.ndarray) -> tuple[float, float]:
    """(time, value) of the maximum of a densely sampled curve, refined by the parabola
    through the largest sample and its neighbours (a smooth function of the curve,
    unlike the bare arg-max, so that a fit can differentiate it)."""
    t, c = np.asarray(t, float), np.asarray(c, float)
    k = int(np.argmax(c))
    if 0 < k < len(c) - 1:
        t0, t1, t2 = t[k - 1:k + 2]
        c0, c1, c2 = c[k - 1:k + 2]
        den = (t0 - t1) * (t0 - t2) * (t1 - t2)
        a = (t2 * (c1 - c0) + t1 * (c0 - c2) + t0 * (c2 - c1)) / den
        b = (t2 * t2 * (c0 - c1) + t1 * t1 * (c2 - c0) + t0 * t0 * (c1 - c2)) / den
        if a < 0:
            tp = -b / (2 * a)
            if t0 <= tp <= t2:
                cp = c1 + a * (tp - t1) ** 2 + b * (tp - t1) + 2 * a * t1 * (tp - t1)
                return float(tp), float(max(cp, c1))
    return float(t[k]), float(c[k])


