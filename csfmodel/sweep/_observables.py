"""Rows the batch kernel records, and cord blocks padded so that bodies share a shape.

- Rows: the CSF at the catheter tip (:data:`TIP`) and at chosen sites of each
  scenario's own anatomy (:data:`SITES`), linear between cell centres, appended to the
  CSR rows of the recorded variables (:func:`_observables`: one pattern per group of
  the same shape, weights per member).
- Padding: patients whose conus ends at different levels have cord blocks of different
  lengths; :func:`padded_system`, :func:`padded_schedule` and
  :func:`_padded_observation` extend each to the group's longest with inert cells, so
  that a chunk is one kernel call whatever the anatomy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from csfmodel import results
from csfmodel.model import LinearSystem, Model, Schedule
from csfmodel.scenario import Scenario

__all__ = ["TIP", "SITES", "padded_system", "padded_schedule"]

#: the CSF concentration at the catheter tip (the site of the first intrathecal dose
#: table), linearly interpolated between cell centres: an extra observable of sweeps
TIP = "csf_tip_concentration"


#: the CSF concentration at given positions of each scenario's own anatomy (``sites=`` of
#: :func:`assemble_chunk` and :func:`iter_batches`), linearly interpolated between cell
#: centres: ``(scenario, time, site)``, ng/mL
SITES = "csf_site_concentration"
_SITES_ATTRS = {"units": "ng/mL", "long_name": "CSF at chosen sites",
                "description": "spinal CSF concentration at positions chosen per scenario "
                               "(its own anatomy), linear between cell centres"}


def _site_rows(model: Model, zs: np.ndarray) -> np.ndarray:
    """Weights (ng/mL per ug) over the spinal cells giving the CSF at each z of ``zs``."""
    from csfmodel.model import _hat_weights

    n = model.system.n_spinal
    w = np.zeros((len(zs), n))
    for j, z in enumerate(np.asarray(zs, float)):
        k, h = _hat_weights(model.grid, float(z))
        w[j, k] = results._NG_PER_ML * h / model.system.volume[k]
    return w


def _tip_rows(pairs: Sequence[tuple[Model, Scenario]]) -> np.ndarray:
    """Weights ``(len(pairs), n_spinal)`` (ng/mL per ug) over the spinal cells giving the
    CSF concentration at the catheter tip (the first intrathecal site) of each
    ``(model, scenario)``; zero without an intrathecal dose. The models share a cell count;
    the interpolation to a tip is worked out once per grid and tip."""
    from csfmodel.model import _hat_weights

    out = np.zeros((len(pairs), pairs[0][0].system.n_spinal) if pairs else (0, 0))
    hats: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    for j, (model, sc) in enumerate(pairs):
        z = next((d.site_z for d in sc.doses if hasattr(d, "site_z")), None)
        if z is None:
            continue
        key = (id(model.grid), z)
        if key not in hats:
            hats[key] = _hat_weights(model.grid, float(z))
        k, h = hats[key]
        out[j, k] = results._NG_PER_ML * h / model.system.volume[k]
    return out


def _with_spinal_rows(obs: tuple, layout: list, name: str, rows: np.ndarray) -> tuple:
    """CSR rows ``obs`` (``ptr, idx, weights`` per member) with ``rows`` appended as the
    variable ``name`` of ``layout``: ``(members, k, n)`` weights over the spinal cells."""
    ptr, idx, weights = obs
    n_members, k, n = rows.shape
    ptr = np.concatenate([ptr, ptr[-1] + n * np.arange(1, k + 1)])
    idx = np.concatenate([idx, np.tile(np.arange(n), k)])
    weights = np.ascontiguousarray(np.concatenate([weights, rows.reshape(n_members, -1)],
                                                  axis=1))
    start = layout[-1][2] if layout else 0
    layout.append((name, start, start + k))
    return ptr, idx, weights


def padded_system(system: LinearSystem, n_cord: int) -> dict[str, np.ndarray]:
    """The arrays of ``system`` (:data:`~csfmodel.solvers.SYSTEM_FIELDS`) with its cord
    block padded to ``n_cord`` cells, so that patients whose conus ends at different
    levels share one array shape (one kernel call).

    The added cells follow the last real cord cell in the state; they are inert: their
    rows and columns of ``J`` are zero, so from a zero start they stay exactly zero and
    add exactly zero to every sum of the structured solve, and the real cells'
    arithmetic is unchanged (round-off aside). Their volume is the last real cord
    cell's, so the error scale of the cord group is unchanged.
    """
    from csfmodel.solvers import SYSTEM_FIELDS

    fields = {f: getattr(system, f) for f in SYSTEM_FIELDS}
    d = n_cord - system.n_cord
    if d == 0:
        return fields
    for f in ("cord_diag", "csf_to_cord", "cord_to_csf"):
        fields[f] = np.concatenate([fields[f], np.zeros(d)])
    fields["border_rows"] = _pad_state(system.border_rows, system.n_spatial, d, 0.0)
    fields["border_cols"] = _pad_state(system.border_cols.T, system.n_spatial, d, 0.0).T
    pad_volume = system.volume[system.n_spatial - 1] if system.n_cord else 1.0
    fields["volume"] = _pad_state(system.volume, system.n_spatial, d, pad_volume)
    return fields


def _pad_state(a: np.ndarray, at: int, d: int, value: float) -> np.ndarray:
    """``a`` with ``d`` entries ``value`` inserted before index ``at`` of its last axis."""
    out = np.empty(a.shape[:-1] + (a.shape[-1] + d,), a.dtype)
    out[..., :at] = a[..., :at]
    out[..., at:at + d] = value
    out[..., at + d:] = a[..., at:]
    return out


def padded_schedule(schedule: Schedule, system: LinearSystem, n_cord: int) -> Schedule:
    """``schedule`` (built for ``system``) on the state of :func:`padded_system`: no dose
    reaches an inert cord cell."""
    d = n_cord - system.n_cord
    if d == 0:
        return schedule
    sp = system.n_spatial
    return Schedule(times=schedule.times, jumps=_pad_state(schedule.jumps, sp, d, 0.0),
                    rates=_pad_state(schedule.rates, sp, d, 0.0), t_end=schedule.t_end)


def _padded_observation(obs: results.Observation, system: LinearSystem,
                        n_cord: int) -> results.Observation:
    """``obs`` on the state of :func:`padded_system` (no weight on an inert cell)."""
    d = n_cord - system.n_cord
    if d == 0:
        return obs
    n, sp = system.n_spinal, system.n_spatial
    blocks = []
    for a, b, mat in obs.blocks:
        if a >= sp:                                     # a compartment: shifted
            blocks.append((a + d, b + d, mat))
        elif a == n and b == sp and mat is not None:    # cord cells -> segments
            blocks.append((a, b + d, np.pad(mat, ((0, 0), (0, d)))))
        else:                                           # spinal CSF cells
            blocks.append((a, b, mat))
    return results.Observation(obs.variables, tuple(blocks))


def _observables(members: list, volume: np.ndarray, variables: Sequence[str], n_cord: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """CSR rows of ``variables`` for a group of the same shape, weights per member.

    The pattern and the segment fractions depend on the grid only; members on other
    grids of the same shape share the union of the grids' patterns (weight 0 where a
    grid has no entry, which adds nothing to the kernel's sums). Every member's rows are
    on the state padded to ``n_cord`` cord cells (:func:`padded_system`).
    """
    by_grid: dict[tuple, list[int]] = {}
    for k, mem in enumerate(members):
        by_grid.setdefault(mem[4], []).append(k)
    obs = {g: _padded_observation(results.observation(members[ks[0]][1], variables),
                                  members[ks[0]][1].system, n_cord)
           for g, ks in by_grid.items()}
    first = next(iter(obs.values()))
    if len(obs) == 1:
        ptr, idx, weights = first.csr(volume)
        return ptr, idx, weights, list(first.layout)
    pattern = [None if mat is None else
               np.logical_or.reduce([o.blocks[b][2] != 0 for o in obs.values()])
               for b, (_, _, mat) in enumerate(first.blocks)]
    weights = None
    for g, ks in by_grid.items():
        ptr, idx, w = obs[g].csr(volume[ks], pattern=pattern)
        if weights is None:
            weights = np.empty((len(members), w.shape[1]))
        weights[ks] = w
    return ptr, idx, np.ascontiguousarray(weights), list(first.layout)
