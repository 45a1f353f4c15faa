"""Scenario keys as differentiable parameters: which keys, their values and units.

A parameter is named by the key grammar of :func:`csfmodel.sweep.run_batch` and
``csfmodel sweep --param``: ``patient.<field>``, ``drug.<field>`` or
``dose[<i>].<field>``. Its *user unit* is the unit the scenario writes the value in
(``rate = "1 mg/day"`` -> mg/day), or the unit of its declared range when the
scenario does not set it; every derivative and estimate is reported per that unit.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from csfmodel.anatomy import PATIENT_PARAMETERS
from csfmodel.bounds import Bound
from csfmodel.dosing import ITBolus, ITInfusion, ITPatientBolus, IVBolus, IVInfusion, OralDose
from csfmodel.drugs import DRUG_PARAMETERS
from csfmodel.errors import ScenarioError
from csfmodel.scenario import LIMITS, Scenario
from csfmodel.units import convert

__all__ = ["Parameter", "resolve", "SUPPORTED_PATIENT", "with_values"]

#: patient fields that may be differentiated: those that do not move the grid (the
#: lengths, the CSF volume and the conus shape the cells themselves)
SUPPORTED_PATIENT: tuple[str, ...] = (
    "dispersion", "dispersion_exponent", "dispersion_caudal_fraction", "spinal_bulk_flow",
    "csf_production", "ventricular_mixing", "cranial_mixing", "injection_spread",
    "injection_mixing", "brain_mass", "body_weight", "cisternal_volume",
    "cortical_sas_volume", "ventricular_volume")
#: patient fields that deposit an intrathecal bolus (they enter the jumps)
DEPOSIT_FIELDS = ("injection_spread", "injection_mixing")

_KEY = re.compile(r"^\s*(patient|drug)\.(\w+)\s*$|^\s*dose\[(\d+)\]\.(\w+)\s*$")
_UNIT = re.compile(r"^\s*[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*(.*)$")
_GRAMMAR = "a key such as 'patient.dispersion', 'drug.meningeal_permeability' or 'dose[0].rate'"

# dose fields: (regimen types, internal unit, LIMITS entry by regimen type)
_DOSE_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "amount": ((ITBolus, ITPatientBolus, OralDose, IVBolus), "ug"),
    "rate": ((ITInfusion, IVInfusion), "ug/min"),
    "volume": ((ITBolus, ITPatientBolus), "mL"),
    "injection_rate": ((ITBolus, ITPatientBolus), "mL/min"),
}
_LIMIT_OF = {("amount", ITBolus): "it_amount", ("amount", ITPatientBolus): "it_amount",
             ("amount", OralDose): "oral_amount", ("amount", IVBolus): "iv_amount",
             ("rate", ITInfusion): "it_rate", ("rate", IVInfusion): "iv_rate",
             ("volume", ITBolus): "volume", ("volume", ITPatientBolus): "volume",
             ("injection_rate", ITBolus): "injection_rate",
             ("injection_rate", ITPatientBolus): "injection_rate"}


@dataclass(frozen=True)
class Parameter:
    """One differentiable scenario value.

    Attributes
    ----------
    key
        The scenario key (``"patient.dispersion"``, ``"dose[0].rate"``).
    section, name, index
        ``"patient"``, ``"drug"`` or ``"dose"``; the field; the dose index (or None).
    value
        Its value in internal units.
    internal_unit
        The internal unit (``"cm^2/min"``, ``"ug/min"``, ``"1"``).
    unit
        The user's unit (as the scenario writes it, else the range's unit).
    factor
        Internal units per user unit (``value / factor`` is the value in ``unit``).
    bound
        The declared range (internal units for patient and drug values, the
        ``LIMITS`` unit for doses), the range a fit may explore.
    """

    key: str
    section: str
    name: str
    index: int | None
    value: float
    internal_unit: str
    unit: str
    factor: float
    bound: Bound

    @property
    def user_value(self) -> float:
        """The value in the user's unit."""
        return self.value / self.factor

    def bounds_internal(self) -> tuple[float, float]:
        """The declared range in internal units."""
        f = convert(f"1 {self.bound.unit}", self.internal_unit, self.key) \
            if self.bound.unit not in ("1", self.internal_unit) else 1.0
        return self.bound.low * f, self.bound.high * f

    def text(self, value_internal: float) -> str | float:
        """A value (internal units) as the scenario would write it (user's unit)."""
        v = value_internal / self.factor
        return float(v) if self.unit == "1" else f"{v!r} {self.unit}"


def _user_unit(written: Any, default: str) -> str:
    if isinstance(written, str):
        m = _UNIT.match(written)
        if m and m.group(1).strip():
            return m.group(1).strip()
    return default


def _factor(unit: str, internal: str, key: str) -> float:
    if unit == internal or (unit == "1" and internal == "1"):
        return 1.0
    return convert(f"1 {unit}", internal, key)


def _regimen(scenario: Scenario, i: int, key: str):
    if i >= len(scenario.doses):
        raise ScenarioError(f"parameters[{key!r}]", key,
                            f"a dose index below {len(scenario.doses)} (the scenario's "
                            "[[dose]] tables)")
    return scenario.doses[i]


def resolve(scenario: Scenario, keys: list[str] | tuple[str, ...]) -> list[Parameter]:
    """The :class:`Parameter` of each key; unknown or unsupported keys are refused.

    Raises
    ------
    ScenarioError
        Naming the key and the keys that are allowed.
    """
    if isinstance(keys, str) or not keys:
        raise ScenarioError("parameters", keys, "a non-empty list of keys such as "
                            "['patient.dispersion', 'drug.meningeal_permeability']")
    out: list[Parameter] = []
    source = scenario.source or {}
    for key in keys:
        m = _KEY.match(key) if isinstance(key, str) else None
        if not m:
            raise ScenarioError(f"parameters[{key!r}]", key, _GRAMMAR)
        if key.strip() in (p.key for p in out):
            raise ScenarioError(f"parameters[{key!r}]", key, "each key once")
        if m.group(1) == "patient":
            name = m.group(2)
            if name not in SUPPORTED_PATIENT:
                detail = ("it moves the dose events (the stages of a bolus's spread)"
                          if name == "injection_mixing_time" else "it changes the grid"
                          if name in PATIENT_PARAMETERS else "unknown key")
                raise ScenarioError(f"parameters[{key!r}]", key, "one of the patient keys "
                                    + ", ".join(SUPPORTED_PATIENT), detail=detail)
            bound = PATIENT_PARAMETERS[name]
            written = source.get("patient", {}).get(name)
            unit = _user_unit(written, bound.unit)
            value = float(getattr(scenario.anatomy, name))
            out.append(Parameter(key.strip(), "patient", name, None, value, bound.unit, unit,
                                 _factor(unit, bound.unit, key), bound))
        elif m.group(1) == "drug":
            name = m.group(2)
            if name not in DRUG_PARAMETERS:
                raise ScenarioError(f"parameters[{key!r}]", key, "one of the drug keys "
                                    + ", ".join(DRUG_PARAMETERS), detail="unknown key")
            bound = DRUG_PARAMETERS[name]
            written = source.get("drug", {}).get(name)
            unit = _user_unit(written, bound.unit)
            drug = scenario.drug
            value = float(drug.meningeal_p() if name == "meningeal_permeability"
                          else getattr(drug, name))
            out.append(Parameter(key.strip(), "drug", name, None, value, bound.unit, unit,
                                 _factor(unit, bound.unit, key), bound))
        else:
            i, name = int(m.group(3)), m.group(4)
            reg = _regimen(scenario, i, key)
            spec = _DOSE_FIELDS.get(name)
            if spec is None or not isinstance(reg, spec[0]):
                ok = [f for f, (types, _) in _DOSE_FIELDS.items() if isinstance(reg, types)]
                raise ScenarioError(f"parameters[{key!r}]", key,
                                    f"for this {type(reg).__name__} dose one of: "
                                    + ", ".join(f"dose[{i}].{f}" for f in ok),
                                    detail="times and sites move events, not differentiable")
            internal = spec[1]
            if name == "rate" and isinstance(reg, ITInfusion):
                if len(reg.program) != 1 or "rate" not in source.get("dose", [{}] * (i + 1))[i]:
                    raise ScenarioError(f"parameters[{key!r}]", key, "an infusion with a "
                                        "single rate = '...' (not a program)")
                value = float(reg.program[0][1])
            else:
                value = float(getattr(reg, name))
            bound = LIMITS[_LIMIT_OF[(name, type(reg))]]
            doses = source.get("dose", [])
            written = doses[i].get(name) if i < len(doses) and isinstance(doses[i], dict) \
                else None
            unit = _user_unit(written, bound.unit)
            out.append(Parameter(key.strip(), "dose", name, i, value, internal, unit,
                                 _factor(unit, internal, key), bound))
    return out


def with_values(scenario: Scenario, params: list[Parameter], values_internal) -> dict:
    """The scenario's dict with each parameter set to a value (internal units), written
    in the user's unit (parse it with :func:`csfmodel.scenario.parse_scenario`)."""
    data = copy.deepcopy(scenario.source)
    for p, v in zip(params, values_internal):
        if p.section == "dose":
            data["dose"][p.index][p.name] = p.text(float(v))
        else:
            data.setdefault(p.section, {})[p.name] = p.text(float(v))
    return data
