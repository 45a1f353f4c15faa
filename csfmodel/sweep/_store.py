"""The zarr store of a sweep: layout, template, region writes, completion flags, lock.

One store per sweep. Its dimensions are the design's: one per parameter for a
product (the parameters' numeric coordinates, in their units, label coordinates for
sites and words), else ``scenario`` with one coordinate per parameter along it.
The template (every array's metadata and the coordinates known before the sweep:
parameters, geometry, time) is written first; each chunk of scenarios is then
written into its own region (whole zarr chunks, so chunks written at the same time
by different workers never share a file), and last its flag in ``scenario_done``
(1 = written). A chunk whose flags are set is complete: ``--resume`` skips it, and
readers can mask unfinished scenarios with ``ds.where(ds.scenario_done == 1)``.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from csfmodel.errors import ScenarioError

__all__ = ["Layout", "open_store"]

DONE = "scenario_done"
_DONE_ATTRS = {"units": "1", "long_name": "scenario written",
               "description": "1 once the scenario's results are written (a sweep in "
                              "progress or interrupted has 0 for the others)"}


@dataclass(frozen=True)
class Layout:
    """Dimensions of the store and the chunks of scenarios (contiguous in C order)."""

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]         # zarr chunk shape along ``dims``
    tasks: tuple[tuple[int, int], ...]   # (first scenario, end) of each chunk

    @classmethod
    def plan(cls, dims: tuple[str, ...], shape: tuple[int, ...], chunk_size: int) -> Layout:
        """Chunks of at most ``chunk_size`` scenarios that are whole hyperslabs: the
        trailing dimensions that fit whole, a block of the next, single indices before."""
        k = len(shape)
        j = k
        while j > 0 and int(np.prod(shape[j - 1:])) <= chunk_size:
            j -= 1
        total = int(np.prod(shape))
        if j == 0:
            return cls(dims, shape, tuple(shape), ((0, total),))
        inner = int(np.prod(shape[j:]))
        b = max(1, chunk_size // inner)
        n_j = shape[j - 1]
        outer = int(np.prod(shape[:j - 1]))
        tasks = []
        for o in range(outer):
            for a in range(0, n_j, b):
                start = (o * n_j + a) * inner
                tasks.append((start, start + min(b, n_j - a) * inner))
        return cls(dims, shape, (1,) * (j - 1) + (b,) + tuple(shape[j:]), tuple(tasks))

    def region(self, start: int, stop: int) -> dict[str, slice]:
        """The hyperslab of scenarios ``[start, stop)``."""
        first = np.unravel_index(start, self.shape)
        last = np.unravel_index(stop - 1, self.shape)
        return {d: slice(int(a), int(b) + 1) for d, a, b in zip(self.dims, first, last)}

    def unstack(self, ds: xr.Dataset, start: int, stop: int) -> xr.Dataset:
        """A chunk's Dataset (dimension ``scenario``) on the store's dimensions."""
        if self.dims == ("scenario",):
            return ds
        reg = self.region(start, stop)
        slab = tuple(reg[d].stop - reg[d].start for d in self.dims)
        data = {}
        for name, v in ds.variables.items():
            if name == "scenario":
                continue
            if "scenario" not in v.dims:
                data[name] = v
                continue
            i = v.dims.index("scenario")
            vals = np.asarray(v.values)
            vals = vals.reshape(vals.shape[:i] + slab + vals.shape[i + 1:])
            data[name] = xr.Variable(v.dims[:i] + self.dims + v.dims[i + 1:], vals, v.attrs)
        return xr.Dataset({k: v for k, v in data.items() if k in ds.data_vars},
                          coords={k: v for k, v in data.items() if k not in ds.data_vars})


def _strings(v: xr.Variable) -> xr.Variable:
    """Text as variable-length strings (zarr v3's ``string``: no fixed width to outgrow)."""
    if v.dtype.kind in "UO":
        return xr.Variable(v.dims, np.asarray(v.values).astype(np.dtypes.StringDType()),
                           v.attrs, v.encoding)
    return v


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Without zarr's notes on consolidated metadata and string dtypes (zarr v3)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
        yield


#: chunks smaller than this (bytes) are stored uncompressed
_SMALL_CHUNK = 64 * 1024


def template(sample: xr.Dataset, layout: Layout, coords: dict[str, xr.Variable],
             attrs: dict) -> xr.Dataset:
    """The store's Dataset with lazy (dask) arrays where scenarios go, from one chunk's
    Dataset ``sample`` on the store's dimensions (any size along them)."""
    import dask.array as da

    sizes = dict(zip(layout.dims, layout.shape))
    zchunks = dict(zip(layout.dims, layout.chunks))
    out: dict[str, xr.Variable] = {}
    for name, v in sample.variables.items():
        if not set(layout.dims) & set(v.dims):
            out[name] = _strings(v.to_base_variable())
            continue
        shape = tuple(sizes.get(d, v.sizes[d]) for d in v.dims)
        chunks = tuple(zchunks.get(d, v.sizes[d]) for d in v.dims)
        dt = v.dtype
        if dt.kind in "UO":
            dt = np.dtypes.StringDType()
            fill: Any = ""
        elif dt.kind == "f":
            fill = np.nan
        elif dt.kind in "iu":
            fill = -1
        else:
            fill = 0
        out[name] = xr.Variable(v.dims, da.full(shape, fill, dtype=dt, chunks=chunks), v.attrs)
        if dt.kind in "fiu" and np.prod(chunks) * dt.itemsize < _SMALL_CHUNK:
            # a summary's chunk is a few hundred bytes: compressing it costs more time than
            # it saves space (a quarter of a chunk's write)
            out[name].encoding["compressors"] = None
    out[DONE] = xr.Variable(layout.dims, da.zeros(layout.shape, dtype=np.int8,
                                                  chunks=layout.chunks), _DONE_ATTRS)
    for v in out.values():
        if v.dtype.kind in "iu":
            v.encoding["_FillValue"] = None     # integers stay integers (0 until written)
    out.update({k: _strings(c) for k, c in coords.items()})
    data = {k: v for k, v in out.items() if k in sample.data_vars or k == DONE}
    return xr.Dataset(data, coords={k: v for k, v in out.items() if k not in data}, attrs=attrs)


def create(path: Path, tmpl: xr.Dataset) -> None:
    """Write the template (metadata and the coordinates known in advance)."""
    with _quiet():
        tmpl.to_zarr(path, mode="a", compute=False, zarr_format=3, consolidated=True)


#: the zarr arrays of the store last written to by this process (a worker writes chunk
#: after chunk into one store): ``(path, metadata stamp, {name: array})``
_OPEN: list = []


def _arrays(path: str, names: list[str]) -> dict[str, Any]:
    """The store's arrays ``names``, opened once per process and store (their metadata
    is fixed by the template; a store written again from a new template, with another
    modification stamp on its ``zarr.json``, is opened again)."""
    import zarr

    st = os.stat(os.path.join(path, "zarr.json"))
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    if not _OPEN or _OPEN[0][:2] != (path, stamp) or not set(names) <= _OPEN[0][2].keys():
        group = zarr.open_group(path, mode="r+", zarr_format=3)
        _OPEN[:] = [(path, stamp, {k: group[k] for k in names})]
    return _OPEN[0][2]


def write_chunk(path: str | Path, ds: xr.Dataset, layout: Layout, start: int,
                stop: int) -> None:
    """Write a chunk's Dataset into its region, then its completion flags.

    Straight into the zarr arrays (the template fixed their metadata; opened once per
    process), all of them in one pass of zarr's event loop, then the flags: a quarter
    of the time of ``Dataset.to_zarr(region=...)``, which reads and checks every
    array's metadata and writes one array after the other.
    """
    reg = layout.region(start, stop)
    ds = layout.unstack(ds, start, stop)
    items = []
    for k, v in ds.variables.items():
        if not set(layout.dims) & set(v.dims) or k in layout.dims:
            continue
        vals = np.asarray(v.values)
        items.append((k, tuple(reg.get(d, slice(None)) for d in v.dims),
                      vals.astype(np.dtypes.StringDType()) if vals.dtype.kind in "UO" else vals))
    with _quiet():
        arrays = _arrays(str(path), [k for k, _, _ in items] + [DONE])
        _write_together(arrays, items)
        arrays[DONE][tuple(reg[d] for d in layout.dims)] = 1


def _write_together(arrays: dict, items: list) -> None:
    """Write a chunk's arrays concurrently through zarr's asynchronous layer (about half
    the time of one array after the other); zarr keeps that layer private, so any
    change there falls back to the public, sequential ``array[region] = values``."""
    try:
        import asyncio

        from zarr.core.sync import sync

        async def write() -> None:
            await asyncio.gather(*[arrays[k]._async_array.setitem(sl, vals)
                                   for k, sl, vals in items])
    except (ImportError, AttributeError):
        write = None
    if write is not None and all(hasattr(arrays[k], "_async_array") for k, _, _ in items):
        sync(write())
        return
    for k, sl, vals in items:
        arrays[k][sl] = vals


def done_tasks(path: Path, layout: Layout) -> set[int]:
    """The chunks whose scenarios are all flagged written."""
    with _quiet():
        flags = np.asarray(xr.open_zarr(path, consolidated=True)[DONE].values).ravel()
    return {i for i, (a, b) in enumerate(layout.tasks) if np.all(flags[a:b] == 1)}


def read_spec(path: Path) -> dict | None:
    """The ``sweep`` attribute of an existing store (None if it is not a sweep store)."""
    try:
        with _quiet():
            ds = xr.open_zarr(path, consolidated=True)
        return json.loads(ds.attrs["sweep"])
    except Exception:           # noqa: BLE001 - anything but a readable sweep store
        return None


class Lock:
    """An exclusive lock on a store (``flock`` on its directory, so the store holds
    nothing but zarr's files): a second sweep writing there is refused (one line)."""

    def __init__(self, path: Path, key: str = "output"):
        self.path, self.key = path, key
        self.fd: int | None = None

    def __enter__(self) -> Lock:
        try:
            import fcntl
        except ImportError:             # pragma: no cover - not POSIX: no lock
            return self
        self.fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = None
            raise ScenarioError(self.key, str(self.path), "a store no other sweep is "
                                "writing to", detail="another csfmodel sweep is running "
                                "there") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)          # closing releases the lock
            self.fd = None


def open_store(path: str | Path) -> xr.Dataset:
    """A sweep store, lazily (:func:`xarray.open_zarr`), also while the sweep runs."""
    p = Path(path)
    if not (p / "zarr.json").exists():
        raise ScenarioError("store", str(p), "a zarr store written by csfmodel sweep")
    with _quiet():
        return xr.open_zarr(p, consolidated=True)
