"""The spatial grid: cell-centred finite volumes along the spinal SAS and the cord."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from csfmodel.anatomy import CORD_SEGMENTS, Anatomy


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
    vol = np.array([anatomy.csf_volume_between(a, b) for a, b in zip(edges[:-1], edges[1:])])
    conus = anatomy.conus_z
    m = int(np.searchsorted(edges, conus, side="left"))  # cells overlapping [0, conus)
    seg = anatomy.segment_edges()
    # cord volume overlaps of each (segment, cell) pair, 16-point Gauss-Legendre
    xg, wg = np.polynomial.legendre.leggauss(16)

    def cord_int(a: float, b: float) -> float:
        if b <= a:
            return 0.0
        x = 0.5 * (b - a) * xg + 0.5 * (a + b)
        return float(0.5 * (b - a) * np.sum(wg * anatomy.cord_area(x)))

    w = np.zeros((len(CORD_SEGMENTS), m))
    for s in range(len(CORD_SEGMENTS)):
        for j in range(m):
            w[s, j] = cord_int(max(seg[s], edges[j]), min(seg[s + 1], edges[j + 1]))
    return Grid(edges=edges, csf_volume=vol, face_area=anatomy.csf_area(edges),
                cord_volume=w.sum(axis=0), segment_weights=w)

