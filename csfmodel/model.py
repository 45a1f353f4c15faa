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

An intrathecal bolus is a jump (:func:`deposit`): the injectate mixed into
``injection_spread * V`` mL of the CSF nearest the tip (pushed rostrally where the
closed end of the sac leaves no room below), at a uniform concentration, its edges
smoothed by the jet. All of the dose starts in the CSF (there is no puncture loss).

Systemic: three-compartment plasma kinetics (``CL``, ``Q2``, ``Q3``), oral
depots absorbed with ``ka * F`` into plasma and ``ka * (1 - F)`` eliminated
(first pass).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from csfmodel.anatomy import CORD_SEGMENTS, Anatomy
from csfmodel.dosing import DoseEvents
from csfmodel.drugs import CNS_CONSTANTS, Drug

__all__ = [
    "COMPARTMENTS",
    "Grid",
    "LinearSystem",
    "Schedule",
    "Model",
    "build_model",
    "build_schedule",
    "deposit",
]

#: Well-mixed compartments after the spatial (spinal CSF, cord) states.
COMPARTMENTS: tuple[str, ...] = (
    "cisterna", "cortical_sas", "ventricles", "brain",
    "plasma", "shallow", "deep", "gut_ir", "gut_cr", "eliminated",
)
_C = {name: k for k, name in enumerate(COMPARTMENTS)}

# ellipticity factor of the dural sac and cord perimeters relative to a circle of
# the same area (estimate from Frostell 2016 axis ratios ~1.2-1.8)
_ELLIPTIC = 1.05


@dataclass(frozen=True)
class Grid:
    """Uniform cell-centred finite-volume grid along the spinal SAS."""

    edges: np.ndarray
    csf_volume: np.ndarray      # mL per cell
    face_area: np.ndarray       # CSF area at the N+1 faces, cm^2
    cord_volume: np.ndarray     # mL of cord tissue per cord cell (length M)
    segment_weights: np.ndarray  # (32 segments, M) cord-volume overlaps, mL

    @property
    def n(self) -> int:
        return len(self.edges) - 1

    @property
    def n_cord(self) -> int:
        return len(self.cord_volume)

    @property
    def dz(self) -> float:
        return float(self.edges[1] - self.edges[0])

    @property
    def centers(self) -> np.ndarray:
        return 0.5 * (self.edges[1:] + self.edges[:-1])


def make_grid(anatomy: Anatomy, resolution: float) -> Grid:
    """Build the grid with cells no wider than ``resolution`` (cm)."""
    length = anatomy.length
    n = int(np.ceil(length / resolution - 1e-9))
    edges = np.linspace(0.0, length, n + 1)
    vol = np.array([anatomy.csf_volume_between(a, b) for a, b in zip(edges[:-1], edges[1:])])
    conus = anatomy.conus_z
    m = int(np.searchsorted(edges, conus, side="left"))  # cells overlapping [0, conus)
    seg = anatomy.segment_edges()
    # cord volume overlaps of each (segment, cell) pair, 16-point Gauss-Legendre
    xg, wg = np.polynomial.legendre.leggauss(16)

    def cord_int(a: float, b: float) -> float:
        if b <= a:
            return 0.0
        x = 0.5 * (b - a) * xg + 0.5 * (a + b)
        return float(0.5 * (b - a) * np.sum(wg * anatomy.cord_area(x)))

    w = np.zeros((len(CORD_SEGMENTS), m))
    for s in range(len(CORD_SEGMENTS)):
        for j in range(m):
            w[s, j] = cord_int(max(seg[s], edges[j]), min(seg[s + 1], edges[j + 1]))
    return Grid(edges=edges, csf_volume=vol, face_area=anatomy.csf_area(edges),
                cord_volume=w.sum(axis=0), segment_weights=w)


@dataclass(frozen=True)
class LinearSystem:
    r"""The matrix :math:`J` of ``dy/dt = J y + u`` in structured form.

    ``J`` is a tridiagonal spinal block, a diagonal cord block coupled cell by
    cell to the spinal block, and a dense border of ``m`` well-mixed
    compartments. Backends consume these arrays directly; :meth:`to_sparse`
    gives the same matrix for the scipy reference.

    Attributes
    ----------
    lower, diag, upper
        Spinal tridiagonal block: ``J[i+1, i]``, ``J[i, i]``, ``J[i, i+1]``.
    cord_diag, csf_to_cord, cord_to_csf
        ``J[N+j, N+j]``, ``J[N+j, j]``, ``J[j, N+j]`` for cord cell ``j``.
    border_rows
        ``J[N+M+k, :N+M]`` (compartments receiving from spatial states), (m, N+M).
    border_cols
        ``J[:N+M, N+M+k]`` (spatial states receiving from compartments), (N+M, m).
    block
        ``J[N+M:, N+M:]`` (m, m).
    volume
        Divisor turning each state's amount into the concentration reported for
        it (mL): CSF volume, cord ``W_j K_p`` (unbound), compartment volumes,
        brain ``M K_p`` (unbound), plasma ``V1`` (total); 1 for gut and eliminated.
    """

    n_spinal: int
    n_cord: int
    lower: np.ndarray
    diag: np.ndarray
    upper: np.ndarray
    cord_diag: np.ndarray
    csf_to_cord: np.ndarray
    cord_to_csf: np.ndarray
    border_rows: np.ndarray
    border_cols: np.ndarray
    block: np.ndarray
    volume: np.ndarray

    @property
    def n_state(self) -> int:
        return self.n_spinal + self.n_cord + len(COMPARTMENTS)

    @property
    def n_spatial(self) -> int:
        return self.n_spinal + self.n_cord

    def index(self, compartment: str) -> int:
        """State index of a well-mixed compartment."""
        return self.n_spatial + _C[compartment]

    def to_sparse(self):
        """``J`` as a scipy CSR matrix (reference backend, tests)."""
        import scipy.sparse as sp

        n, m, s = self.n_spinal, self.n_cord, self.n_spatial
        i = np.arange(n)
        j = np.arange(m)
        rows = [i, i[1:], i[:-1], n + j, n + j, j]
        cols = [i, i[:-1], i[1:], n + j, j, n + j]
        vals = [self.diag, self.lower, self.upper, self.cord_diag, self.csf_to_cord,
                self.cord_to_csf]
        r, c = np.nonzero(self.border_rows)
        rows.append(s + r)
        cols.append(c)
        vals.append(self.border_rows[r, c])
        r, c = np.nonzero(self.border_cols)
        rows.append(r)
        cols.append(s + c)
        vals.append(self.border_cols[r, c])
        r, c = np.nonzero(self.block)
        rows.append(s + r)
        cols.append(s + c)
        vals.append(self.block[r, c])
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(self.n_state, self.n_state))

    def to_dense(self) -> np.ndarray:
        """``J`` as a dense array (small grids and tests only)."""
        return self.to_sparse().toarray()

    def matvec(self, y: np.ndarray) -> np.ndarray:
        """``J @ y`` using the structure, O(N)."""
        n, m, s = self.n_spinal, self.n_cord, self.n_spatial
        out = np.empty_like(y)
        sp_ = y[:n]
        out[:n] = self.diag * sp_
        out[1:n] += self.lower * sp_[:-1]
        out[: n - 1] += self.upper * sp_[1:]
        out[:m] += self.cord_to_csf * y[n:s]
        out[n:s] = self.cord_diag * y[n:s] + self.csf_to_cord * sp_[:m]
        out[:s] += self.border_cols @ y[s:]
        out[s:] = self.border_rows @ y[:s] + self.block @ y[s:]
        return out


class _Assembler:
    """Collects transfers ``flux(src -> dst) = coef * y[k]`` into structured arrays."""

    def __init__(self, n: int, m: int):
        self.n, self.m = n, m
        self.s = n + m
        nc = len(COMPARTMENTS)
        self.lower = np.zeros(n - 1)
        self.diag = np.zeros(n)
        self.upper = np.zeros(n - 1)
        self.cord_diag = np.zeros(m)
        self.csf_to_cord = np.zeros(m)
        self.cord_to_csf = np.zeros(m)
        self.rows = np.zeros((nc, self.s))
        self.cols = np.zeros((self.s, nc))
        self.block = np.zeros((nc, nc))

    def _add(self, r: np.ndarray, c: np.ndarray, v: np.ndarray) -> None:
        """Add ``J[r, c] += v`` elementwise into the structured arrays (vectorized;
        ``np.add.at`` accumulates repeated entries in order, as a loop would)."""
        if np.ndim(r) == 0 and np.ndim(c) == 0 and np.ndim(v) == 0:
            vv = float(v)
            if vv != 0.0:
                self._add_one(int(r), int(c), vv)
            return
        r, c, v = np.broadcast_arrays(np.asarray(r), np.asarray(c), np.asarray(v, float))
        if r.size <= 8:   # a few entries: plain loop, cheaper than array bookkeeping
            for rr, cc, vv in zip(r.ravel().tolist(), c.ravel().tolist(), v.ravel().tolist()):
                if vv != 0.0:
                    self._add_one(rr, cc, vv)
            return
        keep = v.ravel() != 0.0
        r, c, v = r.ravel()[keep].astype(np.int64), c.ravel()[keep].astype(np.int64), \
            v.ravel()[keep]
        n, s = self.n, self.s
        spinal = (r < n) & (c < n)
        only_spinal = bool(spinal.all())
        if only_spinal or spinal.any():
            rs, cs, vs = r[spinal], c[spinal], v[spinal]
            d, lo, up = rs == cs, rs == cs + 1, cs == rs + 1
            if not np.all(d | lo | up):
                raise AssertionError("transfer outside the tridiagonal spinal block")
            np.add.at(self.diag, rs[d], vs[d])
            np.add.at(self.lower, cs[lo], vs[lo])
            np.add.at(self.upper, rs[up], vs[up])
            if only_spinal:
                return
        cord = (r < s) & (c < s) & ~spinal
        if cord.any():
            rs, cs, vs = r[cord], c[cord], v[cord]
            d = (rs >= n) & (cs >= n) & (rs == cs)
            to_cord = (rs >= n) & (cs == rs - n)
            to_csf = (cs >= n) & (rs == cs - n)
            if not np.all(d | to_cord | to_csf):
                raise AssertionError("cord coupled to a cell other than its own")
            np.add.at(self.cord_diag, rs[d] - n, vs[d])
            np.add.at(self.csf_to_cord, cs[to_cord], vs[to_cord])
            np.add.at(self.cord_to_csf, rs[to_csf], vs[to_csf])
        m = (r >= s) & (c < s)
        if m.any():
            np.add.at(self.rows, (r[m] - s, c[m]), v[m])
        m = (r < s) & (c >= s)
        if m.any():
            np.add.at(self.cols, (r[m], c[m] - s), v[m])
        m = (r >= s) & (c >= s)
        if m.any():
            np.add.at(self.block, (r[m] - s, c[m] - s), v[m])

    def _add_one(self, rr: int, cc: int, vv: float) -> None:
        n, s = self.n, self.s
        if rr < n and cc < n:
            if rr == cc:
                self.diag[rr] += vv
            elif rr == cc + 1:
                self.lower[cc] += vv
            elif cc == rr + 1:
                self.upper[rr] += vv
            else:
                raise AssertionError("transfer outside the tridiagonal spinal block")
        elif rr < s and cc < s:
            if rr >= n and cc >= n and rr == cc:
                self.cord_diag[rr - n] += vv
            elif rr >= n and cc == rr - n:
                self.csf_to_cord[cc] += vv
            elif cc >= n and rr == cc - n:
                self.cord_to_csf[rr] += vv
            else:
                raise AssertionError("cord coupled to a cell other than its own")
        elif rr >= s and cc < s:
            self.rows[rr - s, cc] += vv
        elif rr < s:
            self.cols[rr, cc - s] += vv
        else:
            self.block[rr - s, cc - s] += vv

    def flux(self, src, dst, k, coef) -> None:
        """Add ``flux(src -> dst) = coef * y[k]`` (conservative by construction)."""
        self._add(src, k, -np.asarray(coef, float))
        self._add(dst, k, np.asarray(coef, float))

    def exchange(self, a, b, cl, vol_a, vol_b) -> None:
        """Add ``flux(a -> b) = cl * (y[a]/vol_a - y[b]/vol_b)``."""
        cl = np.asarray(cl, float)
        self.flux(a, b, a, cl / vol_a)
        self.flux(b, a, b, cl / vol_b)


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


def build_model(anatomy: Anatomy, drug: Drug, resolution: float = 0.5,
                grid: Grid | None = None) -> Model:
    """Assemble the linear system for one patient and drug at a grid resolution (cm).

    ``grid`` may pass a grid already made by :func:`make_grid` for the same
    geometry (sweeps reuse it); by default it is built here.
    """
    g = make_grid(anatomy, resolution) if grid is None else grid
    n, m = g.n, g.n_cord
    s = n + m
    asm = _Assembler(n, m)
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
    i = np.arange(n - 1)
    D = dispersion(anatomy, drug, zf)
    q = bulk_flow(anatomy, zf)
    G = D[1:-1] * g.face_area[1:-1] / dz
    asm.exchange(i, i + 1, G, V[:-1], V[1:])
    qi = q[1:-1]
    asm.flux(i, i + 1, i, 0.5 * qi / V[:-1])
    asm.flux(i, i + 1, i + 1, 0.5 * qi / V[1:])
    # face z=0: cisterna <-> cell 0 (half-cell distance), bulk flow in
    g0 = D[0] * g.face_area[0] / (0.5 * dz)
    asm.exchange(C["cisterna"], 0, g0, cis, V[0])
    asm.flux(C["cisterna"], 0, C["cisterna"], 0.5 * q[0] / cis)
    asm.flux(C["cisterna"], 0, 0, 0.5 * q[0] / V[0])
    # spinal absorption of the bulk flow into venous blood
    absorb = anatomy.spinal_bulk_flow * dz / L
    asm.flux(np.arange(n), C["plasma"], np.arange(n), absorb / V)

    # meninges: spinal CSF <-> plasma (unbound)
    centers = g.centers
    sac_area = anatomy.csf_area(centers) + anatomy.cord_area(centers)
    cl_men = drug.meningeal_p() * _perimeter(sac_area) * dz
    asm.exchange(np.arange(n), C["plasma"], cl_men, V, plasma_u)

    # cord: CSF <-> tissue, tissue <-> plasma across the BSCB
    j = np.arange(m)
    cord_perim = _perimeter(g.cord_volume / dz)
    cl_cord = drug.tissue_conductance(cc["cord_depth"]) * cord_perim * dz
    asm.exchange(j, n + j, cl_cord, V[:m], w_cord)
    cl_bscb = drug.bbb_efflux * rho * g.cord_volume
    asm.flux(n + j, C["plasma"], n + j, cl_bscb / w_cord)
    asm.flux(C["plasma"], n + j, C["plasma"], cl_bscb * drug.kpuu_brain / plasma_u)

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

    volume = np.concatenate([
        V, w_cord,
        [cis, cort, vent, brain_vol, v1, drug.v2, drug.v3, 1.0, 1.0, 1.0],
    ])
    system = LinearSystem(
        n_spinal=n, n_cord=m, lower=asm.lower, diag=asm.diag, upper=asm.upper,
        cord_diag=asm.cord_diag, csf_to_cord=asm.csf_to_cord, cord_to_csf=asm.cord_to_csf,
        border_rows=asm.rows, border_cols=asm.cols, block=asm.block, volume=volume)
    rates = {
        "meningeal_clearance": float(cl_men.sum()),
        "cord_uptake_clearance": float(cl_cord.sum()),
        "cord_blood_clearance": float(cl_bscb.sum()),
        "bbb_efflux_clearance": float(cl_bbb),
        "meningeal_permeability": drug.meningeal_p(),
        "kp_cord": kp_cord,
        "kp_brain": kp_brain,
    }
    return Model(anatomy=anatomy, drug=drug, grid=g, system=system, rates=rates)


# ---------------------------------------------------------------- dose inputs
def _hat_weights(grid: Grid, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation weights of a point z onto cell centres (conservative)."""
    c = grid.centers
    if z <= c[0]:
        return np.array([0]), np.array([1.0])
    if z >= c[-1]:
        return np.array([grid.n - 1]), np.array([1.0])
    k = int(np.searchsorted(c, z) - 1)
    t = (z - c[k]) / (c[k + 1] - c[k])
    return np.array([k, k + 1]), np.array([1.0 - t, t])


def _mixing_interval(anatomy: Anatomy, z0: float, mix_volume: float) -> tuple[float, float]:
    """The stretch [z1, z2] of spinal SAS holding ``mix_volume`` mL of CSF nearest z0.

    Equal volumes above and below the tip where there is room; where the closed
    end of the sac (or the foramen magnum) cuts one side off, the stretch extends
    on the other side, so that the injectate always mixes into ``mix_volume`` of
    CSF (or into the whole spinal CSF, if that is less).
    """
    total = anatomy.spinal_csf_volume
    L = anatomy.length
    below = anatomy.csf_volume_between(0.0, z0)   # CSF volume rostral of the tip
    lo, hi = below - 0.5 * mix_volume, below + 0.5 * mix_volume
    if hi > total:
        lo, hi = lo - (hi - total), total
    if lo < 0.0:
        lo, hi = 0.0, min(hi - lo, total)
    # invert the cumulative CSF volume (piecewise quadratic in z) on a fine table
    zt = np.linspace(0.0, L, 2049)
    zn, an = anatomy._shape_nodes()
    a = np.interp(zt, zn, an) * anatomy._area_scale()
    vt = np.concatenate([[0.0], np.cumsum(0.5 * (a[1:] + a[:-1]) * np.diff(zt))])
    vt *= total / vt[-1]
    return float(np.interp(lo, vt, zt)), float(np.interp(hi, vt, zt))


def deposit(model: Model, z: float, amount: float, volume: float = 0.0,
            injection_rate: float = np.inf, puncture: bool = True) -> np.ndarray:
    r"""Initial distribution of an intrathecal bolus, as a jump in the state.

    Injection-driven spread: the injected volume ``V`` and its jet mix the dose
    within minutes into :math:`\kappa V` of CSF (``κ`` = ``injection_spread``),
    the CSF nearest the tip (:func:`_mixing_interval`: centred on the tip, pushed
    rostrally where the closed end of the sac leaves no room below), at a
    uniform concentration ``amount / (κ V)``; the injection jet smooths the
    edges over the injection time :math:`t_{inj} = V/\dot V` with a dispersion
    ``injection_mixing`` (a Gaussian of :math:`\sigma^2 = 2 D_{jet} t_{inj}`).
    The spread grows with the injected volume and hardly with the injection rate,
    as in CFD of the human CSF system (Khani 2022 Fluids Barriers CNS 19:8: a 3x
    larger bolus or a flush doubles brain exposure, a 5x faster one does not)
    and in phantoms (Linninger 2023 Front Physiol 14:1244016: large-volume
    infusions reach the cervical SAS within 10 min). Mass beyond the sac end is
    reflected; mass above z = 0 enters the cisterna. Small volumes (pump boluses)
    reduce to a point dose on the grid.

    Nothing is put into plasma: the whole dose starts in the CSF, whether it is
    given through a needle or an implanted catheter (``puncture`` is accepted
    for compatibility and has no effect). The injected volume itself leaves the
    CSF within minutes by pressure-driven outflow, but it carries at most the
    mixed concentration ``amount / (κ V)`` with it, i.e. less than
    ``1 / κ`` (a few %) of the dose even if all of it left at the injection
    site; see docs/validation.md ("No puncture loss").
    """
    g = model.grid
    an = model.anatomy
    y = np.zeros(model.system.n_state)
    mix = an.injection_spread * volume
    t_inj = volume / injection_rate if np.isfinite(injection_rate) else 0.0
    sigma = np.sqrt(2.0 * an.injection_mixing * t_inj)
    z1, z2 = _mixing_interval(an, z, mix) if mix > 0 else (z, z)
    L = an.length
    cis = model.system.index("cisterna")
    if z2 - z1 > 0.1 * g.dz and sigma < 0.1 * g.dz:
        # uniform concentration over [z1, z2], integrated exactly over the cells
        lo, hi = np.maximum(g.edges[:-1], z1), np.minimum(g.edges[1:], z2)
        vol = np.array([an.csf_volume_between(a, b) if b > a else 0.0
                        for a, b in zip(lo, hi)])
        y[: g.n] += amount * vol / vol.sum()
        return y
    if z2 - z1 > 0.1 * g.dz:
        # the same profile as point masses (weights ~ A(z), i.e. uniform concentration)
        # no further apart than sigma / 2, then smoothed by the jet's Gaussian
        k_pts = int(np.clip(np.ceil(2.0 * (z2 - z1) / sigma), 64, 20000))
        pts = z1 + (z2 - z1) * (np.arange(k_pts) + 0.5) / k_pts
        wt = an.csf_area(pts)
        wt = amount * wt / wt.sum()
    else:
        pts = np.array([z])
        wt = np.array([amount])
    p = np.where(pts > L, np.mod(pts, 2 * L), pts)
    p = np.where(p > L, 2 * L - p, p)                   # reflected at the closed sac end
    if sigma < 0.1 * g.dz:
        y[cis] += float(wt[p < 0].sum())                # pushed above the foramen magnum
        wt, p = wt[p >= 0], p[p >= 0]
        c = g.centers
        k = np.clip(np.searchsorted(c, p) - 1, 0, g.n - 2)
        t = np.clip((p - c[k]) / (c[k + 1] - c[k]), 0.0, 1.0)  # hat weights, clamped
        np.add.at(y, k, wt * (1.0 - t))
        np.add.at(y, k + 1, wt * t)
        return y
    from scipy.special import ndtr

    e = g.edges[None, :]
    pc = p[:, None]
    # Gaussian mass per cell plus its mirror image beyond the sac end; the mass above
    # z = 0 goes to the cisterna; each point's total is kept exactly (what a second
    # reflection would add is renormalized into the spinal cells)
    frac = np.diff(ndtr((e - pc) / sigma), axis=1) - np.diff(ndtr((2 * L - e - pc) / sigma),
                                                               axis=1)
    up = ndtr(-p / sigma)
    share = 1.0 - up                                    # each point's share in the spine
    tot = frac.sum(axis=1)
    good = tot > 0.0
    frac *= np.divide(share, tot, out=np.zeros_like(tot), where=good)[:, None]
    y[: g.n] += wt @ frac
    # a point far above the foramen magnum has all its mass in the cisterna: its
    # Gaussian tail in the spine underflows (tot == 0); whatever share is left of it
    # goes to the top cell rather than making 0/0
    np.add.at(y, np.where(p[~good] < 0.5 * L, 0, g.n - 1), (wt * share)[~good])
    y[cis] += float(wt @ up)
    return y


@dataclass(frozen=True)
class Schedule:
    """Piecewise-constant inputs and jumps over [0, t_end].

    ``jumps[k]`` is added to the state at ``times[k]``; ``rates[k]`` is the input
    on ``[times[k], times[k+1])`` (the last one up to ``t_end``). Amounts in ug,
    rates in ug/min, times in min.
    """

    times: np.ndarray
    jumps: np.ndarray
    rates: np.ndarray
    t_end: float

    def total_dosed(self) -> float:
        """Total amount dosed over [0, t_end] (ug): jumps plus infused amounts."""
        durations = np.diff(np.append(self.times, self.t_end))
        return float(self.jumps.sum() + self.rates.sum(axis=1) @ durations)

    def dosed(self, t: np.ndarray) -> np.ndarray:
        """Cumulative amount dosed at times ``t`` (right-continuous), ug."""
        t = np.asarray(t, float)
        ends = np.append(self.times[1:], self.t_end)
        jsum = self.jumps.sum(axis=1)
        rsum = self.rates.sum(axis=1)
        out = np.zeros_like(t)
        for k in range(len(self.times)):
            out += np.where(t >= self.times[k], jsum[k], 0.0)
            out += rsum[k] * np.clip(t - self.times[k], 0.0, ends[k] - self.times[k])
        return out


def build_schedule(model: Model, events: DoseEvents, t_end: float) -> Schedule:
    """Turn expanded dose events into the jump/rate arrays every backend consumes."""
    n_state = model.system.n_state
    times = {0.0}
    times.update(b.time for b in events.boluses)
    for st in events.steps:
        times.update((st.start, st.stop))
    t = np.array(sorted(x for x in times if 0.0 <= x < t_end))
    jumps = np.zeros((len(t), n_state))
    rates = np.zeros((len(t), n_state))
    plasma = model.system.index("plasma")
    for b in events.boluses:
        k = int(np.searchsorted(t, b.time))
        if b.target == "spinal":
            jumps[k] += deposit(model, b.site_z, b.amount, b.volume, b.injection_rate,
                                b.puncture)
        else:
            jumps[k, plasma if b.target == "plasma" else model.system.index(b.target)] += b.amount
    for st in events.steps:
        if st.target == "spinal":
            idx, w = _hat_weights(model.grid, st.site_z)
            vec_idx, vec_w = idx, st.rate * w
        else:
            vec_idx, vec_w = np.array([plasma]), np.array([st.rate])
        active = (t >= st.start) & (t < st.stop)
        rates[np.ix_(active, vec_idx)] += vec_w
    return Schedule(times=t, jumps=jumps, rates=rates, t_end=float(t_end))
