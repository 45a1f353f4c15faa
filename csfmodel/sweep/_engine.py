"""Running a sweep on Dask into one zarr store (:func:`run_sweep`).

The client validates the sweep, submits two tasks per chunk of scenarios and
writes the store's template. A task (:func:`_compute`) runs on a Dask worker: it builds
the chunk's scenarios from the base and the chunk's parameter values, parses and
assembles them, runs the batch kernel (numba, or jax through the backend
registry) which reduces them to the per-scenario outputs as it solves
(:mod:`csfmodel.sweep._outputs`); a second task on the same worker
(:func:`_write`) writes them into the chunk's region of the store, then the
chunk's completion flags. The client writes a new store's template while the
first chunks are computed, and counts finished chunks (the progress bar).

Where the workers come from: a ``dask.distributed.LocalCluster`` of processes
(one per core, one thread each, by default), a running scheduler (``scheduler=``),
an existing ``Client`` (``client=``), or a batch system through ``dask-jobqueue``
(the sweep file's ``[cluster]`` table: ``kind = "slurm" | "pbs" | "sge"``, the job
class's own options, ``jobs`` to start; missing options come from dask's
configuration, ``~/.config/dask/jobqueue.yaml``).
"""

from __future__ import annotations

import contextlib
import copy
import gc
import importlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import xarray as xr

from csfmodel import results
from csfmodel.errors import ScenarioError
from csfmodel.sweep import _store
from csfmodel.sweep._batch import NON_GEOMETRIC_FIELDS, _set, assemble_chunk, parse_chunk
from csfmodel.sweep._design import Column, Sweep, read_sweep
from csfmodel.sweep._outputs import chunk_variables, observed, summary_of

__all__ = ["run_sweep", "chunk_dataset", "JOBQUEUE"]

#: ``[cluster] kind`` -> dask-jobqueue class (``"local"``: dask-jobqueue's job class that
#: starts its "jobs" as local processes, for trying a cluster set-up without one)
JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster",
            "jobqueue-local": "local.LocalCluster"}
_SCENARIO_ATTRS = {"units": "1", "long_name": "scenario number",
                   "description": "number of the scenario in the sweep, from 0"}
_STAT_ATTRS = {
    "solver_steps": {"units": "1", "long_name": "accepted time steps",
                     "description": "time steps the solver accepted in this scenario"},
    "solver_max_error_estimate": {
        "units": "1", "long_name": "largest error estimate",
        "description": "largest local error estimate / tolerance of an accepted step (<= 1)"},
}


# ------------------------------------------------------------------ one chunk
def _sets(base: dict, keys: Sequence[str], raw: Sequence[Sequence[Any]]) -> list[dict]:
    """The chunk's scenario dicts: the base with each scenario's values of ``keys``.

    Only the tables (and of ``[[dose]]``, the entries) that ``keys`` write into are
    copied per scenario; the others are the same objects in every scenario of the
    chunk, which :func:`csfmodel.scenario.parse_scenarios` parses once.
    """
    base = copy.deepcopy(base)
    tables: dict[str, set] = {}
    for k in keys:
        head = k.split(".", 1)[0]
        name, _, index = head.partition("[")
        tables.setdefault(name, set()).add(int(index[:-1]) if index[:-1].isdigit() else None)
    out = []
    for k in range(len(raw[0]) if raw else 1):
        d = dict(base)
        for t, items in tables.items():
            if isinstance(d.get(t), dict):
                d[t] = dict(d[t])
            elif isinstance(d.get(t), list):
                d[t] = [dict(x) if isinstance(x, dict) and (i in items or None in items)
                        else x for i, x in enumerate(d[t])]
        for key, vals in zip(keys, raw):
            _set(d, key, vals[k])
        out.append(d)
    return out


def chunk_dataset(sets: Sequence[dict], first: int, payload: dict, *,
                  solve: bool = True) -> xr.Dataset:
    """A chunk's outputs (dimension ``scenario``): parse, assemble, solve, reduce.

    With ``solve=False`` the values are zeros: the structure, for the store's template.
    """
    from csfmodel.solvers import SolverOptions, get_backend
    from csfmodel.solvers._prepare import summarize
    from csfmodel.sweep._batch import _solve_chunk

    outputs = payload["outputs"]
    scs, t_out = parse_chunk(sets, first)
    chunk = assemble_chunk(scs, observed(outputs), tip=True)
    n, n_obs = len(scs), chunk.layout[-1][2]
    duration = scs[0].simulation.duration
    summary = summary_of(chunk.layout, outputs, chunk.records, duration)
    series = None
    if solve:
        backend = get_backend(payload["backend"])
        options = backend.resolve(SolverOptions(rtol=payload["rtol"]))
        # the kernel reduces along time as it solves; series only when they are asked for
        # (then reduced by the same arithmetic afterwards)
        values, stats = _solve_chunk(chunk, t_out, backend, options,
                                     False if outputs.series else summary, n)
        if outputs.series:
            series, values = values, summarize(values, t_out, summary)
    else:
        values = np.zeros((n, len(summary.rows), n_obs))
        series = np.zeros((n, len(t_out), n_obs)) if outputs.series else None
        stats = [SimpleNamespace(steps=0, max_error_estimate=0.0)] * n
    variables = chunk_variables(values, summary, series, chunk.layout, outputs,
                                chunk.records, duration)
    variables["solver_steps"] = ("scenario", np.array([s.steps for s in stats], np.int64),
                                 _STAT_ATTRS["solver_steps"])
    variables["solver_max_error_estimate"] = (
        "scenario", np.array([s.max_error_estimate for s in stats], float),
        _STAT_ATTRS["solver_max_error_estimate"])
    ds = results.build_dataset(chunk.geometries, variables,
                               t_out=t_out if outputs.series else None,
                               scenarios={"scenario": (np.arange(first, first + n),
                                                       _SCENARIO_ATTRS)},
                               records=chunk.records)
    if payload.get("geometric"):
        # a sweep over the anatomy: geometric coordinates per scenario in every chunk
        for name in [c for c in ds.coords if "scenario" not in ds[c].dims
                     and c not in ds.dims and c != "scenario"]:
            ds[name] = ds[name].expand_dims(scenario=n).copy()
    return ds


def _threads(n: int | None) -> None:
    if n:
        try:
            import numba

            numba.set_num_threads(min(int(n), numba.config.NUMBA_NUM_THREADS))
        except ImportError:          # pragma: no cover - jax backend without numba
            pass


def _identity(x: Any) -> Any:
    return x


_GC_FROZEN: list[bool] = []


def _freeze_gc() -> None:
    """Once per process: move the objects alive now (modules, compiled kernels, the
    worker's own state) out of the cyclic garbage collector's reach.

    A chunk's parsing and assembly allocate enough objects to trigger full collections,
    and each full collection walks every object of the worker process: ~0.1 ms per
    scenario of the benchmark sweep, a quarter of the work beside the kernel (objects
    made later are still collected as usual).
    """
    if not _GC_FROZEN:
        _GC_FROZEN.append(True)
        gc.collect()
        gc.freeze()


def _compute(payload: dict, start: int, stop: int, raw: list) -> xr.Dataset:
    """A Dask task: the outputs of scenarios ``[start, stop)`` (:func:`chunk_dataset`)."""
    _threads(payload.get("numba_threads"))
    _freeze_gc()
    enabled = gc.isenabled()
    gc.disable()            # the chunk's objects are freed by reference counting
    try:
        ds = chunk_dataset(_sets(payload["base"], payload["keys"], raw), start, payload)
    finally:
        if enabled:
            gc.enable()
    z = payload.get("z")
    if z is not None and "z" in ds.dims and not np.array_equal(ds.z.values, z):
        raise ScenarioError(f"scenario[{start}]", "another grid along z", "scenarios sharing "
                            "one grid (the same spinal length and resolution) to record the "
                            "spinal CSF profile")
    return ds


def _write(ds: xr.Dataset, start: int, stop: int, store: str, layout: _store.Layout) -> int:
    """A Dask task (on the worker holding ``ds``): write a chunk into the store."""
    _store.write_chunk(store, ds, layout, start, stop)
    return stop - start


# ------------------------------------------------------------------ the store's frame
def _coords(sweep: Sweep, columns: list[Column]) -> dict[str, xr.Variable]:
    def attrs(c: Column, label: bool = False) -> dict:
        long = c.key if len(c.key) <= results.LONG_NAME_MAX else c.key.rsplit(".", 1)[-1]
        if label:
            return {"units": "1", "long_name": (long + " label")[:results.LONG_NAME_MAX],
                    "description": f"value of {c.key} as written"}
        what = ("position (cm from the foramen magnum, in the base patient) of "
                if c.unit == "cm" and c.labels is not None else
                "number of the label of " if c.labels is not None else "value of ")
        return {"units": c.unit, "long_name": long[:results.LONG_NAME_MAX],
                "description": f"{what}{c.key} in the scenario"}

    out: dict[str, xr.Variable] = {}
    if sweep.design.kind == "product":
        for c, p in zip(columns, sweep.parameters):
            k = len(p.values)
            out[c.key] = xr.IndexVariable(c.key, c.numbers[:k], attrs(c))
            if c.labels is not None:
                out[f"{c.key}_label"] = xr.Variable(c.key, c.labels[:k], attrs(c, True))
        return out
    out["scenario"] = xr.IndexVariable("scenario", np.arange(sweep.size), _SCENARIO_ATTRS)
    for c in columns:
        out[c.key] = xr.Variable("scenario", c.numbers, attrs(c))
        if c.labels is not None:
            out[f"{c.key}_label"] = xr.Variable("scenario", c.labels, attrs(c, True))
    return out


def _product_columns(sweep: Sweep, columns: list[Column]) -> list[Column]:
    """The product's scenarios, flattened in C order, from each parameter's values."""
    shape = sweep.shape
    grids = np.indices(shape).reshape(len(shape), -1)
    return [Column(c.key, [c.raw[i] for i in g], c.numbers[g], c.unit,
                   None if c.labels is None else c.labels[g]) for c, g in zip(columns, grids)]


def _geometric(sweep: Sweep) -> bool:
    for p in sweep.parameters:
        if p.key == "simulation.resolution":
            raise ScenarioError("parameter", p.key, "a key other than simulation.resolution "
                                "(one grid per sweep; run one sweep per resolution)")
        if p.key.startswith("patient.") and p.key.split(".", 1)[1] not in NON_GEOMETRIC_FIELDS:
            return True
    return False


def _attrs(sweep: Sweep, backend_name: str, rtol: float) -> dict:
    from csfmodel._version import __version__

    d = sweep.design
    return {"title": "csfmodel sweep", "csfmodel_version": __version__,
            "scenario": json.dumps(sweep.describe()["base"]),
            "sweep": json.dumps(sweep.describe()), "design": d.kind,
            "design_n": -1 if d.n is None else d.n, "seed": -1 if d.seed is None else d.seed,
            "parameters": json.dumps([p.key for p in sweep.parameters]),
            "scenarios": sweep.size, "chunk_size": sweep.chunk_size,
            "solver": backend_name, "solver_rtol": rtol,
            "source": sweep.source or "", "Conventions": "CF-1.8"}


# ------------------------------------------------------------------ clusters
@contextlib.contextmanager
def _client(cluster: dict, scheduler: str | None, workers: int | None,
            threads: int | None) -> Iterator[Any]:
    """A ``distributed.Client``: to ``scheduler``, on dask-jobqueue, or a LocalCluster."""
    from distributed import Client, LocalCluster

    cfg = dict(cluster)
    kind = cfg.pop("kind", "local")
    jobs = cfg.pop("jobs", None)
    if scheduler:
        with Client(scheduler) as c:
            yield c
        return
    if kind == "local":
        n = workers or cfg.pop("workers", None) or os.cpu_count() or 1
        tpw = threads or cfg.pop("threads_per_worker", 1)
        # no dashboard unless asked for: its HTTP server would otherwise try port 8787
        # (taken by any other Dask cluster on the machine); ":0" is a free port
        with LocalCluster(n_workers=int(n), threads_per_worker=int(tpw), processes=True,
                          dashboard_address=cfg.pop("dashboard_address", ":0"),
                          silence_logs=logging.ERROR, **cfg) as lc, \
                Client(lc) as c:
            yield c
        return
    if kind not in JOBQUEUE:
        raise ScenarioError("cluster.kind", kind, "one of: local, " + ", ".join(JOBQUEUE))
    mod, _, name = ("dask_jobqueue." + JOBQUEUE[kind]).rpartition(".")
    try:
        cls = getattr(importlib.import_module(mod), name)
    except ImportError:
        raise ScenarioError("cluster.kind", kind, "'local', or dask-jobqueue installed "
                            "(pip install 'csfmodel[dask]')") from None
    try:
        jq = cls(**cfg)
    except (TypeError, ValueError) as exc:
        raise ScenarioError("cluster", cfg, f"options of dask_jobqueue.{JOBQUEUE[kind]}",
                            detail=str(exc).splitlines()[0]) from None
    with jq, Client(jq) as c:
        jq.scale(jobs=int(jobs or workers or 1))
        yield c


# ------------------------------------------------------------------ the sweep
def _progress(total: int, initial: int, enabled: bool | None) -> Any:
    from tqdm import tqdm

    on = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(total=total, initial=initial, unit="scenario", disable=not on,
                file=sys.stderr, smoothing=0.1, desc="sweep")


def run_sweep(sweep: Sweep | str | Path, store: str | Path, *, resume: bool = False,
              scheduler: str | None = None, workers: int | None = None,
              threads: int | None = None, client: Any = None,
              progress: bool | None = None) -> Path:
    """Run a sweep on Dask into one zarr store; return its path.

    Parameters
    ----------
    sweep
        A :class:`~csfmodel.sweep.Sweep`, or the path of a sweep file (TOML).
    store
        The zarr store (a directory) to create, or with ``resume`` to complete.
    resume
        Complete the sweep of an existing store (the same sweep): chunks already
        written are kept, the others computed; the result equals an uninterrupted run.
    scheduler
        Address of a running Dask scheduler (``tcp://host:8786``) instead of a local
        cluster.
    workers
        Worker processes of the local cluster (default: one per core), or jobs to
        start on a batch system.
    threads
        Threads per worker (default 1; the numba kernel uses as many).
    client
        An existing ``distributed.Client`` to use.
    progress
        A progress bar on stderr (default: when stderr is a terminal).

    Raises
    ------
    ScenarioError
        For a bad sweep (before anything is written), a store holding another sweep,
        or a store another sweep is writing to (one line).
    """
    sw = read_sweep(sweep) if isinstance(sweep, (str, Path)) else sweep.checked()
    out = Path(store)
    from csfmodel._io import check_output_dir

    base_path = sw.base if isinstance(sw.base, (str, Path)) else None
    check_output_dir(out, "output", inputs=[sw.source, base_path], allowed="a zarr store "
                     "(a directory, to be created or holding this sweep)")
    from csfmodel.solvers import SolverOptions, get_backend

    backend = get_backend(sw.backend)
    rtol = backend.resolve(SolverOptions(rtol=sw.rtol)).rtol
    geometric = _geometric(sw)
    columns = sw.columns()
    flat = _product_columns(sw, columns) if sw.design.kind == "product" else columns
    layout = _store.Layout.plan(sw.dims, sw.shape, sw.chunk_size)
    payload = {**sw.payload(), "keys": [c.key for c in flat], "geometric": geometric,
               "numba_threads": threads or 1}
    sample = chunk_dataset(_sets(payload["base"], payload["keys"], [[c.raw[0]] for c in flat]),
                           0, payload, solve=False)
    if "z" in sample.dims:
        payload["z"] = sample.z.values
    sample = layout.unstack(sample, 0, 1)
    tmpl = _store.template(sample, layout, _coords(sw, columns),
                           _attrs(sw, backend.name, rtol))
    spec = json.loads(tmpl.attrs["sweep"])
    existing = out.exists() and any(out.iterdir())
    if existing:
        old = _store.read_spec(out)
        if old is None:
            raise ScenarioError("output", str(out), "a new store, or one holding this sweep",
                                detail="exists and is not a csfmodel sweep store")
        if not resume:
            raise ScenarioError("output", str(out), "a new store, or --resume to complete "
                                "the sweep written there", detail="it holds a sweep")
        if old != spec:
            raise ScenarioError("output", str(out), "the same sweep to resume (or another "
                                "store)", detail="the store holds a different sweep")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with _store.Lock(out):
            done = _store.done_tasks(out, layout) if existing else set()
            todo = [i for i in range(len(layout.tasks)) if i not in done]
            n_done = sum(b - a for i, (a, b) in enumerate(layout.tasks) if i in done)
            # a new store's template is written while the first chunks are computed
            create = None if existing else (lambda: _store.create(out, tmpl))
            if todo:
                _submit(sw, flat, payload, layout, out, todo, n_done, scheduler, workers,
                        threads, client, progress, create)
            elif create is not None:
                create()
    except BaseException:
        if created and not (out / "zarr.json").exists():
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        raise
    return out


def _submit(sw: Sweep, flat: list[Column], payload: dict, layout: _store.Layout, out: Path,
            todo: list[int], n_done: int, scheduler: str | None, workers: int | None,
            threads: int | None, client: Any, progress: bool | None,
            create: Any = None) -> None:
    """Two tasks per chunk: compute (:func:`_compute`) and write (:func:`_write`, on the
    worker holding the chunk, before the next chunk starts there: a higher priority).
    ``create`` (a new store's template) runs here while the first chunks are computed;
    the writes are submitted once it is done."""
    from distributed import as_completed

    ctx = contextlib.nullcontext(client) if client is not None else \
        _client(sw.cluster, scheduler, workers, threads)
    bar = _progress(sw.size, n_done, progress)
    tag = f"csfmodel-sweep-{os.getpid()}-{id(layout)}"
    with ctx as c, bar:
        # the payload as a task of its own: workers fetch it once, and a worker lost with
        # it gets it computed again (scattered data would be lost with its worker)
        base = c.submit(_identity, payload, pure=False)
        computed, written = [], []
        try:
            for i in todo:
                a, b = layout.tasks[i]
                computed.append(c.submit(_compute, base, a, b, [col.raw[a:b] for col in flat],
                                         key=f"{tag}-{i}", pure=False))
            if create is not None:
                create()
            for i, fut in zip(todo, computed):
                a, b = layout.tasks[i]
                written.append(c.submit(_write, fut, a, b, str(out), layout,
                                        key=f"{tag}-write-{i}", pure=False, priority=1))
            # a chunk's outputs are released from its worker once written
            computed.clear()
            for fut in as_completed(written):
                bar.update(fut.result())
        except BaseException:
            c.cancel(written + computed)
            raise
