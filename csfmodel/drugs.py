"""Drug property sets: morphine first, other intrathecal drugs as presets.

A drug is *data*: its physicochemical properties (molecular weight,
octanol:buffer partition at pH 7.4, aqueous diffusivity, plasma binding) and
its systemic pharmacokinetics. The transfer rates that differ between drugs in
the CNS are derived from those properties by the relations below, so a new
drug is a new :class:`Drug`, not new code. Every value may be overridden in a
scenario's ``[drug]`` table.

Property → rate relations (internal units: cm, min, mL)
-------------------------------------------------------
Meningeal permeability (spinal CSF → epidural space/veins), a lipid route in
series with an aqueous limit, plus a paracellular route for hydrophilic
molecules::

    P_men = P_pore * (D_aq / D_aq,morphine) + 1 / (1 / (a_men * K_ob) + 1 / P_max)

with ``K_ob`` the octanol:buffer partition coefficient. Bernards & Hill 1990
(Anesthesiology 73:1214) and 1992 (Anesthesiology 77:750) measured spinal
meningeal permeabilities of order 1e-3 cm/min and found that they rise only
modestly with lipophilicity (the arachnoid is rate-limiting); ``a_men``,
``P_max`` and ``P_pore`` are calibrated (see ``csfmodel validate``).

Tissue:CSF partition of the spinal cord and brain (unbound-to-total, mL/g),
after the tissue-composition method of Poulin & Theil 2002 (J Pharm Sci
91:129)::

    Kp = f_water + f_lipid * K_ob

CSF → cord (and CSF → brain) exchange is diffusion-limited in the tissue's
extracellular space, so the conductance per unit area is
``D_aq / (tortuosity^2 * depth)`` in unbound-concentration terms (tortuosity
1.6, Nicholson & Sykova 1998 Trends Neurosci 21:207).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from csfmodel.bounds import Bound, replace_checked
from csfmodel.errors import ScenarioError

__all__ = ["Drug", "DRUGS", "get_drug", "DRUG_UNITS", "DRUG_PARAMETERS", "CNS_CONSTANTS"]


#: Constants of the property → rate relations (internal units). Calibrated
#: entries say so; see ``docs/validation.md``.
CNS_CONSTANTS: dict[str, float] = {
    # lipid-route meningeal permeability per unit K_ob, cm/min. Calibrated
    # (``csfmodel validate --refit``, all rows at once): gives morphine P_men =
    # 1.47e-3 [1.06e-3, 2.05e-3] cm/min, pinned by the CSF:plasma ratio and bolus
    # half-life of Moulin 1986 and the lumbar half-lives of Nordberg 1984; within
    # the 0.3e-3 to 3e-3 cm/min of Bernards & Hill 1990 (Anesthesiology 73:1214)
    # and 1992 (77:750)
    "a_men": 2.17e-3,
    # aqueous limit of meningeal permeability, cm/min (Bernards & Hill 1992:
    # maximum near K_ob ~ 100-200 of ~2-3e-3 cm/min)
    "p_max": 2.5e-3,
    # paracellular (pore) meningeal permeability of a morphine-sized solute, cm/min
    # (estimate; scales with aqueous diffusivity)
    "p_pore": 1.0e-4,
    # ECS tortuosity squared (Nicholson & Sykova 1998: lambda ~1.6)
    "tortuosity2": 2.56,
    # depth of cord tissue the dorsal-horn target averages over, cm (superficial
    # dorsal horn lies 0.5-2 mm below the pia; estimate)
    "cord_depth": 0.15,
    # effective diffusion distance for whole-brain exchange with the cranial CSF, cm
    # (estimate: a few mm of cortex and brainstem around the cisterns)
    "brain_depth": 1.0,
    # brain surface bathed by each cranial CSF space, cm^2 (estimates: brainstem and
    # cerebellum in the basal cisterns; ependyma). The cortical value lies between the
    # cortex's exposed surface (~720 cm^2: the total over a gyrification index of ~2.5,
    # Zilles 1988 Anat Embryol 179:173) and its whole folded surface, which the sulcal
    # CSF reaches too (1843 +- 196 cm^2 for both hemispheres, Donahue 2018 PNAS
    # 115:E5183; 973 cm^2 per hemisphere at mid-thickness, Van Essen 2012 Cereb Cortex
    # 22:2241). The route comparison scales with these areas (docs/route_comparison.md)
    "brain_area_cisternal": 150.0,
    "brain_area_cortical": 1500.0,
    "brain_area_ventricular": 200.0,
    # tissue water and lipid fractions for Kp (Poulin & Theil 2002, brain; spinal
    # cord has more myelin lipid: estimate)
    "cord_f_water": 0.72,
    "cord_f_lipid": 0.06,
    "brain_f_water": 0.77,
    "brain_f_lipid": 0.05,
    # tissue densities used to turn cord volume into mass, g/mL
    "tissue_density": 1.04,
    # aqueous diffusivity of morphine at 37 C, cm^2/min (6.5e-6 cm^2/s, Wilke-Chang
    # estimate for MW 285)
    "d_aq_morphine": 3.9e-4,
}


@dataclass(frozen=True)
class Drug:
    """Properties of one drug. Internal units: mL, min, ug, cm.

    Systemic kinetics are a three-compartment model (plasma V1, shallow V2,
    deep V3; clearance ``cl`` from V1; intercompartmental ``q2``, ``q3``).
    """

    name: str
    #: molecular weight, g/mol
    mw: float
    #: octanol:buffer partition coefficient at pH 7.4
    octanol_buffer: float
    #: aqueous diffusivity at 37 C, cm^2/min
    diffusivity: float
    #: unbound fraction in plasma
    fu_plasma: float
    #: systemic clearance from plasma, mL/min
    cl: float
    v1: float
    q2: float
    v2: float
    q3: float
    v3: float
    #: oral bioavailability (fraction); first-pass loss is eliminated
    f_oral: float
    #: absorption rate constants, 1/min: immediate and controlled release
    ka_ir: float
    ka_cr: float
    #: unbound brain:plasma ratio at steady state (BBB efflux < 1)
    kpuu_brain: float
    #: BBB efflux clearance per g of brain (and cord), mL/min/g
    bbb_efflux: float
    #: blood-CSF barrier (choroid plexus) efflux clearance, mL/min
    bcsfb_efflux: float
    #: free-text sources, one per property group
    sources: tuple[str, ...] = ()
    #: values marked as estimates rather than measurements
    estimated: tuple[str, ...] = ()
    #: optional direct overrides of derived rates (cm/min); None = from properties
    meningeal_permeability: float | None = None

    # -- derived quantities ------------------------------------------------
    def meningeal_p(self) -> float:
        """Meningeal permeability P_men, cm/min (see module docstring)."""
        if self.meningeal_permeability is not None:
            return self.meningeal_permeability
        c = CNS_CONSTANTS
        lipid = 1.0 / (1.0 / (c["a_men"] * self.octanol_buffer) + 1.0 / c["p_max"])
        return c["p_pore"] * self.diffusivity / c["d_aq_morphine"] + lipid

    def tissue_conductance(self, depth: float) -> float:
        """Diffusion-limited CSF→tissue conductance per unit area, cm/min."""
        return self.diffusivity / (CNS_CONSTANTS["tortuosity2"] * depth)

    def kp_cord(self) -> float:
        """Cord tissue:unbound partition, mL/g (Poulin & Theil 2002 form)."""
        c = CNS_CONSTANTS
        return c["cord_f_water"] + c["cord_f_lipid"] * self.octanol_buffer

    def kp_brain(self) -> float:
        """Brain tissue:unbound partition, mL/g (Poulin & Theil 2002 form)."""
        c = CNS_CONSTANTS
        return c["brain_f_water"] + c["brain_f_lipid"] * self.octanol_buffer

    def with_overrides(self, overrides: dict, key: str = "drug",
                       given: dict | None = None) -> Drug:
        """Copy with overrides (values already in internal units).

        ``given`` maps keys to the values as the user wrote them, for error messages.
        """
        return replace_checked(self, overrides, key, given,
                               frozenset({"name", "sources", "estimated"}))

    def validate(self, key: str = "drug", given: dict | None = None) -> None:
        """Check every property is in its allowed range."""
        given = given or {}
        for name, bound in DRUG_PARAMETERS.items():
            v = getattr(self, name)
            if v is not None:
                bound.check(f"{key}.{name}", v, given.get(name))


#: Every ``[drug]`` value: internal unit and allowed range, with its basis (the
#: presets span the small molecules and the peptide ziconotide).
DRUG_PARAMETERS: dict[str, Bound] = {
    "mw": Bound("1", 50.0, 10000.0, "g/mol: small molecules to peptides, ziconotide 2639"),
    "octanol_buffer": Bound("1", 1e-5, 1e5, "partition at pH 7.4: DTPA 1e-4 to "
                            "sufentanil 1737"),
    "diffusivity": Bound("cm^2/min", 1e-5, 1e-2, "aqueous diffusivity of solutes; "
                         "morphine 3.9e-4"),
    "fu_plasma": Bound("1", 0.0, 1.0, "a fraction", low_open=True),
    "cl": Bound("mL/min", 0.1, 10000.0, "up to about twice the cardiac output"),
    "v1": Bound("mL", 10.0, 2e6, "10 mL to 2000 L"),
    "q2": Bound("mL/min", 0.1, 20000.0, "up to a few times the cardiac output"),
    "v2": Bound("mL", 10.0, 2e6, "10 mL to 2000 L"),
    "q3": Bound("mL/min", 0.1, 20000.0, "up to a few times the cardiac output"),
    "v3": Bound("mL", 10.0, 2e6, "10 mL to 2000 L"),
    "f_oral": Bound("1", 0.0, 1.0, "a fraction", low_open=True),
    "ka_ir": Bound("1/min", 1e-5, 1.0, "absorption half-lives from 0.7 min to 48 days"),
    "ka_cr": Bound("1/min", 1e-5, 1.0, "absorption half-lives from 0.7 min to 48 days"),
    "kpuu_brain": Bound("1", 1e-3, 10.0, "unbound brain:plasma ratio; morphine 0.29"),
    "bbb_efflux": Bound("mL/min/g", 1e-5, 10.0, "per g of brain or cord"),
    "bcsfb_efflux": Bound("mL/min", 1e-4, 100.0, "choroid plexus clearance"),
    "meningeal_permeability": Bound("cm/min", 1e-6, 0.1, "Bernards & Hill 1990-1992: "
                                    "~1e-3 cm/min"),
}

#: Units users write overrides in (converted to internal units).
DRUG_UNITS: dict[str, str] = {k: b.unit for k, b in DRUG_PARAMETERS.items()}

_LH = 1000.0 / 60.0  # L/h -> mL/min

MORPHINE = Drug(
    name="morphine",
    mw=285.3,
    octanol_buffer=1.4,   # Bernards 1992 / neuraxial opioid reviews (pH 7.4)
    diffusivity=3.9e-4,   # 6.5e-6 cm^2/s, Wilke-Chang estimate
    fu_plasma=0.62,       # PBPK tables (35-38 % bound; Olsen 1975)
    # Pierre 2017 CPT Pharmacometrics Syst Pharmacol 6(5):331, 3-compartment model:
    # CL = 44.1 + 6.32 L/h (glucuronidation to M3G + M6G), V1 9.41 L,
    # V2 108 L, Q2 67.1 L/h, V3 50.7 L, Q3 83.4 L/h
    cl=(44.1 + 6.32) * _LH, v1=9410.0, q2=67.1 * _LH, v2=108000.0,
    q3=83.4 * _LH, v3=50700.0,
    f_oral=0.25,          # Westerling 1993 Ther Drug Monit 15:364 (0.2-0.35 range)
    ka_ir=6.0 / 60.0,     # Lotsch 1999; Franken 2016: IR ~6 /h
    # CR tablets: absorption ~1/4 as fast as from solution and Tmax ~3 h later
    # (MS Contin vs solution in cancer patients at steady state), absorption
    # half-life twice the solution's (Savarese 1986 Clin Pharmacokinet 11:505);
    # 0.19 [0.11, 0.33] /h calibrated on the MS Contin 30 mg Cmax and Tmax
    # (``csfmodel validate --refit``; Franken 2016 quotes ~0.8 /h, which peaks at
    # 20 min here)
    ka_cr=0.19 / 60.0,
    kpuu_brain=0.29,      # Tunblad 2003 Pharm Res 20:618 (pig); Bouw 2000 (rat)
    # BBB efflux per g chosen so brain ECF equilibrates with t1/2 ~3 h, matching
    # the effect-site t1/2ke0 2.8-4.4 h of Lotsch 2001 / Dahan 2004 (estimate)
    bbb_efflux=0.0065,
    bcsfb_efflux=0.2,     # estimate
    sources=("Pierre 2017 CPT:PSP 6:331 (systemic PK)",
             "Westerling 1993 Ther Drug Monit 15:364 (F)",
             "Franken 2016 (absorption)", "Tunblad 2003 Pharm Res 20:618 (Kp,uu)",
             "Bernards & Hill 1990 Anesthesiology 73:1214 (meninges)"),
    estimated=("diffusivity", "bbb_efflux", "bcsfb_efflux", "ka_cr"),
)


def _preset(**kw) -> Drug:
    base = {f.name: getattr(MORPHINE, f.name) for f in fields(MORPHINE)}
    base.update(kw)
    return Drug(**base)


DRUGS: dict[str, Drug] = {
    "morphine": MORPHINE,
    "hydromorphone": _preset(
        name="hydromorphone", mw=285.3, octanol_buffer=2.0, fu_plasma=0.8,
        # Hagen 1995 / Vallner 1981: CL ~1.66 L/min, Vss ~300 L
        cl=1660.0, v1=20000.0, q2=2000.0, v2=120000.0, q3=1000.0, v3=160000.0,
        f_oral=0.24, kpuu_brain=0.5,
        sources=("Vallner 1981 J Clin Pharmacol 21:152 (PK)",
                 "Bernards 1999 review (partition ~2)"),
        estimated=("v1", "q2", "v2", "q3", "v3", "kpuu_brain", "bbb_efflux", "bcsfb_efflux")),
    "fentanyl": _preset(
        name="fentanyl", mw=336.5, octanol_buffer=816.0, diffusivity=3.6e-4, fu_plasma=0.16,
        # Scott & Stanski 1987 J Pharmacol Exp Ther 240:159 (3-compartment)
        cl=574.0, v1=12700.0, q2=4820.0, v2=50200.0, q3=1510.0, v3=295000.0,
        f_oral=0.3, kpuu_brain=1.0, bbb_efflux=0.3, bcsfb_efflux=1.0,
        sources=("Scott & Stanski 1987 JPET 240:159 (PK)",
                 "Meert 1996 / Bernards 1992 (octanol:buffer 816)"),
        estimated=("diffusivity", "bbb_efflux", "bcsfb_efflux", "f_oral")),
    "sufentanil": _preset(
        name="sufentanil", mw=386.5, octanol_buffer=1737.0, diffusivity=3.3e-4,
        fu_plasma=0.075,
        # Gepts 1995 Anesthesiology 83:1194 (3-compartment)
        cl=917.0, v1=14300.0, q2=1550.0, v2=63400.0, q3=330.0, v3=251900.0,
        f_oral=0.1, kpuu_brain=1.0, bbb_efflux=0.3, bcsfb_efflux=1.0,
        sources=("Gepts 1995 Anesthesiology 83:1194 (PK)",
                 "Bernards 1992 (octanol:buffer 1737)"),
        estimated=("diffusivity", "bbb_efflux", "bcsfb_efflux", "f_oral")),
    "baclofen": _preset(
        name="baclofen", mw=213.7, octanol_buffer=0.11, diffusivity=4.6e-4, fu_plasma=0.7,
        # Wuis 1989 Eur J Clin Pharmacol 37:181: CL ~180 mL/min, V ~0.7 L/kg
        cl=180.0, v1=15000.0, q2=300.0, v2=34000.0, q3=10.0, v3=1000.0,
        f_oral=0.8, ka_ir=1.0 / 60.0, ka_cr=0.3 / 60.0, kpuu_brain=0.1,
        bbb_efflux=0.005, bcsfb_efflux=0.2,
        # Baclofen leaves the CSF far faster than its lipophilicity predicts (carrier-
        # mediated; CSF t1/2 1.51 h over the first 4 h, CSF clearance ~30 mL/h: Lioresal
        # Intrathecal label; Kroin 1993 Clin Neuropharmacol). Set directly, chosen so the
        # lumbar CSF half-life over 0.5-4 h after a lumbar bolus is ~1.8 h.
        meningeal_permeability=1.6e-3,
        sources=("Wuis 1989 Eur J Clin Pharmacol 37:181 (PK)",
                 "Bernards 2003 Anesthesiology 98:1233 (spinal distribution)",
                 "Lioresal Intrathecal label (CSF t1/2 1.51 h, CSF clearance 30 mL/h)"),
        estimated=("octanol_buffer", "diffusivity", "v1", "q2", "v2", "q3", "v3",
                   "kpuu_brain", "bbb_efflux", "bcsfb_efflux", "meningeal_permeability")),
    "ziconotide": _preset(
        name="ziconotide", mw=2639.0, octanol_buffer=0.001, diffusivity=1.5e-4, fu_plasma=0.5,
        # Prialt label (2004): plasma t1/2 ~1.3 h, V ~30 L, CL ~270 mL/min
        cl=270.0, v1=10000.0, q2=500.0, v2=20000.0, q3=10.0, v3=1000.0,
        f_oral=0.001, ka_ir=0.01, ka_cr=0.01, kpuu_brain=0.02, bbb_efflux=0.001,
        bcsfb_efflux=0.05,
        # The peptide's CSF clearance (0.38 mL/min, t1/2 4.6 h: Prialt label 2004) is
        # bulk/paracellular, not the lipid route; set directly so that the lumbar CSF
        # half-life 4-12 h after a lumbar bolus is ~3 h (within the label's spread).
        meningeal_permeability=1.2e-3,
        sources=("Prialt label 2004 (CSF t1/2 4.6 h, CSF clearance 0.38 mL/min; plasma PK)",),
        estimated=("octanol_buffer", "diffusivity", "v1", "q2", "v2", "q3", "v3",
                   "kpuu_brain", "bbb_efflux", "bcsfb_efflux", "f_oral",
                   "meningeal_permeability")),
    "clonidine": _preset(
        name="clonidine", mw=230.1, octanol_buffer=114.0, diffusivity=4.4e-4, fu_plasma=0.7,
        # Frisk-Holmberg 1978: CL ~200 mL/min, Vss ~2 L/kg
        cl=210.0, v1=20000.0, q2=1500.0, v2=120000.0, q3=10.0, v3=1000.0,
        f_oral=0.75, kpuu_brain=1.0, bbb_efflux=0.1, bcsfb_efflux=0.5,
        sources=("Frisk-Holmberg 1978 Eur J Clin Pharmacol 13:97 (PK)",
                 "Bernards 1992 (partition 114)"),
        estimated=("diffusivity", "v1", "q2", "v2", "q3", "v3", "kpuu_brain",
                   "bbb_efflux", "bcsfb_efflux")),
    "bupivacaine": _preset(
        name="bupivacaine", mw=288.4, octanol_buffer=346.0, diffusivity=3.9e-4,
        fu_plasma=0.05,
        # Tucker 1975: CL ~470 mL/min, Vss ~72 L
        cl=470.0, v1=10000.0, q2=1500.0, v2=30000.0, q3=200.0, v3=32000.0,
        f_oral=0.01, kpuu_brain=1.0, bbb_efflux=0.2, bcsfb_efflux=0.5,
        sources=("Tucker 1975 Br J Anaesth 47:213 (PK)", "Bernards 1992 (partition 346)"),
        estimated=("diffusivity", "v1", "q2", "v2", "q3", "v3", "kpuu_brain",
                   "bbb_efflux", "bcsfb_efflux", "f_oral")),
    "dtpa": _preset(
        name="dtpa", mw=393.4, octanol_buffer=1e-4, diffusivity=3.6e-4, fu_plasma=0.95,
        # hydrophilic CSF tracer (111In-DTPA, Kroin 1993 Neurosurgery 33:226). Plasma:
        # DTPA is a glomerular-filtration marker, CL = GFR ~120 mL/min, distributed in
        # the extracellular fluid, ~14 L (standard physiology; adult 70 kg)
        cl=120.0, v1=14000.0, q2=100.0, v2=1000.0, q3=10.0, v3=100.0,
        f_oral=0.001, ka_ir=0.01, ka_cr=0.01, kpuu_brain=0.01, bbb_efflux=0.0005,
        # meningeal permeability: estimate for a polar MW-393 chelate, ~1/5 of
        # morphine's paracellular route; the Kroin T2/T12 ratio hardly depends on
        # it (x5: 0.244 -> 0.231, see docs/validation.md)
        bcsfb_efflux=0.01, meningeal_permeability=2.0e-5,
        sources=("Kroin 1993 Neurosurgery 33:226 (tracer)",),
        estimated=("meningeal_permeability", "v1", "q2", "v2", "q3", "v3")),
}


def get_drug(name: str, key: str = "drug.name") -> Drug:
    """Look up a drug preset by name (case-insensitive)."""
    if not isinstance(name, str):
        raise ScenarioError(key, name, "one of: " + ", ".join(DRUGS))
    n = name.strip().lower()
    if n not in DRUGS:
        raise ScenarioError(key, name, "one of: " + ", ".join(DRUGS))
    return DRUGS[n]
