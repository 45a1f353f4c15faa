"""Simulating a population: virtual patients through the batch kernel, per-patient
summaries, effects and time-course percentiles (prediction bands).

The patients (:func:`sample_patients`) become the zipped per-patient parameters of a
sweep (:func:`csfmodel.sweep.run_batch`): ``patient.*`` and ``drug.*`` keys with
units, plus ``simulation.resolution`` so that every patient's grid has the same
number of cells (the longest spinal SAS of the population at the scenario's
resolution; every cell is at most that wide), and cords of different lengths are padded
to one length, so a chunk of patients of any anatomies is one kernel call. CSF at the
chosen levels is recorded by the kernel at each patient's own positions. Chunks stream
through one pipeline (:func:`csfmodel.sweep.iter_batches`, or Dask tasks); what a chunk
leaves is small: per-patient summaries and the observables at the band times.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time as _time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from csfmodel.errors import ScenarioError
from csfmodel.scenario import Scenario, parse_scenario, parse_site

from ._data import PopulationSpec, load_population
from ._sampling import patient_anatomies, patient_overrides, sample_patients

__all__ = ["population", "save_population", "QUANTILES", "DEFAULT_LEVELS", "DEFAULT_SEGMENTS",
           "scenario_parts", "sweep_parameters"]

#: percentiles of the prediction bands
QUANTILES = (5.0, 25.0, 50.0, 75.0, 95.0)
#: CSF levels of the bands unless chosen (a lumbar puncture and the mid-thoracic SAS)
DEFAULT_LEVELS = ("L3-L4", "T10", "C5")
#: cord segments of the bands unless chosen (or a target given)
DEFAULT_SEGMENTS = ("C5", "T6", "T10", "L1", "S1")
#: relative tolerance of the solver for virtual populations (of each output's running
#: peak, per step). Looser than a single run's default (numba 5e-5): on 256 patients of
#: the 7-day pump benchmark at 5 mm it moves every patient's Cmax, AUC and peak
#: respiratory depression by at most 2.3e-4 of its value and the prediction bands by at
#: most 8.4e-4 of their peak (``tests/test_population.py``), far inside the spread
#: between patients, for ~1.5x less kernel time. ``rtol=`` overrides it.
POPULATION_RTOL = 1e-3
#: what the kernel records for a population (CSF at the levels comes as sites)
_VARS = ("cisternal_csf_concentration", "cord_concentration", "brain_concentration",
         "plasma_concentration")


def scenario_parts(scenario: Scenario | dict | str | Path) -> tuple[dict, Any]:
    """The scenario as a dict without its ``[population]`` table, and that table."""
    if isinstance(scenario, Scenario):
        data = copy.deepcopy(scenario.source)
    elif isinstance(scenario, dict):
        data = copy.deepcopy(scenario)
    elif isinstance(scenario, (str, Path)):
        from csfmodel._io import read_text
        from csfmodel.scenario import parse_toml

        data = parse_toml(read_text(scenario, "scenario", "a readable TOML file"), scenario)
    else:
        raise ScenarioError("scenario", type(scenario).__name__,
                            "a Scenario, a dict or the path of a TOML file")
    if not isinstance(data, dict):
        raise ScenarioError("scenario", data, "a table")
    return data, data.pop("population", None)


def _timed(backend: Any):
    """The backend, with the seconds spent in its ``solve_batch`` counted (``.seconds``)."""
    from csfmodel.solvers import get_backend

    b = copy.copy(get_backend(backend))
    inner = type(b).solve_batch.__get__(b)
    b.seconds = 0.0

    def solve_batch(*args, **kw):
        t0 = _time.perf_counter()
        try:
            return inner(*args, **kw)
        finally:
            b.seconds += _time.perf_counter() - t0

    b.solve_batch = solve_batch
    return b


def _effect_parameters(pts: xr.Dataset, idx: np.ndarray, base, inputs) -> dict[str, Any]:
    """Per-patient resolved effect parameters (unbound ng/mL): the population's potencies
    scale the published ones, which :func:`csfmodel.effects.resolve` converts."""
    from csfmodel.effects import resolve

    r = resolve(base, inputs)
    out = {"r": r}
    for name, attr, default in (("pd_c50_brain_nM", "ec50_brain", base.c50_brain_nM),
                                ("pd_c50_resp_nM", "ec50_resp", base.c50_resp_nM),
                                ("pd_spinal_threshold_pmol_per_mg", "ec50_spinal",
                                 base.spinal_threshold_pmol_per_mg)):
        scale = pts[name].values[idx] / default if name in pts else np.ones(len(idx))
        out[attr] = getattr(r, attr) * scale
    return out


def _pd(block: xr.Dataset, ep: dict, target: list[str] | None, window: tuple[float, float],
        scales: np.ndarray) -> dict[str, np.ndarray]:
    """Per patient and dose scale: the worst-target-segment analgesia, lowest over
    ``window`` and time-averaged, and the peak respiratory depression (effect sites of
    :mod:`csfmodel.effects`; the model is linear, so concentrations scale with the doses)."""
    from csfmodel.effects import effect_site

    r = ep["r"]
    ce_b = effect_site(block.brain_concentration, r.t_half_brain).transpose("scenario", "time")
    ub = ce_b.values / ep["ec50_brain"][:, None]
    rb = np.maximum(ce_b.values, 0.0) / ep["ec50_resp"][:, None]
    resp = np.empty((len(ub), len(scales)))
    for k, f in enumerate(scales):
        x = (f * rb) ** r.gamma_resp
        resp[:, k] = (x / (1.0 + x)).max(axis=1)
    out = {"respiratory_depression_max": resp}
    if target:
        cord = block.cord_concentration.sel(segment=target)
        ce_s = effect_site(cord, r.t_half_spinal).transpose("scenario", "time", "segment")
        us = ce_s.values / ep["ec50_spinal"][:, None, None]
        t = block.time.values
        sel = (t >= window[0] - 1e-9) & (t <= window[1] + 1e-9)
        us, ubw, ts = us[:, sel], ub[:, sel, None], t[sel]
        trough = np.empty_like(resp)
        mean = np.empty_like(resp)
        for k, f in enumerate(scales):
            u = np.maximum(f * us + f * ubw + r.interaction * f * f * us * ubw, 0.0)
            a = (u ** r.gamma / (1.0 + u ** r.gamma)).min(axis=2)
            trough[:, k] = a.min(axis=1)
            mean[:, k] = (np.trapezoid(a, ts, axis=1) / (ts[-1] - ts[0]) if len(ts) > 1
                          else a[:, 0])
        out["analgesia_trough"] = trough
        out["analgesia_mean"] = mean
    return out


def _hours(value: Any, key: str) -> float:
    if isinstance(value, str):
        from csfmodel.units import convert

        return convert(value, "min", key) / 60.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value):
        raise ScenarioError(key, value, "a time such as '24 h'")
    return float(value)


def _window(window: Any, duration_h: float) -> tuple[float, float]:
    """The evaluation window (h): default the last 24 h (the whole run if shorter)."""
    if window is None:
        return (max(0.0, duration_h - 24.0), duration_h)
    if not isinstance(window, (tuple, list)) or len(window) != 2:
        raise ScenarioError("window", window, "(start, stop) such as ('144 h', '168 h')")
    t0, t1 = _hours(window[0], "window[0]"), _hours(window[1], "window[1]")
    if not 0.0 <= t0 < t1 <= duration_h + 1e-9:
        raise ScenarioError("window", window, f"0 <= start < stop <= the duration "
                            f"({duration_h:g} h)")
    return (t0, t1)


def sweep_parameters(pts: xr.Dataset, sc: Scenario) -> tuple[dict[str, list], int]:
    """The patients as zipped :func:`~csfmodel.sweep.run_batch` parameters, and the cells
    of every patient's grid.

    ``patient.*``/``drug.*`` values with units, and ``simulation.resolution`` so that every
    grid has the same number of cells (the longest spinal SAS of the population at the
    scenario's resolution; every cell at most that wide): the batch kernel then solves
    patients of any anatomy in one call.
    """
    overrides = patient_overrides(pts)
    length = pts.spinal_length.values
    n_cells = int(math.ceil(length.max() / sc.simulation.resolution - 1e-9))
    overrides["simulation.resolution"] = [f"{x / n_cells!r} cm" for x in length.tolist()]
    return overrides, n_cells


def population(scenario: Scenario | dict | str | Path, n: int = 100, seed: Any = 0, *,
               spec: PopulationSpec | dict | str | Path | None = None,
               levels: Sequence[str] = DEFAULT_LEVELS,
               segments: Sequence[str] | None = None, target: str | None = None,
               window: tuple[Any, Any] | None = None, bodies: int | None = None,
               band_points: int = 400, chunk_size: int = 64, rtol: float | None = None,
               backend: Any = "numba", dose_scale: Sequence[float] | None = None,
               progress: Callable[[int, int], None] | None = None,
               client: Any = None) -> xr.Dataset:
    """Simulate ``n`` virtual patients of a scenario.

    Parameters
    ----------
    scenario
        The scenario (TOML path, dict or :class:`~csfmodel.scenario.Scenario`); its
        ``[population]`` table, if any, overrides the shipped description.
    n, seed
        Number of patients and the seed of their sampling (same seed, same patients).
    spec
        Further overrides of the population description (dict in the layout of
        ``csfmodel/data/population.toml``, a TOML path, or a :class:`PopulationSpec`).
    levels
        CSF sites of the prediction bands: vertebral levels or interspaces (``"L3-L4"``),
        placed in each patient's own anatomy.
    segments
        Cord segments of the bands (default: the target's, else :data:`DEFAULT_SEGMENTS`).
    target
        Cord segments to relieve (``"T8-L1"``): adds ``analgesia_trough`` (the
        worst-covered target segment's analgesia, lowest over ``window``) and
        ``analgesia_mean`` per patient.
    window
        ``(start, stop)`` of the analgesia evaluation (h or ``"144 h"``); default the
        last 24 h of the scenario (the whole run if shorter).
    bodies
        Distinct bodies (covariates and grid-shaping anatomy), default ``n`` (every
        patient its own). Not needed for speed: every grid has the same number of cells,
        so patients of any anatomy share a kernel call; patients of one body share their
        grid's assembly.
    band_points
        At most this many times in the bands (every k-th output time, and the last).
    chunk_size, backend
        As :func:`csfmodel.sweep.run_batch`.
    rtol
        Relative tolerance of the solver; default :data:`POPULATION_RTOL` (1e-3: the
        outputs within 1e-3 of their peak of a run at the single-run default, far inside
        the between-patient spread).
    dose_scale
        Factors on every dose of the scenario: the effect summaries get a
        ``dose_scale`` dimension (exact: the model is linear and starts drug-free, so
        concentrations scale with the doses; the effects are computed from them).
    progress
        Called with (patients done, n) after each chunk.
    client
        A ``distributed.Client``: chunks of patients run as Dask tasks on its workers
        (simulated and reduced to summaries and band samples there), gathered in patient
        order; the same numbers as in this process. ``solver_seconds`` then adds up the
        workers' solver time.

    Returns
    -------
    xarray.Dataset
        Per patient (dimension ``patient``): covariates, sampled parameters, derived
        anatomy, ``<site>_max``/``_tmax``/``_auc``/``_final`` of ``csf`` (``level``),
        ``cisternal_csf``, ``cord`` (``segment``), ``brain`` and ``plasma``
        concentrations, ``respiratory_depression_max`` and, with a target, the
        analgesia; ``*_band`` percentiles (``quantile``, ``band_time``); attrs: seed,
        the population description (JSON), the scenario, solver and wall seconds.

    Raises
    ------
    csfmodel.api.SimulationInterrupted
        On Ctrl-C, with ``partial`` holding the patients finished so far.
    """
    from csfmodel.effects import target_segments
    from csfmodel.sweep import iter_batches

    t_start = _time.perf_counter()
    rtol = POPULATION_RTOL if rtol is None else rtol
    data, table = scenario_parts(scenario)
    sc = parse_scenario(data)
    pop = load_population(table, spec)
    if isinstance(band_points, bool) or not isinstance(band_points, int) or band_points < 2:
        raise ScenarioError("band_points", band_points, "a whole number >= 2")
    tgt = target_segments(target, "target") if target is not None else None
    segs = list(segments) if segments is not None else (tgt or list(DEFAULT_SEGMENTS))
    segs = target_segments(segs, "segments")
    levels = [str(x) for x in levels]
    dur_h = sc.simulation.duration / 60.0
    win = _window(window, dur_h)
    scales = np.atleast_1d(np.asarray(dose_scale if dose_scale is not None else [1.0], float))
    if scales.ndim != 1 or not len(scales) or not np.all(np.isfinite(scales)) or np.any(
            scales < 0):
        raise ScenarioError("dose_scale", dose_scale, "a list of factors >= 0")
    pts = sample_patients(pop, sc, n, seed, bodies)
    anat = patient_anatomies(pts, sc)
    level_z = np.array([[parse_site(lv, a, f"levels[{j}]") for j, lv in enumerate(levels)]
                        for a in anat]).reshape(n, len(levels))
    overrides, n_cells = sweep_parameters(pts, sc)
    t_out = sc.simulation.output_times() / 60.0
    step = max(1, math.ceil(len(t_out) / band_points))
    band_idx = np.unique(np.append(np.arange(0, len(t_out), step), len(t_out) - 1))
    sites = level_z if levels else None
    solver = _timed(backend)

    base_pd = _base_effect_parameters()
    summaries: dict[str, list] = {}
    bands: dict[str, list] = {}
    done = 0
    interrupted = None
    ctx = _BlockContext(levels, segs, band_idx, sc.drug.name == "morphine", base_pd, tgt, win,
                        scales, dose_scale is not None)
    seconds = [0.0]

    def results():
        """``(patient indices, summaries, bands)`` of each chunk of patients: from one
        pipeline in this process (the kernel integrates a chunk while this thread turns
        the previous one into summaries), or from Dask tasks (gathered in patient order).
        Every patient's grid has ``n_cells`` cells and cords are padded to the longest, so
        a chunk is one kernel call whatever the anatomies; CSF at the levels is recorded
        by the kernel at each patient's own positions (``sites``)."""
        if client is None:
            for c, ds in iter_batches(data, overrides, variables=_VARS, rtol=rtol,
                                      chunk_size=chunk_size, backend=solver, sites=sites):
                idx = np.arange(c * chunk_size, c * chunk_size + ds.sizes["scenario"])
                yield (idx, *ctx.results(ds, pts.isel(patient=idx)))
            return
        yield from _dask_blocks(client, data, overrides, pts, sites, _VARS, rtol, chunk_size,
                                backend, ctx, seconds)

    try:
        for idx, s_block, b_block in results():
            for k, v in s_block.items():
                summaries.setdefault(k, []).append(v)
            for k, v in b_block.items():
                bands.setdefault(k, []).append(v)
            done = int(idx[-1]) + 1
            if progress is not None:
                progress(done, n)
    except KeyboardInterrupt:
        if done == 0:
            raise
        interrupted = f"after {done} of {n} patients"
    out = _assemble(pts.isel(patient=slice(0, done)), summaries, bands, levels, segs)
    if dose_scale is not None:
        out = out.assign_coords(dose_scale=("dose_scale", scales, {
            "units": "1", "long_name": "factor on every dose"}))
    out.attrs.update({
        "title": "csfmodel virtual population", "population_n": done,
        "population_seed": str(seed), "population_bodies": int(pts.attrs["population_bodies"]),
        "population_description": json.dumps(pop.source, default=str),
        "population_drug_variability": int(pts.attrs["population_drug_variability"]),
        "scenario": json.dumps(data, default=str), "grid_cells": n_cells,
        "target_segments": ",".join(tgt) if tgt else "",
        "analgesia_window_h": list(win), "solver_seconds": solver.seconds + seconds[0],
        "solver_rtol": float(rtol),
        "wall_seconds": _time.perf_counter() - t_start})
    from csfmodel._version import __version__

    out.attrs["csfmodel_version"] = __version__
    if interrupted:
        from csfmodel.api import SimulationInterrupted

        out.attrs["interrupted"] = interrupted
        raise SimulationInterrupted(out)
    return out


def _base_effect_parameters():
    from csfmodel.effects import EffectParameters

    return EffectParameters()


def _observables(ds: xr.Dataset, levels: list[str], segs: list[str]
                 ) -> dict[str, xr.DataArray]:
    """The observables of a block, time last: ``csf(scenario, level, time)`` at each
    patient's own level positions (recorded by the kernel, :data:`SITES`), cisterna, cord
    segments, brain and plasma."""
    from csfmodel.sweep import SITES

    out = {}
    if levels:
        vals = ds[SITES].transpose("scenario", "site", "time").values
        out["csf"] = xr.DataArray(vals, dims=("scenario", "level", "time"),
                                  coords={"level": levels, "time": ds.time},
                                  attrs={"units": "ng/mL", "long_name": "spinal CSF"})
    for name, var in (("cisternal_csf", "cisternal_csf_concentration"),
                      ("brain", "brain_concentration"), ("plasma", "plasma_concentration")):
        da = ds[var].transpose("scenario", "time")
        out[name] = xr.DataArray(da.values, dims=("scenario", "time"),
                                 coords={"time": ds.time}, attrs=dict(da.attrs))
    cord = ds.cord_concentration.sel(segment=segs).transpose("scenario", "segment", "time")
    out["cord"] = xr.DataArray(cord.values, dims=("scenario", "segment", "time"),
                               coords={"segment": segs, "time": ds.time},
                               attrs=dict(ds.cord_concentration.attrs))
    return out


def _assemble(pts: xr.Dataset, summaries: dict, bands: dict, levels: list[str],
              segs: list[str]) -> xr.Dataset:
    out = pts.copy()
    for name, parts in summaries.items():
        da = xr.concat(parts, dim="scenario").rename(scenario="patient")
        da = da.drop_vars([c for c in da.coords if c not in ("level", "segment")])
        out[name] = da.assign_coords(patient=out.patient)
        if not out[name].attrs.get("units"):
            out[name].attrs = _pd_attrs(name)
    q = np.array(QUANTILES)
    for name, parts in bands.items():
        da = xr.concat(parts, dim="scenario")
        t = da.time.values
        pct = np.percentile(da.values, q, axis=0).astype(np.float32)
        dims = ("quantile",) + tuple("band_time" if d == "time" else d for d in da.dims[1:])
        out[f"{name}_band"] = xr.DataArray(pct, dims=dims, attrs={
            "units": parts[0].attrs.get("units", "ng/mL"),
            "long_name": f"{name} percentiles"[:30],
            "description": f"between-patient percentiles of the {name} concentration"})
        out = out.assign_coords(band_time=("band_time", t, {"units": "h",
                                                            "long_name": "time"}))
    out = out.assign_coords(quantile=("quantile", q, {"units": "percent",
                                                      "long_name": "percentile"}))
    if levels:
        out = out.assign_coords(level=("level", levels, {"long_name": "CSF site"}))
    out = out.assign_coords(segment=("segment", segs, {"long_name": "cord segment"}))
    return out


def _pd_attrs(name: str) -> dict:
    text = {
        "respiratory_depression_max": ("peak respiratory depression", "largest fractional "
                                       "depression of ventilation at fixed PCO2 (Dahan 2004)"),
        "analgesia_trough": ("analgesia trough", "lowest analgesia of the worst-covered "
                             "target segment over the evaluation window"),
        "analgesia_mean": ("mean analgesia", "time-averaged analgesia of the worst-covered "
                           "target segment over the evaluation window"),
    }[name]
    return {"units": "1", "long_name": text[0], "description": text[1]}


def _progress_printer(stream=None) -> Callable[[int, int], None] | None:
    """A progress line on stderr when it is a terminal (None otherwise)."""
    stream = stream or sys.stderr
    if not getattr(stream, "isatty", lambda: False)():
        return None
    t0 = _time.perf_counter()

    def show(done: int, n: int) -> None:
        rate = done / max(_time.perf_counter() - t0, 1e-9)
        stream.write(f"\r{done}/{n} patients ({rate:.0f}/s)" + ("\n" if done == n else ""))
        stream.flush()

    return show


class _BlockContext:
    """What turns a block's simulated Dataset into its per-patient summaries and band
    samples (plain data: pickled to Dask workers)."""

    def __init__(self, levels, segs, band_idx, pd, base_pd, target, window, scales,
                 scaled):
        self.levels, self.segs, self.band_idx = list(levels), list(segs), band_idx
        self.pd, self.base_pd, self.target, self.window = pd, base_pd, target, window
        self.scales, self.scaled = scales, scaled

    def results(self, ds: xr.Dataset, pts: xr.Dataset
                ) -> tuple[dict[str, xr.DataArray], dict[str, xr.DataArray]]:
        """``({summary: (scenario, ...)}, {band: (scenario, ..., time)})`` of a block
        (``pts``: its patients)."""
        from csfmodel import metrics
        from csfmodel.effects import EffectInputs

        summaries: dict[str, xr.DataArray] = {}
        bands: dict[str, xr.DataArray] = {}
        for name, da in _observables(ds, self.levels, self.segs).items():
            summaries[f"{name}_max"] = metrics.cmax(da)
            summaries[f"{name}_tmax"] = metrics.tmax(da)
            summaries[f"{name}_auc"] = metrics.auc(da)
            summaries[f"{name}_final"] = da.isel(time=-1, drop=True)
            bands[name] = da.isel(time=self.band_idx).astype(np.float32)
        if self.pd:
            inputs = EffectInputs.from_dataset(ds.isel(scenario=0))
            ep = _effect_parameters(pts, np.arange(pts.sizes["patient"]), self.base_pd,
                                    inputs)
            for k, v in _pd(ds, ep, self.target, self.window, self.scales).items():
                da = xr.DataArray(v, dims=("scenario", "dose_scale"))
                summaries[k] = da if self.scaled else da.isel(dose_scale=0)
        return summaries, bands


def _remote_block(data: dict, params: dict, variables, rtol, backend: Any,
                  ctx: _BlockContext, pts: xr.Dataset, sites: np.ndarray | None) -> tuple:
    """A Dask task: one chunk of patients simulated and reduced on a worker; returns the
    summaries, bands and the solver's seconds."""
    from csfmodel.sweep import iter_batches
    from csfmodel.sweep._engine import _threads

    _threads(1)          # one kernel thread per task: a worker runs a task per thread
    solver = _timed(backend)
    n = pts.sizes["patient"]
    (_, ds), = iter_batches(data, params, variables=variables, rtol=rtol, chunk_size=n,
                            backend=solver, sites=sites)
    return (*ctx.results(ds, pts), solver.seconds)


def _dask_blocks(client: Any, data: dict, overrides: dict, pts: xr.Dataset,
                 sites: np.ndarray | None, variables, rtol, chunk_size: int, backend: Any,
                 ctx: _BlockContext, seconds: list) -> Iterator[tuple]:
    """Chunks of patients as Dask tasks; yields ``(indices, summaries, bands)`` in
    patient order."""
    from distributed import as_completed

    n = pts.sizes["patient"]
    spans = [(a, min(n, a + chunk_size)) for a in range(0, n, chunk_size)]
    backend_arg = backend if isinstance(backend, str) else getattr(backend, "name", backend)
    futures = {client.submit(_remote_block, data, {k: v[a:b] for k, v in overrides.items()},
                             variables, rtol, backend_arg, ctx, pts.isel(patient=slice(a, b)),
                             None if sites is None else sites[a:b], pure=False): (a, b)
               for a, b in spans}
    ready: dict[int, tuple] = {}
    nxt = 0
    try:
        for fut in as_completed(futures):
            a, b = futures[fut]
            s_block, b_block, secs = fut.result()
            seconds[0] += secs
            ready[a] = (np.arange(a, b), s_block, b_block)
            while nxt < n and nxt in ready:
                out = ready.pop(nxt)
                nxt = int(out[0][-1]) + 1
                yield out
    except BaseException:
        client.cancel(list(futures))
        raise


def save_population(ds: xr.Dataset, path: str | Path) -> Path:
    """Write a population's results to a Zarr store at ``path`` (a directory).

    Written whole to a temporary store beside ``path`` and then moved into place, so an
    interrupted write leaves no partial store; an existing Zarr store at ``path`` is
    replaced, anything else there is refused.
    """
    import os
    import shutil
    import tempfile
    import warnings

    try:
        import zarr  # noqa: F401
    except ImportError:
        raise ScenarioError("--output", str(path), "a Zarr store, which needs the zarr "
                            "package (pip install 'csfmodel[dask]')") from None
    target = Path(path)
    if target.exists() and not (target.is_dir() and ((target / "zarr.json").exists()
                                                     or (target / ".zgroup").exists())):
        raise ScenarioError("--output", str(path), "a new path or an existing Zarr store",
                            detail="exists and is not a Zarr store")
    parent = target.parent if str(target.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=parent))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # fixed-width strings: not in the v3 spec yet
            ds.to_zarr(tmp, mode="w", consolidated=True)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=parent))
            os.replace(target, old / "store")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
