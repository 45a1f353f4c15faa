"""Spinal and cranial anatomy: vertebral levels, SAS cross-section, cord segments.

Longer than 400 lines because every anatomical number keeps its source beside it.

Axis ``z`` is the distance in cm along the spinal subarachnoid space (SAS) from
the foramen magnum (z = 0) to the end of the dural sac (mid-S2), caudal
positive. Two maps are needed and kept apart:

* **vertebral levels** C1…C7, T1…T12, L1…L5, S1, S2 (where a catheter tip sits),
  laid end to end from their regional lengths;
* **spinal cord segments** C1…C8, T1…T12, L1…L5, S1…S5 (where the pain's
  dermatomes are). The cord is shorter than the column and ends at the conus
  medullaris near L1, so lumbar cord segments lie behind the T10–T12 vertebrae
  and sacral segments behind T12–L1. Below the conus the SAS holds only the
  cauda equina.

All lengths in cm, areas in cm^2, volumes in mL. Every default carries its
source; all of them can be overridden in a scenario's ``[patient]`` table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from csfmodel.bounds import Bound, replace_checked
from csfmodel.errors import ScenarioError

__all__ = [
    "Anatomy",
    "VERTEBRAL_LEVELS",
    "CORD_SEGMENTS",
    "default_anatomy",
    "PATIENT_UNITS",
    "PATIENT_PARAMETERS",
]

#: Vertebral levels along the spinal SAS, rostral to caudal. The dural sac ends
#: at mid-S2, so the S2 interval is its upper half only.
VERTEBRAL_LEVELS: tuple[str, ...] = (
    tuple(f"C{i}" for i in range(1, 8))
    + tuple(f"T{i}" for i in range(1, 13))
    + tuple(f"L{i}" for i in range(1, 6))
    + ("S1", "S2")
)

#: Vertebral levels where an adult conus can end (Saifuddin 1998 Spine 23:1452, MRI, n=504).
_CONUS_LEVELS = ("T11", "T12", "L1", "L2", "L3")

#: Spinal cord segments, rostral to caudal.
CORD_SEGMENTS: tuple[str, ...] = (
    tuple(f"C{i}" for i in range(1, 9))
    + tuple(f"T{i}" for i in range(1, 13))
    + tuple(f"L{i}" for i in range(1, 6))
    + tuple(f"S{i}" for i in range(1, 6))
)

# SAS cross-section shape (CSF area, cord excluded) at vertebral landmarks,
# (level, fraction of the way through that level, relative area). Shape after
# phase-contrast MRI geometry of the spinal SAS: largest at the craniocervical
# junction, narrowest mid-thoracic, widest in the lumbar dural sac
# (Loth 2001 J Biomech Eng 123:71; Sincomb 2022 J Fluid Mech 939:A26;
# Hogan 1996 Anesthesiology 84:1341). The absolute scale is set by
# ``spinal_csf_volume``; the lumbosacral share that results (~50 mL of 95 mL)
# matches Hogan 1996 (49.9 +- 12.1 mL).
_AREA_SHAPE: tuple[tuple[str, float, float], ...] = (
    ("C1", 0.0, 2.0),
    ("C3", 0.0, 1.6),
    ("T1", 0.0, 1.3),
    ("T6", 0.0, 1.0),
    ("T10", 0.5, 1.1),
    ("L1", 0.0, 1.8),
    ("L2", 0.0, 2.6),
    ("L5", 0.0, 2.9),
    ("S1", 0.0, 2.3),
    ("S2", 1.0, 1.0),
)

# Cord cross-sectional area (cm^2) at cord segments (segment, fraction, area):
# Frostell 2016 Front Neurol 7:238 (C5 13.3 x 7.4 mm -> 0.77 cm^2;
# T8 8.3 x 6.3 mm -> 0.41 cm^2; lumbar enlargement ~9.6 x 8 mm -> 0.60 cm^2),
# tapering to the conus.
_CORD_AREA: tuple[tuple[str, float, float], ...] = (
    ("C1", 0.0, 0.62),
    ("C5", 0.5, 0.77),
    ("T1", 0.5, 0.50),
    ("T8", 0.5, 0.41),
    ("T12", 0.5, 0.45),
    ("L3", 0.5, 0.60),
    ("S1", 0.5, 0.40),
    ("S5", 1.0, 0.05),
)


@dataclass(frozen=True)
class Anatomy:
    """Patient anatomy. All attributes are in internal units (cm, mL, mL/min, g).

    Defaults describe an adult male. Override any of them in the scenario's
    ``[patient]`` table with units, e.g. ``spinal_csf_volume = "80 mL"``.
    """

    #: Cervical column length, C1 top to C7 bottom, cm (Gray's Anatomy:
    #: cervical 12.5, thoracic 28, lumbar 18 cm in the adult male).
    cervical_length: float = 12.5
    #: Thoracic column length, cm (Gray's Anatomy).
    thoracic_length: float = 28.0
    #: Lumbar column length, cm (Gray's Anatomy).
    lumbar_length: float = 18.0
    #: Length of the S1 level inside the dural sac, cm; with half of S2 this makes
    #: the SAS ~60 cm long (Sincomb 2022 J Fluid Mech: ~60 cm).
    sacral_s1_length: float = 1.5
    #: Upper half of S2 down to the end of the dural sac (mid-S2), cm.
    sacral_s2_length: float = 1.0
    #: Spinal CSF volume, mL (Chen 2017 AJNR, MRI of 32 adults: ~95 mL).
    spinal_csf_volume: float = 95.0
    #: Where the conus medullaris (end of the cord) lies: a vertebral level and a
    #: fraction through it. Mid-L1 (imaging series, n=141 and n=629: T12–L2).
    conus_level: str = "L1"
    conus_fraction: float = 0.5
    #: Well-mixed cranial CSF spaces, mL. MRI volumetry in 10 healthy adults
    #: (Condon 1986 Lancet 1:1355): lateral ventricles 25.3 +- 4.6 mL,
    #: extraventricular intracranial CSF 97.6 +- 6.6 mL (cranial CSF ~11 % of the
    #: intracranial volume, mostly extraventricular: Matsumae 1996 J Neurosurg
    #: 84:982). The extraventricular CSF is split into the cisterna magna and basal
    #: cisterns (10 mL, estimate) and the cortical SAS (the remaining 88 mL). The
    #: split hardly moves any calibration row (< 6 %) but sets how slowly a lumbar
    #: tracer reaches blood: plasma peak 10 h after lumbar gadobutrol-like tracer,
    #: as observed (Eide 2021 JCI Insight 6:e147063, ~10 h; docs/validation.md).
    cisternal_volume: float = 10.0
    cortical_sas_volume: float = 88.0
    ventricular_volume: float = 25.0
    #: CSF production by the choroid plexus, mL/min (0.3–0.35 mL/min,
    #: physiology texts; Sakka 2011).
    csf_production: float = 0.35
    #: Net CSF bulk flow from the cisterna into the spinal SAS, absorbed evenly
    #: along the spine into venous blood, mL/min. Net spinal flow is small
    #: (Enzmann & Pelc 1993 Radiology 186:321; Haughton & Mardal 2014); the rest
    #: of the production is absorbed from the cortical SAS.
    spinal_bulk_flow: float = 0.02
    # ---- CSF dynamics ---------------------------------------------------
    #: Pulsatile (oscillatory) dispersion at the foramen magnum, cm^2/min. Along
    #: the spine it follows the local CSF oscillation: D(z) = D_aq + dispersion *
    #: (f + (1 - f) * (s(z) / s(0))**n), with s(z) = SV(z) / A(z) the local stroke
    #: length, SV(z) falling linearly to zero at the closed end of the sac
    #: (``dispersion_exponent`` n, ``dispersion_caudal_fraction`` f; see
    #: :func:`csfmodel.model.dispersion`). Calibrated on all rows at once
    #: (``csfmodel validate --refit``): 8.3 [4.8, 14.2] cm^2/min, pinned mostly by
    #: the lumbar:cisternal ratio under infusion (Moulin 1986), the hyperbaric T10
    #: curve (Caute 1988) and the tracer gradient (Kroin 1993); ~2e4 x morphine's
    #: molecular diffusivity, up to 1.5x more in the narrow thoracic SAS and ~2 % of it
    #: in the lumbar sac. Fine-anatomy models give > 1e3 x molecular (Stockman 2007 J
    #: Biomech Eng 129:666; nerve roots enhance it, Tangen 2015 J Biomech 48:2144;
    #: micro-mixing around roots in phantoms, Linninger 2023 Front Physiol 14:1244016).
    dispersion: float = 8.3
    #: Exponent n of the stroke-length scaling of the dispersion: oscillatory shear
    #: dispersion grows as the square of the oscillation amplitude at a fixed
    #: frequency (Watson 1983 J Fluid Mech 133:233; the same scaling for the
    #: Lagrangian-mean transport of an oscillating flow, Lawrence 2019 J Fluid Mech
    #: 861:679). n = 0 makes D uniform.
    dispersion_exponent: float = 2.0
    #: Floor of the dispersion profile as a fraction f of ``dispersion``: mixing
    #: that does not scale with the cardiac stroke (respiration, a major driver of
    #: spinal CSF motion: Dreha-Kulaczewski 2015 J Neurosci 35:2485; posture
    #: changes, body motion) and so remains at the closed end of the sac, where the
    #: cardiac CSF motion vanishes (Haughton & Mardal 2014). Calibrated (``csfmodel validate
    #: --refit``): 0.014 [0.003, 0.07], pinned by how slowly a hyperbaric dose held in
    #: the sacral sac reaches T10 (Caute 1988); 1 makes D uniform along z.
    dispersion_caudal_fraction: float = 0.014
    #: Pulsatile exchange between ventricles and cisterna (aqueduct), mL/min
    #: (estimate; aqueductal stroke volume ~0.03 mL/beat, Baledent 2004).
    ventricular_mixing: float = 0.1
    #: Pulsatile exchange between basal cisterns and cortical SAS, mL/min (estimate).
    cranial_mixing: float = 0.5
    #: Injection-driven spread kappa: the injected volume V and its jet mix the dose
    #: over minutes (``injection_mixing_time``) into kappa * V of the CSF nearest the tip (uniform
    #: concentration; see :func:`csfmodel.model.deposit`), so the spread grows with
    #: the injected volume, not with the injection rate (Khani 2022 Fluids Barriers
    #: CNS 19:8). Calibrated (``csfmodel validate --refit``): 34.6 [20.8, 57.7], pinned by
    #: the lumbar CSF 5 min to 1 h after ~1 mL injections (Sjostrom 1987, Nordberg
    #: 1984; Sjostrom's initial volume of distribution 22 +- 8 mL) and, with 2 mL,
    #: the CSF at T10 within minutes of a sacral injection (Caute 1988).
    injection_spread: float = 34.6
    #: Jet mixing dispersion during an injection, cm^2/min (estimate).
    injection_mixing: float = 2.0
    #: Time constant of the injection-driven spread, min: the CSF volume a needle or
    #: port injection has mixed into grows from V to kappa * V as 1 - exp(-t/tau)
    #: (:func:`csfmodel.model.bolus_inputs`). tau is that of the pressure pulse an
    #: injection makes, the outflow resistance times the craniospinal compliance,
    #: R_out C: R_out 6-10 mmHg min/mL in healthy adults (Albeck 1991 J Neurosurg
    #: 74:597), C ~1 mL/mmHg at an ICP of 10 mmHg (pressure-volume index ~25 mL,
    #: Marmarou 1975 J Neurosurg 43:523): 6-10 min. Not fitted. 0 spreads at once.
    injection_mixing_time: float = 8.0
    # ---- sizes ------------------------------------------------------------
    #: Brain mass, g (adult: Dekaban 1978 Ann Neurol 4:345, ~1400 g).
    brain_mass: float = 1400.0
    #: Body weight, kg (used for per-kg quantities only).
    body_weight: float = 70.0
    #: Vertebral-level overrides of the area shape (rarely needed).
    area_shape: tuple[tuple[str, float, float], ...] = field(default=_AREA_SHAPE, repr=False)
    cord_area_profile: tuple[tuple[str, float, float], ...] = field(
        default=_CORD_AREA, repr=False)

    # ---------------------------------------------------------------- levels
    def level_lengths(self) -> np.ndarray:
        """Length of each vertebral level (cm), in :data:`VERTEBRAL_LEVELS` order."""
        return np.array(
            [self.cervical_length / 7] * 7
            + [self.thoracic_length / 12] * 12
            + [self.lumbar_length / 5] * 5
            + [self.sacral_s1_length, self.sacral_s2_length]
        )

    @property
    def level_key(self) -> tuple[float, ...]:
        """The fields :meth:`level_lengths` (hence every level's z) depends on."""
        return (self.cervical_length, self.thoracic_length, self.lumbar_length,
                self.sacral_s1_length, self.sacral_s2_length)

    def level_edges(self) -> np.ndarray:
        """z of the top of each vertebral level and of the end of the sac (cm)."""
        return self._level_edges

    # Derived geometry is computed once per (immutable) instance: these are the hot
    # paths of model assembly and dose placement.
    @cached_property
    def _level_edges(self) -> np.ndarray:
        e = np.concatenate([[0.0], np.cumsum(self.level_lengths())])
        e.setflags(write=False)
        return e

    @property
    def length(self) -> float:
        """Length of the spinal SAS, foramen magnum to the end of the dural sac (cm)."""
        return float(self.level_edges()[-1])

    def level_z(self, level: str, fraction: float = 0.5, key: str = "site") -> float:
        """z (cm) of a point ``fraction`` of the way through vertebral ``level``."""
        name = level.strip().upper() if isinstance(level, str) else ""
        if name not in VERTEBRAL_LEVELS:
            raise ScenarioError(key, level, "a vertebral level C1…C7, T1…T12, L1…L5, S1, S2")
        i = VERTEBRAL_LEVELS.index(name)
        edges = self.level_edges()
        return float(edges[i] + fraction * (edges[i + 1] - edges[i]))

    def level_at(self, z: np.ndarray | float) -> np.ndarray:
        """Vertebral level name at each z (cm)."""
        edges = self.level_edges()
        idx = np.clip(np.searchsorted(edges, np.asarray(z, float), side="right") - 1,
                      0, len(VERTEBRAL_LEVELS) - 1)
        return np.asarray(VERTEBRAL_LEVELS, dtype=object)[idx]

    # ------------------------------------------------------------- geometry
    def _shape_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        return self._shape_nodes_cached

    @cached_property
    def _shape_nodes_cached(self) -> tuple[np.ndarray, np.ndarray]:
        z = np.array([self.level_z(lv, f) for lv, f, _ in self.area_shape])
        a = np.array([a for _, _, a in self.area_shape])
        z.setflags(write=False)
        a.setflags(write=False)
        return z, a

    def _area_scale(self) -> float:
        return self._area_scale_cached

    @cached_property
    def _area_scale_cached(self) -> float:
        z, a = self._shape_nodes()
        return self.spinal_csf_volume / float(np.trapezoid(a, z))

    def csf_area(self, z: np.ndarray | float) -> np.ndarray:
        """CSF cross-sectional area A(z) of the spinal SAS (cm^2), cord excluded."""
        zn, an = self._shape_nodes()
        return np.interp(z, zn, an) * self._area_scale()

    def csf_volume_between(self, z0: float, z1: float) -> float:
        """CSF volume (mL) between z0 and z1, exact for the piecewise-linear A(z)."""
        zn, an = self._shape_nodes()
        pts = np.unique(np.concatenate([[z0, z1], zn[(zn > z0) & (zn < z1)]]))
        return float(np.trapezoid(np.interp(pts, zn, an), pts) * self._area_scale())

    @property
    def conus_z(self) -> float:
        """z of the conus medullaris (end of the cord), cm."""
        lv = self.conus_level.strip().upper() if isinstance(self.conus_level, str) else ""
        if lv not in _CONUS_LEVELS:
            raise ScenarioError("patient.conus_level", self.conus_level,
                                "one of the levels " + ", ".join(_CONUS_LEVELS)
                                + " (adult range, Saifuddin 1998)")
        return self.level_z(lv, self.conus_fraction, key="patient.conus_level")

    def segment_edges(self) -> np.ndarray:
        """z (cm) of the top of each cord segment and of the conus.

        Segment-to-vertebra correspondence (Standring, Gray's Anatomy 41st ed.
        2016; segment lengths after Kameyama 1996 Spine 21:1285): cervical
        segments from the foramen magnum to three quarters of C7; thoracic
        segments to mid-T10; lumbar segments behind T10–T12 (to mid-T12);
        sacral segments from mid-T12 to the conus. Segments within a region
        have equal lengths. When the conus is moved, the boundaries below the
        cervical region scale with it.
        """
        return self._segment_edges

    @cached_property
    def _segment_edges(self) -> np.ndarray:
        # the same for every anatomy of the same levels and conus (a sweep of the
        # physiology builds thousands): computed once per such geometry
        key = (self.cervical_length, self.thoracic_length, self.lumbar_length,
               self.sacral_s1_length, self.sacral_s2_length, self.conus_level,
               self.conus_fraction)
        edges = _SEGMENT_EDGES.get(key)
        if edges is None:
            edges = self._compute_segment_edges()
            if len(_SEGMENT_EDGES) >= 256:
                _SEGMENT_EDGES.clear()          # one call, safe beside other threads
            _SEGMENT_EDGES[key] = edges
        return edges

    def _compute_segment_edges(self) -> np.ndarray:
        z_ct = self.level_z("C7", 0.75)
        z_tl = self.level_z("T10", 0.5)
        z_ls = self.level_z("T12", 0.5)
        conus = self.conus_z
        default = Anatomy()
        d_conus = default.level_z("L1", 0.5)
        if abs(conus - d_conus) > 1e-12 or self.level_lengths().tolist() != \
                default.level_lengths().tolist():
            # keep proportions of the default layout between C7 and the conus
            s = (conus - z_ct) / (d_conus - default.level_z("C7", 0.75))
            z_tl = z_ct + s * (default.level_z("T10", 0.5) - default.level_z("C7", 0.75))
            z_ls = z_ct + s * (default.level_z("T12", 0.5) - default.level_z("C7", 0.75))
        if not (self.level_z("T11", 0.0) <= conus <= self.level_z("L3", 1.0)
                and 0 < z_ct < z_tl < z_ls < conus):
            # adult conus positions range T11-L3 (Saifuddin 1998 Spine 23:1452, MRI, n=504)
            raise ScenarioError("patient.conus_level", self.conus_level,
                                "a conus between T11 and L3 (adult range)")
        e = np.concatenate([
            np.linspace(0.0, z_ct, 9)[:-1],
            np.linspace(z_ct, z_tl, 13)[:-1],
            np.linspace(z_tl, z_ls, 6)[:-1],
            np.linspace(z_ls, conus, 6),
        ])
        e.setflags(write=False)
        return e

    @cached_property
    def _cord_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        edges = self.segment_edges()
        zn = np.array([edges[CORD_SEGMENTS.index(s)] + f * (edges[CORD_SEGMENTS.index(s) + 1]
                       - edges[CORD_SEGMENTS.index(s)]) for s, f, _ in self.cord_area_profile])
        an = np.array([a for _, _, a in self.cord_area_profile])
        return zn, an

    def cord_area(self, z: np.ndarray | float) -> np.ndarray:
        """Cord cross-sectional area (cm^2) at z; zero below the conus."""
        zn, an = self._cord_nodes
        z = np.asarray(z, float)
        return np.where(z <= self.conus_z, np.interp(z, zn, an), 0.0)

    def segment_of(self, name: str, key: str = "target") -> int:
        """Index of a cord segment by name (C1…S5)."""
        n = name.strip().upper()
        if n not in CORD_SEGMENTS:
            raise ScenarioError(key, name, "a cord segment C1…C8, T1…T12, L1…L5, S1…S5")
        return CORD_SEGMENTS.index(n)

    @property
    def total_csf_volume(self) -> float:
        """Spinal + cranial SAS + ventricles, mL."""
        return (self.spinal_csf_volume + self.cisternal_volume + self.cortical_sas_volume
                + self.ventricular_volume)

    # ------------------------------------------------------------ overrides
    def with_overrides(self, overrides: dict, key: str = "patient",
                       given: dict | None = None) -> Anatomy:
        """Return a copy with user overrides (already converted to internal units).

        ``given`` maps keys to the values as the user wrote them, for error messages.
        """
        return replace_checked(self, overrides, key, given,
                               frozenset({"area_shape", "cord_area_profile"}))

    def validate(self, key: str = "patient", given: dict | None = None) -> None:
        """Check every value is physically possible."""
        given = given or {}
        for name, bound in PATIENT_PARAMETERS.items():
            if bound.unit != "str":
                bound.check(f"{key}.{name}", getattr(self, name), given.get(name))
        if self.spinal_bulk_flow >= self.csf_production:
            raise ScenarioError(f"{key}.spinal_bulk_flow",
                                given.get("spinal_bulk_flow", self.spinal_bulk_flow),
                                f"0 <= flow < csf_production ({self.csf_production} mL/min)")
        self.segment_edges()


#: cord segment edges by (level lengths, conus level and fraction), read-only arrays
_SEGMENT_EDGES: dict[tuple, np.ndarray] = {}


def default_anatomy() -> Anatomy:
    """The default adult anatomy."""
    return Anatomy()


_ADULT = "adult range after Gray's Anatomy, widened for sweeps"
#: Every ``[patient]`` value: internal unit and allowed range, with its basis.
PATIENT_PARAMETERS: dict[str, Bound] = {
    "cervical_length": Bound("cm", 8.0, 20.0, _ADULT),
    "thoracic_length": Bound("cm", 18.0, 40.0, _ADULT),
    "lumbar_length": Bound("cm", 12.0, 26.0, _ADULT),
    "sacral_s1_length": Bound("cm", 0.5, 4.0, "S1 inside the dural sac"),
    "sacral_s2_length": Bound("cm", 0.2, 4.0, "S2 down to the end of the dural sac"),
    "spinal_csf_volume": Bound("mL", 40.0, 200.0, "Chen 2017: ~95 mL; Hogan 1996: "
                               "lumbosacral 28-81 mL"),
    "conus_level": Bound("str", basis="a vertebral level T11-L3, Saifuddin 1998"),
    "conus_fraction": Bound("1", 0.0, 1.0, "fraction through the conus level"),
    "cisternal_volume": Bound("mL", 1.0, 50.0, "cisterna magna and basal cisterns"),
    "cortical_sas_volume": Bound("mL", 20.0, 400.0, "cranial SAS; 97.6 +- 6.6 mL "
                                 "extraventricular in young adults (Condon 1986), up to "
                                 "~400 mL with atrophy in the elderly (Yamada 2023)"),
    "ventricular_volume": Bound("mL", 5.0, 200.0, "adult ventricles 10-40 mL, more in "
                                "ventriculomegaly"),
    "csf_production": Bound("mL/min", 0.1, 1.0, "0.3-0.4 mL/min, Sakka 2011"),
    "spinal_bulk_flow": Bound("mL/min", 0.0, 0.2, "net spinal flow is small, "
                              "Enzmann & Pelc 1993; less than csf_production"),
    "dispersion": Bound("cm^2/min", 0.01, 100.0, "25x to 250000x morphine's molecular "
                        "diffusivity; Stockman 2007, Sharp 2019; calibrated 8.3 [4.8, 14.2]"),
    "dispersion_exponent": Bound("1", 0.0, 4.0, "D ~ stroke length^n; n = 2 for "
                                 "oscillatory shear dispersion, Watson 1983"),
    "dispersion_caudal_fraction": Bound("1", 0.0, 1.0, "floor as a fraction of the "
                                        "foramen-magnum value (respiration, motion); "
                                        "calibrated 0.014 [0.003, 0.07]"),
    "ventricular_mixing": Bound("mL/min", 1e-3, 10.0, "aqueductal exchange; "
                                "Baledent 2004: ~0.03 mL/beat"),
    "cranial_mixing": Bound("mL/min", 1e-3, 50.0, "cisternal-cortical exchange, estimate"),
    "injection_spread": Bound("1", 1.0, 100.0, "an injectate mixes into at least its own "
                              "volume; calibrated 34.6 [20.8, 57.7]"),
    "injection_mixing": Bound("cm^2/min", 0.01, 100.0, "jet mixing, estimate"),
    "injection_mixing_time": Bound("min", 0.0, 60.0, "R_out C: 6-10 min (Albeck 1991, "
                                   "Marmarou 1975); 0 spreads at once"),
    "brain_mass": Bound("g", 800.0, 2000.0, "adult brain, Dekaban 1978"),
    "body_weight": Bound("kg", 30.0, 250.0, "adult body weight"),
}

#: Units users write ``[patient]`` overrides in (``str`` for names).
PATIENT_UNITS: dict[str, str] = {k: b.unit for k, b in PATIENT_PARAMETERS.items()}
