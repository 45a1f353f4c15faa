"""The spatial grid: cell-centred finite volumes along the spinal SAS and the cord."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from csfmodel.anatomy import Anatomy


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
    w = _segment_weights(anatomy, edges)
    return Grid(edges=edges, csf_volume=_cell_volumes(anatomy, edges),
                face_area=anatomy.csf_area(edges), cord_volume=w.sum(axis=0),
                segment_weights=w)


def _cell_volumes(anatomy: Anatomy, edges: np.ndarray) -> np.ndarray:
    """CSF volume of every cell, exact for the piecewise-linear A(z): the trapezoids between
    the cell's edges and the area nodes inside it, summed per cell (the same sums as
    :meth:`Anatomy.csf_volume_between` on each cell, for all cells at once)."""
    zn, an = anatomy._shape_nodes()
    pts = np.union1d(edges, zn[(zn > edges[0]) & (zn < edges[-1])])
    a = np.interp(pts, zn, an)
    pieces = np.diff(pts) * (a[1:] + a[:-1]) / 2.0
    return np.add.reduceat(pieces, np.searchsorted(pts, edges[:-1])) * anatomy._area_scale()


def _segment_weights(anatomy: Anatomy, edges: np.ndarray) -> np.ndarray:
    """Cord-volume overlap (mL) of each (cord segment, cord cell) pair: the cord area
    integrated over the overlap by 16-point Gauss-Legendre, all pairs at once."""
    m = int(np.searchsorted(edges, anatomy.conus_z, side="left"))  # cells overlapping [0, conus)
    seg = anatomy.segment_edges()
    xg, wg = np.polynomial.legendre.leggauss(16)
    a = np.maximum(seg[:-1, None], edges[None, :m])          # (segments, cells)
    b = np.minimum(seg[1:, None], edges[None, 1:m + 1])
    half = 0.5 * (b - a)
    x = half[..., None] * xg + (0.5 * (a + b))[..., None]
    w = half * np.sum(wg * anatomy.cord_area(x), axis=-1)
    return np.where(b > a, w, 0.0)
