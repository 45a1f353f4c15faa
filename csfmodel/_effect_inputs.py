"""What a run records for the effect model (a layer below :mod:`csfmodel.effects`).

The results of a run carry the drug and PK quantities the effect layer needs
(:class:`EffectInputs`), so that :func:`csfmodel.effects.effects` works from a
results Dataset without assembling the model again. They are computed here, beside
the results, and read back by :mod:`csfmodel.effects`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

    from csfmodel.model import Model

__all__ = ["EffectInputs", "EFFECT_INPUT_ATTRS", "brain_equilibration_half_life"]


def brain_equilibration_half_life(model: Model) -> float:
    """Half-life (h) of drug leaving brain ECF in the PK model: ``ln2 / -J[b, b]``."""
    s = model.system
    b = s.index("brain") - s.n_spatial
    k_out = -float(s.block[b, b])
    return float(np.log(2.0) / k_out / 60.0)


def _attrs(units: str, long_name: str, description: str) -> dict:
    return {"units": units, "long_name": long_name, "description": description}


#: the run's inputs to the effect model as recorded with its results (``attrs`` of a
#: single run, coordinates along ``scenario`` of a sweep): name -> attrs
EFFECT_INPUT_ATTRS: dict[str, dict] = {
    "drug_mw_g_per_mol": _attrs("g/mol", "molar mass", "molar mass of the drug"),
    "drug_kpuu_brain": _attrs("1", "brain Kp,uu", "brain ECF unbound : plasma unbound "
                              "concentration ratio at steady state"),
    "drug_fu_plasma": _attrs("1", "plasma unbound fraction",
                             "unbound fraction of the drug in plasma"),
    "drug_kp_cord_mL_per_g": _attrs("mL/g", "cord partition Kp", "cord tissue (total) : "
                                    "unbound partition of the drug"),
    "brain_equilibration_half_life_h": _attrs(
        "h", "brain ECF half-life (PK)", "half-life of drug leaving brain ECF in the PK "
        "model (ln 2 / -J[brain, brain])"),
}


@dataclass(frozen=True)
class EffectInputs:
    """What the effect model needs from a run: the drug and the PK model's BBB delay.

    Recorded with the results (:func:`csfmodel.results.run_record`), so that
    :func:`effects` works from a results Dataset without building the model again.
    """

    drug: str
    mw: float                  # g/mol
    kpuu_brain: float
    fu_plasma: float
    kp_cord: float             # mL/g
    t_half_brain_model: float  # h

    _RECORD = {"mw": "drug_mw_g_per_mol", "kpuu_brain": "drug_kpuu_brain",
               "fu_plasma": "drug_fu_plasma", "kp_cord": "drug_kp_cord_mL_per_g",
               "t_half_brain_model": "brain_equilibration_half_life_h"}

    @classmethod
    def of(cls, model: Model) -> EffectInputs:
        """The inputs of an assembled model."""
        d = model.drug
        return cls(drug=d.name, mw=float(d.mw), kpuu_brain=float(d.kpuu_brain),
                   fu_plasma=float(d.fu_plasma), kp_cord=float(d.kp_cord()),
                   t_half_brain_model=brain_equilibration_half_life(model))

    def as_record(self) -> dict[str, float]:
        """The inputs under their recorded names (see :data:`EFFECT_INPUT_ATTRS`)."""
        return {name: getattr(self, f) for f, name in self._RECORD.items()}

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> EffectInputs | None:
        """The inputs recorded in a results Dataset (a run, or one scenario of a sweep);
        None when it has none (a file written before they were recorded)."""
        def get(name: str):
            if name in ds.coords and ds.coords[name].ndim == 0:
                return ds.coords[name].item()
            return ds.attrs.get(name)

        values = {f: get(name) for f, name in cls._RECORD.items()}
        drug = get("drug")
        if drug is None or any(v is None for v in values.values()):
            return None
        return cls(drug=str(drug), **{f: float(v) for f, v in values.items()})
