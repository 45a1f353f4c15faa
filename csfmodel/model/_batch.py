"""Many models at once: the equations of :func:`build_model` evaluated over a batch axis.

A sweep over physiology or drug properties changes only the coefficients that depend
on them: the dispersion changes the tridiagonal block, a volume or a clearance a few
exchange terms. :func:`build_models` assembles every model of a batch sharing one grid
in one pass of the equations of ``_system.py`` (``_assemble`` with a leading batch
axis: the parameters that differ between the members become arrays of shape
``(B, 1)``), instead of one pass per model. Each member's arrays are those
:func:`build_model` gives it alone, bit for bit (tested): the same operations on the
same numbers, the entries added in the same order.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import numpy as np

from csfmodel.anatomy import Anatomy
from csfmodel.drugs import Drug

from ._grid import Grid
from ._matrix import LinearSystem
from ._system import Model, _assemble, _scalar

__all__ = ["build_models", "BATCHED_ANATOMY_FIELDS"]

#: Anatomy fields that enter the equations as plain numbers (no geometry, no branch):
#: models differing in these (and in the drug's numbers) are assembled together
BATCHED_ANATOMY_FIELDS = ("dispersion", "dispersion_caudal_fraction", "spinal_bulk_flow",
                          "csf_production", "ventricular_mixing", "cranial_mixing",
                          "injection_spread", "injection_mixing", "injection_mixing_time",
                          "brain_mass", "body_weight",
                          "cisternal_volume", "cortical_sas_volume", "ventricular_volume")
_DRUG_NUMBERS = tuple(f.name for f in fields(Drug) if f.name not in
                      ("name", "sources", "estimated", "meningeal_permeability"))
_ANATOMY_FIXED = tuple(f.name for f in fields(Anatomy) if f.name not in BATCHED_ANATOMY_FIELDS)


def _together(anatomy: Anatomy, drug: Drug) -> tuple:
    """What members assembled in one pass must share (all but the batched numbers)."""
    return (tuple(getattr(anatomy, f) for f in _ANATOMY_FIXED), drug.name,
            drug.meningeal_permeability is None)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, complex, np.number)) and not isinstance(v, bool)


def _stacked(objs: Sequence[Any], names: Sequence[str]) -> Any:
    """``objs[0]`` with each field of ``names`` that differs between ``objs`` an array
    ``(B, 1)`` of their values (the others as they are)."""
    out = copy.copy(objs[0])
    for f in names:
        vals = [getattr(o, f) for o in objs]
        if any(v != vals[0] for v in vals[1:]):
            if not all(_is_number(v) for v in vals):
                raise ValueError(f"{f} differs between models and is not a number")
            object.__setattr__(out, f, np.array(vals)[:, None])
    return out


def _numbers(v: Any) -> list:
    """The entries of an array as Python numbers (``float``, or ``complex`` on the
    complex-step path), as :func:`_scalar` makes them one by one."""
    a = np.asarray(v).reshape(-1)
    return [complex(x) for x in a] if np.iscomplexobj(a) else a.astype(float).tolist()


def build_models(anatomies: Sequence[Anatomy], drugs: Sequence[Drug], grid: Grid
                 ) -> list[Model]:
    """The models of ``(anatomies[i], drugs[i])`` on one grid, assembled together.

    ``grid`` must be the grid of every anatomy (:func:`make_grid`; the anatomies differ
    at most in :data:`BATCHED_ANATOMY_FIELDS` and other fields that do not shape the
    grid). Distinct pairs are assembled once, in one pass of the equations per group of
    pairs that differ only in numbers; each model equals ``build_model(anatomy, drug,
    grid=grid)`` exactly, its arrays views of the group's.
    """
    if len(anatomies) != len(drugs):
        raise ValueError("one drug per anatomy")
    distinct: dict[tuple[Anatomy, Drug], int] = {}
    which = [distinct.setdefault((a, d), len(distinct)) for a, d in zip(anatomies, drugs)]
    pairs = list(distinct)
    groups: dict[tuple, list[int]] = {}
    for k, (a, d) in enumerate(pairs):
        groups.setdefault(_together(a, d), []).append(k)
    built: list[Model | None] = [None] * len(pairs)
    for members in groups.values():
        an = [pairs[k][0] for k in members]
        dr = [pairs[k][1] for k in members]
        b = len(members)
        system, rates = _assemble(_stacked(an, BATCHED_ANATOMY_FIELDS),
                                  _stacked(dr, _DRUG_NUMBERS + ("meningeal_permeability",)),
                                  grid, batch=b)
        arrays = {f.name: getattr(system, f.name) for f in fields(LinearSystem)
                  if isinstance(getattr(system, f.name), np.ndarray)}
        # each rate as one value per member (Python numbers, as ``_scalar`` makes them)
        per = {name: _numbers(v) if np.ndim(v) else _scalar(v) if isinstance(v, np.ndarray)
               else v for name, v in rates.items()}
        varying = [name for name, v in per.items() if isinstance(v, list)]
        for i, k in enumerate(members):
            sys_i = LinearSystem(n_spinal=system.n_spinal, n_cord=system.n_cord,
                                 **{f: x[i] for f, x in arrays.items()})
            r_i = dict(per)
            for name in varying:
                r_i[name] = per[name][i]
            built[k] = Model(anatomy=an[i], drug=dr[i], grid=grid, system=sys_i, rates=r_i)
    return [built[k] for k in which]   # type: ignore[misc]
