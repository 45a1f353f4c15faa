r"""The linear model: compartments, processes and their assembly into arrays.

This module holds the model's equations in one place. Everything is linear at
clinical concentrations, so between dose events the state obeys

.. math::

    \frac{dy}{dt} = J\,y + u, \qquad y(t_k^+) = y(t_k^-) + b_k

with constant :math:`J`, piecewise-constant inputs :math:`u` and bolus jumps
:math:`b_k`. The state :math:`y` holds **amounts** (ug), so every transfer is a
clearance (mL/min) times a concentration difference and every column of
:math:`J` sums to zero: drug is only moved, or moved into the ``eliminated``
account. Hence ``dosed = present + eliminated`` to round-off.

State layout
------------
``y = [s_0 … s_{N-1} | c_0 … c_{M-1} | cisterna, cortical, ventricles, brain,
plasma, shallow, deep, gut_ir, gut_cr, eliminated]``

* ``s_i``: spinal CSF, cell-centred finite volumes of width ``dz`` along z, volume
  :math:`V_i=\int A(z)\,dz`; :math:`C_i = s_i/V_i`.
* ``c_j``: cord tissue (dorsal-horn target) in the first ``M`` cells (where the
  cord exists), tissue volume :math:`W_j=\int A_{cord}\,dz`, unbound
  concentration :math:`C^u_j = c_j/(W_j K_{p,cord})`.

Processes (all clearances in mL/min; ``C`` are concentrations in ug/mL)
-----------------------------------------------------------------------
Spinal dispersion and bulk flow across the face between cells ``i`` and ``i+1``
(central differences; second order in dz)::

    F_{i+1/2} = D(z_f) A(z_f) / dz * (C_i - C_{i+1}) + q(z_f) * (C_i + C_{i+1}) / 2

with the dispersion following the local CSF oscillation (:func:`dispersion`)

.. math::

    D(z) = D_{aq} + D_0\,\bigl(f + (1 - f)\,(s(z)/s(0))^n\bigr), \qquad
    s(z) = \frac{SV(z)}{A(z)}, \quad SV(z) = SV_0\,(1 - z/L),

the stroke length :math:`s` being the cardiac stroke volume (falling linearly to zero
at the closed end of the sac) over the CSF area: large in the narrow cervical and
thoracic SAS, small in the wide lumbar sac, so that the sac holds an injected drug
while transport above it is fast. ``D_0`` (at the foramen magnum), ``n = 2``
(oscillatory dispersion ~ amplitude squared, Watson 1983) and the floor ``f``
(mixing not driven by the cardiac stroke) are patient parameters. Net spinal bulk
flow :math:`q(z) = q_{sp}(1 - z/L)` is absorbed evenly along the spine. There is no
other net advection: in a closed-ended, periodically pulsating sac the cross-section
mean Lagrangian volume flux is zero (the steady streaming and Stokes drift of Lawrence
2019 recirculate within the cross-section); their effect on the section-averaged
concentration is dispersion, which ``D(z)`` carries. The face at z = 0 couples cell
0 to the cisterna over half a cell; the sac end is closed.

Spinal CSF ↔ plasma across the meninges, per cell::

    F = P_men * perimeter(z_i) * dz * (C_i - fu * C_p)

CSF ↔ cord tissue (diffusion-limited, unbound) and cord ↔ blood (BSCB)::

    F = P_cord * perimeter_cord * dz * (C_i - C^u_j)
    F = CL_out * m_j * (C^u_j - Kpuu * fu * C_p)

Cranial CSF: production ``Q_prod`` enters the ventricles drug-free, flows to
the cisterna; ``q_sp`` goes down the spine, the rest to the cortical SAS and is
absorbed to venous blood. Pulsatile mixing adds exchange clearances
``Q_vc`` (ventricles ↔ cisterna) and ``Q_cc`` (cisterna ↔ cortical SAS).
Blood–CSF barrier: ``CL_cp * (Kpuu * fu * C_p - C_vent)``.

Brain (supraspinal target, unbound ECF concentration
:math:`C^u_b = A_b/(M_b K_{p,brain})`) exchanges with each cranial CSF space
``X`` by ``P_brain * area_X * (C_X - C^u_b)`` and with plasma across the BBB by
``CL_out * M_b * (C^u_b - Kpuu * fu * C_p)``.

An intrathecal bolus is a jump and then zero-sum input rates (:func:`bolus_inputs`):
the injectate mixes into ``V_mix(t) = V + (kappa - 1) V (1 - exp(-t/tau))`` mL of the
CSF nearest the tip (``kappa = injection_spread``, ``tau = injection_mixing_time``;
:func:`deposit` of ``V_mix``: pushed rostrally where the closed end of the sac leaves no
room below, at a uniform concentration, its edges smoothed by the jet), laid down at
``SPREAD_STAGES * tau`` and moved linearly in between; pump boluses (< 0.1 mL) at once.
All of the dose starts in the CSF (there is no puncture loss).

Systemic: three-compartment plasma kinetics (``CL``, ``Q2``, ``Q3``), oral
depots absorbed with ``ka * F`` into plasma and ``ka * (1 - F)`` eliminated
(first pass).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields

import numpy as np

from csfmodel.anatomy import Anatomy
from csfmodel.drugs import CNS_CONSTANTS, Drug

from ._doses import deposit
from ._grid import Grid, make_grid
from ._matrix import _C, LinearSystem, _Assembler

# ellipticity factor of the dural sac and cord perimeters relative to a circle of
# the same area (estimate from Frostell 2016 axis ratios ~1.2-1.8)
_ELLIPTIC = 1.05


@dataclass(frozen=True)
class Model:
    """An assembled model: grid, matrix and the parameters it came from."""

    anatomy: Anatomy
    drug: Drug
    grid: Grid
    system: LinearSystem
    rates: dict[str, float] = field(default_factory=dict)

    def deposit_spinal(self, z: float, amount: float, volume: float = 0.0,
                       injection_rate: float = np.inf, puncture: bool = True) -> np.ndarray:
        """State jump (length n_state) for an intrathecal dose at z."""
        return deposit(self, z, amount, volume, injection_rate, puncture)


def stroke_profile(anatomy: Anatomy, z: np.ndarray) -> np.ndarray:
    r"""Local CSF stroke length relative to the foramen magnum, :math:`s(z)/s(0)`.

    The cardiac stroke volume of the spinal CSF falls from the foramen magnum to
    the closed end of the dural sac as the compliance below each level is used
    up; with the compliance spread along the canal it falls linearly,
    :math:`SV(z) = SV_0 (1 - z/L)` (Sincomb 2022 J Fluid Mech 939:A26, 1-D model
    of the spinal CSF oscillation; flow ~0 in the distal sac, Haughton & Mardal
    2014). The stroke length is the stroke volume over the CSF area,
    :math:`s(z) = SV(z)/A(z)`: large in the narrow thoracic SAS, small in the wide
    lumbar sac.
    """
    z = np.asarray(z, float)
    frac = np.clip(1.0 - z / anatomy.length, 0.0, 1.0)
    return frac * float(anatomy.csf_area(0.0)) / anatomy.csf_area(z)


def dispersion(anatomy: Anatomy, drug: Drug, z: np.ndarray) -> np.ndarray:
    r"""Effective dispersion coefficient D(z), cm^2/min.

    :math:`D(z) = D_{aq} + D_0\,(f + (1 - f)\,(s(z)/s(0))^n)` with
    :func:`stroke_profile` ``s``, ``D_0`` = ``anatomy.dispersion`` (the value at
    the foramen magnum), ``n`` = ``dispersion_exponent`` and ``f`` =
    ``dispersion_caudal_fraction``.
    """
    f = anatomy.dispersion_caudal_fraction
    n = anatomy.dispersion_exponent
    w = stroke_profile(anatomy, z) ** n if n != 0 else np.ones_like(np.asarray(z, float))
    return drug.diffusivity + anatomy.dispersion * (f + (1.0 - f) * w)


def bulk_flow(anatomy: Anatomy, z: np.ndarray) -> np.ndarray:
    """Net caudal CSF bulk flow q(z), mL/min."""
    return anatomy.spinal_bulk_flow * np.clip(1.0 - z / anatomy.length, 0, 1)


def _perimeter(area: np.ndarray) -> np.ndarray:
    return _ELLIPTIC * 2.0 * np.sqrt(np.pi * np.maximum(area, 0.0))


def _dtype(*objs: object) -> type:
    """``complex`` where a parameter is complex (the complex-step derivative of the
    assembly, :mod:`csfmodel.fitting`), else ``float``."""
    values = (getattr(o, f.name) for o in objs for f in fields(o))
    return complex if any(isinstance(v, (complex, np.complexfloating))
                          or (isinstance(v, np.ndarray) and np.iscomplexobj(v))
                          for v in values) else float


def _scalar(x: object) -> float | complex:
    """A number as ``float`` (``complex`` on the complex-step path)."""
    return complex(x) if np.iscomplexobj(x) else float(x)


def build_model(anatomy: Anatomy, drug: Drug, resolution: float = 0.5,
                grid: Grid | None = None) -> Model:
    """Assemble the linear system for one patient and drug at a grid resolution (cm).

    ``grid`` may pass a grid already made by :func:`make_grid` for the same
    geometry (sweeps reuse it); by default it is built here.
    """
    g = make_grid(anatomy, resolution) if grid is None else grid
    system, rates = _assemble(anatomy, drug, g)
    return Model(anatomy=anatomy, drug=drug, grid=g, system=system, rates=rates)


def _face(x: np.ndarray, i: int) -> np.ndarray:
    """``x[i]`` along the last axis; with a batch axis ``(B, 1)`` (one value per system)."""
    return x[..., i:i + 1] if np.ndim(x) == 2 else x[i]


@functools.lru_cache(maxsize=64)
def _index_arrays(n: int, m: int) -> tuple[np.ndarray, ...]:
    """The state indices the equations address (interior faces' left and right cells,
    the spinal cells, the cord-facing cells and the cord cells), read-only and the same
    objects for every model of ``n`` spinal and ``m`` cord cells: the assembly's replay
    plans recognise them by identity instead of comparing their values."""
    out = (np.arange(n - 1), np.arange(1, n), np.arange(n), np.arange(m), n + np.arange(m))
    for a in out:
        a.setflags(write=False)
    return out


def _assemble(anatomy: Anatomy, drug: Drug, g: Grid, batch: int | None = None
              ) -> tuple[LinearSystem, dict]:
    """The equations: the system and the summary rates of ``anatomy`` and ``drug`` on ``g``.

    With ``batch=B`` the numeric fields of ``anatomy`` and ``drug`` may be arrays of shape
    ``(B, 1)`` (:func:`csfmodel.model.build_models`): every coefficient is then computed
    for the ``B`` systems at once and the arrays get a leading axis of ``B``.
    """
    n, m = g.n, g.n_cord
    s = n + m
    asm = _Assembler(n, m, _dtype(anatomy, drug), batch)
    C = {k: s + v for k, v in _C.items()}
    cc = CNS_CONSTANTS
    fu = drug.fu_plasma
    v1 = drug.v1
    dz = g.dz
    L = anatomy.length
    V = g.csf_volume
    zf = g.edges

    # effective volumes for exchange (amount / vol = concentration driving the flux)
    rho = cc["tissue_density"]
    kp_cord, kp_brain = drug.kp_cord(), drug.kp_brain()
    w_cord = g.cord_volume * kp_cord
    cis, cort, vent = anatomy.cisternal_volume, anatomy.cortical_sas_volume, \
        anatomy.ventricular_volume
    brain_vol = anatomy.brain_mass / rho * kp_brain
    plasma_u = v1 / fu        # exchange with unbound plasma concentration

    # spinal dispersion + bulk flow, interior faces
    i, ip1, cells, j, cord = _index_arrays(n, m)
    D = dispersion(anatomy, drug, zf)
    q = bulk_flow(anatomy, zf)
    G = D[..., 1:-1] * g.face_area[1:-1] / dz
    asm.exchange(i, ip1, G, V[:-1], V[1:])
    qi = q[..., 1:-1]
    asm.flux(i, ip1, i, 0.5 * qi / V[:-1])
    asm.flux(i, ip1, ip1, 0.5 * qi / V[1:])
    # face z=0: cisterna <-> cell 0 (half-cell distance), bulk flow in
    g0 = _face(D, 0) * g.face_area[0] / (0.5 * dz)
    asm.exchange(C["cisterna"], 0, g0, cis, V[0])
    asm.flux(C["cisterna"], 0, C["cisterna"], 0.5 * _face(q, 0) / cis)
    asm.flux(C["cisterna"], 0, 0, 0.5 * _face(q, 0) / V[0])
    # spinal absorption of the bulk flow into venous blood
    absorb = anatomy.spinal_bulk_flow * dz / L
    asm.flux(cells, C["plasma"], cells, absorb / V)

    # meninges: spinal CSF <-> plasma (unbound)
    centers = g.centers
    sac_area = anatomy.csf_area(centers) + anatomy.cord_area(centers)
    cl_men = drug.meningeal_p() * _perimeter(sac_area) * dz
    asm.exchange(cells, C["plasma"], cl_men, V, plasma_u)

    # cord: CSF <-> tissue, tissue <-> plasma across the BSCB
    cord_perim = _perimeter(g.cord_volume / dz)
    cl_cord = drug.tissue_conductance(cc["cord_depth"]) * cord_perim * dz
    asm.exchange(j, cord, cl_cord, V[:m], w_cord)
    cl_bscb = drug.bbb_efflux * rho * g.cord_volume
    asm.flux(cord, C["plasma"], cord, cl_bscb / w_cord)
    asm.flux(C["plasma"], cord, C["plasma"], cl_bscb * drug.kpuu_brain / plasma_u)

    # cranial CSF circulation
    qp, qsp = anatomy.csf_production, anatomy.spinal_bulk_flow
    asm.flux(C["ventricles"], C["cisterna"], C["ventricles"], qp / vent)
    asm.flux(C["cisterna"], C["cortical_sas"], C["cisterna"], (qp - qsp) / cis)
    asm.flux(C["cortical_sas"], C["plasma"], C["cortical_sas"], (qp - qsp) / cort)
    asm.exchange(C["ventricles"], C["cisterna"], anatomy.ventricular_mixing, vent, cis)
    asm.exchange(C["cisterna"], C["cortical_sas"], anatomy.cranial_mixing, cis, cort)
    # blood-CSF barrier at the choroid plexus
    asm.flux(C["plasma"], C["ventricles"], C["plasma"],
             drug.bcsfb_efflux * drug.kpuu_brain / plasma_u)
    asm.flux(C["ventricles"], C["plasma"], C["ventricles"], drug.bcsfb_efflux / vent)

    # brain: cranial CSF <-> brain ECF, BBB
    p_brain = drug.tissue_conductance(cc["brain_depth"])
    for comp, vol, area in (("cisterna", cis, cc["brain_area_cisternal"]),
                            ("cortical_sas", cort, cc["brain_area_cortical"]),
                            ("ventricles", vent, cc["brain_area_ventricular"])):
        asm.exchange(C[comp], C["brain"], p_brain * area, vol, brain_vol)
    cl_bbb = drug.bbb_efflux * anatomy.brain_mass
    asm.flux(C["brain"], C["plasma"], C["brain"], cl_bbb / brain_vol)
    asm.flux(C["plasma"], C["brain"], C["plasma"], cl_bbb * drug.kpuu_brain / plasma_u)

    # systemic kinetics
    asm.exchange(C["plasma"], C["shallow"], drug.q2, v1, drug.v2)
    asm.exchange(C["plasma"], C["deep"], drug.q3, v1, drug.v3)
    asm.flux(C["plasma"], C["eliminated"], C["plasma"], drug.cl / v1)
    for gut, ka in (("gut_ir", drug.ka_ir), ("gut_cr", drug.ka_cr)):
        asm.flux(C[gut], C["plasma"], C[gut], ka * drug.f_oral)
        asm.flux(C[gut], C["eliminated"], C[gut], ka * (1.0 - drug.f_oral))

    tail = [cis, cort, vent, brain_vol, v1, drug.v2, drug.v3, 1.0, 1.0, 1.0]
    if batch is None:
        volume = np.concatenate([V, w_cord, tail])
    else:
        volume = np.concatenate([np.broadcast_to(x, asm.lead + (np.shape(x)[-1:] or (1,)))
                                 for x in (V, w_cord, *tail)], axis=-1)
    total = _scalar if batch is None else np.asarray
    system = LinearSystem(
        n_spinal=n, n_cord=m, lower=asm.lower, diag=asm.diag, upper=asm.upper,
        cord_diag=asm.cord_diag, csf_to_cord=asm.csf_to_cord, cord_to_csf=asm.cord_to_csf,
        border_rows=asm.rows, border_cols=asm.cols, block=asm.block, volume=volume)
    rates = {
        "meningeal_clearance": total(cl_men.sum(axis=-1)),
        "cord_uptake_clearance": total(cl_cord.sum(axis=-1)),
        "cord_blood_clearance": total(cl_bscb.sum(axis=-1)),
        "bbb_efflux_clearance": total(cl_bbb),
        "meningeal_permeability": drug.meningeal_p(),
        "kp_cord": kp_cord,
        "kp_brain": kp_brain,
    }
    return system, rates
