r"""Exact derivatives of the calibration rows: the joint fit's Jacobian from the
forward sensitivities of :mod:`csfmodel.fitting`.

A row is a measure (a concentration at a time, a sampled maximum, a log-linear
half-life, an AUC ratio, a plateau ratio) of one or more simulated study arms. Its
derivative with respect to ``log θ_k`` is the chain rule

.. math::

    \frac{\partial m}{\partial \log θ_k} = \nabla_c\, m \cdot θ_k \frac{\partial c}{\partial θ_k},

with the curves' sensitivities :math:`\partial c/\partial θ_k` exact: a dynamic arm
by the forward sensitivity equations along the numba backend's own steps
(:func:`csfmodel.fitting.solve_sensitivities`), a plateau arm by differentiating its
steady state, :math:`\partial y/\partial θ_k = -J^{-1} J_k\, y` (the input of an
infusion at a point depends on the grid alone, which no fitted parameter changes).
The directional derivative of the measure along that direction is taken by a central
difference in the space of curves (``m(c + ε δc) - m(c - ε δc)``, no new simulation,
``ε`` = :data:`EPS` on the log scale): measures are smooth functions of the curve
(a log-linear regression, trapezoids, a parabola through the peak), so the difference
is exact to ~``ε²``; a measure that is piecewise constant (the sample time of a
maximum) gets 0, its derivative almost everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._designs import _measure_of, _sample_site
from ._measures import _Run, _SteadyRun
from ._rows import Row

#: relative step (on the log scale of each parameter) of the central difference of a
#: measure along the exact direction of its curves
EPS = 1e-6


def _applies(sc: dict, table: str, key: str, written: Any) -> bool:
    """Whether a fitted value reaches an arm: the arm's scenario carries the override as
    the fit wrote it (an arm may fix its own value, or use another drug)."""
    section = sc.get(table if table == "patient" else "drug", {})
    return section.get(key) == written


class _DynamicArm:
    """A simulated arm and the exact sensitivities of its CSF and plasma curves."""

    def __init__(self, sc: dict, keys: list[str], site: tuple[str, float] | None):
        from csfmodel.api import prepare
        from csfmodel.fitting import solve_sensitivities
        from csfmodel.fitting._parameters import resolve

        prep = prepare(sc)
        sample_z = None if site is None else prep.scenario.anatomy.level_z(*site)
        params = resolve(prep.scenario, keys) if keys else []
        res = solve_sensitivities(prep, params)
        vals, dvals = res.concentrations(("csf_concentration", "plasma_concentration"))
        self.keys = keys
        self.sample_z = sample_z
        self.time = res.t_out / 60.0
        self.z = prep.model.grid.centers
        self.csf, self.plasma = vals["csf_concentration"], vals["plasma_concentration"][:, 0]
        # d c / d log θ = θ d c / d θ (per internal unit times the internal value)
        self.dcsf = {k: p.value * dvals["csf_concentration"][i] for i, (k, p) in
                     enumerate(zip(keys, params))}
        self.dplasma = {k: p.value * dvals["plasma_concentration"][i, :, 0] for i, (k, p) in
                        enumerate(zip(keys, params))}

    def run(self, key: str | None = None, step: float = 0.0) -> _Run:
        import xarray as xr

        csf, plasma = self.csf, self.plasma
        if key in self.dcsf:
            csf = csf + step * self.dcsf[key]
            plasma = plasma + step * self.dplasma[key]
        ds = xr.Dataset({"csf_concentration": (("time", "z"), csf),
                         "plasma_concentration": ("time", plasma)},
                        coords={"time": self.time, "z": self.z})
        return _Run(ds, self.sample_z)


class _PlateauArm:
    """A plateau arm (:func:`~csfmodel.validation._measures._plateau_run`) and the
    derivative of its steady state."""

    def __init__(self, sc: dict, keys: list[str]):
        from scipy.sparse.linalg import splu

        from csfmodel.api import prepare
        from csfmodel.fitting._parameters import resolve
        from csfmodel.fitting._sensitivity import tangents
        from csfmodel.steady_state import conserved_matrix, input_vector

        prep = prepare(sc)
        model, scen = prep.model, prep.scenario
        site = float(scen.catheter_sites()[0])
        u = input_vector(model, "intrathecal", 1.0, site)
        Jc, keep = conserved_matrix(model)
        lu = splu(Jc)
        y = np.zeros(model.system.n_state)
        y[keep] = lu.solve(-u[keep])
        vol = model.system.volume
        s = model.system
        self.index = (s.n_spinal, s.index("cisterna"), s.index("plasma"))
        self.base = (model.grid.centers, y / vol * 1000.0, scen.anatomy, site)
        self.dconc: dict[str, np.ndarray] = {}
        params = resolve(scen, keys) if keys else []
        for key, p, tan in zip(keys, params, tangents(model, prep.schedule, prep.events,
                                                      params)):
            dy = np.zeros_like(y)
            dy[keep] = lu.solve(-(tan.system.to_sparse() @ y)[keep])
            dvol = tan.system.volume
            self.dconc[key] = p.value * (dy / vol - y * dvol / vol ** 2) * 1000.0

    def run(self, key: str | None = None, step: float = 0.0) -> _SteadyRun:
        z, c, anatomy, site = self.base
        if key in self.dconc:
            c = c + step * self.dconc[key]
        n, ic, ip = self.index
        return _SteadyRun(z=z, csf_profile=c[:n], cisterna=float(c[ic]), plasma=float(c[ip]),
                          anatomy=anatomy, site_z=site)


def row_values_and_derivatives(rows: list[Row], overrides: dict,
                               fitted: dict[str, tuple[str, str, Any]]
                               ) -> tuple[np.ndarray, np.ndarray]:
    """The model value of each row and its derivatives ``d value / d log θ`` (rows x
    parameters).

    ``overrides`` are the scenario overrides of the run (the fitted values included);
    ``fitted`` maps each fitted parameter's name to ``(table, key, written value)``.
    """
    needed: dict[str, dict] = {}
    for row in rows:
        design, _ = _measure_of(row.id)
        needed.update(design.scenarios(overrides))
    names = list(fitted)
    arms: dict[str, Any] = {}
    keys_of: dict[str, dict[str, str]] = {}
    for arm, sc in needed.items():
        plateau = sc.pop("_plateau", False)
        keys_of[arm] = {name: f"{'patient' if table == 'patient' else 'drug'}.{key}"
                        for name, (table, key, written) in fitted.items()
                        if _applies(sc, table, key, written)}
        keys = list(keys_of[arm].values())
        if plateau:
            arms[arm] = _PlateauArm(sc, keys)
        else:
            arms[arm] = _DynamicArm(sc, keys, _sample_site(arm))

    def measure_all(runs: dict[str, Any]) -> np.ndarray:
        return np.array([float(_measure_of(r.id)[1](runs, r)[0]) for r in rows])

    values = measure_all({a: arm.run() for a, arm in arms.items()})
    D = np.zeros((len(rows), len(names)))
    for j, name in enumerate(names):
        plus = {a: arm.run(keys_of[a].get(name), EPS) for a, arm in arms.items()}
        minus = {a: arm.run(keys_of[a].get(name), -EPS) for a, arm in arms.items()}
        D[:, j] = (measure_all(plus) - measure_all(minus)) / (2.0 * EPS)
    return values, D
