"""The matrix J in structured form: the state layout, :class:`LinearSystem` and the
assembler that fills it from transfers (the transfers themselves, i.e. the model's
equations, are in ``_system.py``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Well-mixed compartments after the spatial (spinal CSF, cord) states.
COMPARTMENTS: tuple[str, ...] = (
    "cisterna", "cortical_sas", "ventricles", "brain",
    "plasma", "shallow", "deep", "gut_ir", "gut_cr", "eliminated",
)
_C = {name: k for k, name in enumerate(COMPARTMENTS)}


@dataclass(frozen=True)
class LinearSystem:
    r"""The matrix :math:`J` of ``dy/dt = J y + u`` in structured form.

    ``J`` is a tridiagonal spinal block, a diagonal cord block coupled cell by
    cell to the spinal block, and a dense border of ``m`` well-mixed
    compartments. Backends consume these arrays directly; :meth:`to_sparse`
    gives the same matrix for the scipy reference.

    Attributes
    ----------
    lower, diag, upper
        Spinal tridiagonal block: ``J[i+1, i]``, ``J[i, i]``, ``J[i, i+1]``.
    cord_diag, csf_to_cord, cord_to_csf
        ``J[N+j, N+j]``, ``J[N+j, j]``, ``J[j, N+j]`` for cord cell ``j``.
    border_rows
        ``J[N+M+k, :N+M]`` (compartments receiving from spatial states), (m, N+M).
    border_cols
        ``J[:N+M, N+M+k]`` (spatial states receiving from compartments), (N+M, m).
    block
        ``J[N+M:, N+M:]`` (m, m).
    volume
        Divisor turning each state's amount into the concentration reported for
        it (mL): CSF volume, cord ``W_j K_p`` (unbound), compartment volumes,
        brain ``M K_p`` (unbound), plasma ``V1`` (total); 1 for gut and eliminated.
    """

    n_spinal: int
    n_cord: int
    lower: np.ndarray
    diag: np.ndarray
    upper: np.ndarray
    cord_diag: np.ndarray
    csf_to_cord: np.ndarray
    cord_to_csf: np.ndarray
    border_rows: np.ndarray
    border_cols: np.ndarray
    block: np.ndarray
    volume: np.ndarray

    @property
    def n_state(self) -> int:
        return self.n_spinal + self.n_cord + len(COMPARTMENTS)

    @property
    def n_spatial(self) -> int:
        return self.n_spinal + self.n_cord

    def index(self, compartment: str) -> int:
        """State index of a well-mixed compartment."""
        return self.n_spatial + _C[compartment]

    def to_sparse(self):
        """``J`` as a scipy CSR matrix (reference backend, tests)."""
        import scipy.sparse as sp

        n, m, s = self.n_spinal, self.n_cord, self.n_spatial
        i = np.arange(n)
        j = np.arange(m)
        rows = [i, i[1:], i[:-1], n + j, n + j, j]
        cols = [i, i[:-1], i[1:], n + j, j, n + j]
        vals = [self.diag, self.lower, self.upper, self.cord_diag, self.csf_to_cord,
                self.cord_to_csf]
        r, c = np.nonzero(self.border_rows)
        rows.append(s + r)
        cols.append(c)
        vals.append(self.border_rows[r, c])
        r, c = np.nonzero(self.border_cols)
        rows.append(r)
        cols.append(s + c)
        vals.append(self.border_cols[r, c])
        r, c = np.nonzero(self.block)
        rows.append(s + r)
        cols.append(s + c)
        vals.append(self.block[r, c])
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(self.n_state, self.n_state))

    def to_dense(self) -> np.ndarray:
        """``J`` as a dense array (small grids and tests only)."""
        return self.to_sparse().toarray()

    def matvec(self, y: np.ndarray) -> np.ndarray:
        """``J @ y`` using the structure, O(N)."""
        n, m, s = self.n_spinal, self.n_cord, self.n_spatial
        out = np.empty_like(y)
        sp_ = y[:n]
        out[:n] = self.diag * sp_
        out[1:n] += self.lower * sp_[:-1]
        out[: n - 1] += self.upper * sp_[1:]
        out[:m] += self.cord_to_csf * y[n:s]
        out[n:s] = self.cord_diag * y[n:s] + self.csf_to_cord * sp_[:m]
        out[:s] += self.border_cols @ y[s:]
        out[s:] = self.border_rows @ y[:s] + self.block @ y[s:]
        return out


class _Assembler:
    """Collects transfers ``flux(src -> dst) = coef * y[k]`` into structured arrays.

    With ``batch=B`` every array has a leading axis of ``B`` systems sharing the
    structure (:func:`csfmodel.model.build_models`): a coefficient with two
    dimensions, ``(B, k)`` or ``(B, 1)``, holds one value per system; one with at most
    one dimension is the same for all of them. The entries are added in the same order
    as for one system, so each system's arrays are those of a model built alone.
    """

    def __init__(self, n: int, m: int, dtype: type = float, batch: int | None = None):
        # dtype complex: the complex-step derivative of the assembly (csfmodel.fitting)
        self.n, self.m = n, m
        self.s = n + m
        self.dtype = np.dtype(dtype)
        self.lead: tuple[int, ...] = () if batch is None else (int(batch),)
        nc = len(COMPARTMENTS)
        lead = self.lead
        self.lower = np.zeros(lead + (n - 1,), self.dtype)
        self.diag = np.zeros(lead + (n,), self.dtype)
        self.upper = np.zeros(lead + (n - 1,), self.dtype)
        self.cord_diag = np.zeros(lead + (m,), self.dtype)
        self.csf_to_cord = np.zeros(lead + (m,), self.dtype)
        self.cord_to_csf = np.zeros(lead + (m,), self.dtype)
        self.rows = np.zeros(lead + (nc, self.s), self.dtype)
        self.cols = np.zeros(lead + (self.s, nc), self.dtype)
        self.block = np.zeros(lead + (nc, nc), self.dtype)

    def _entries(self, r, c, v) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat rows, columns and values (``lead + (k,)``) of the nonzero entries."""
        if not self.lead:
            r, c, v = np.broadcast_arrays(np.asarray(r), np.asarray(c),
                                          np.asarray(v, self.dtype))
            keep = v.ravel() != 0.0
            return (r.ravel()[keep].astype(np.int64), c.ravel()[keep].astype(np.int64),
                    v.ravel()[keep])
        v = np.asarray(v, self.dtype)
        r, c = np.broadcast_arrays(np.asarray(r), np.asarray(c))
        shape = np.broadcast_shapes(r.shape, v.shape[-1:] if v.ndim == 2 else v.shape)
        r = np.broadcast_to(r, shape).ravel()
        c = np.broadcast_to(c, shape).ravel()
        v = np.broadcast_to(v, self.lead + shape).reshape(self.lead + (r.size,))
        keep = np.any(v != 0.0, axis=0)
        return r[keep].astype(np.int64), c[keep].astype(np.int64), v[:, keep]

    def _add(self, r: np.ndarray, c: np.ndarray, v: np.ndarray) -> None:
        """Add ``J[r, c] += v`` elementwise into the structured arrays (vectorized;
        ``np.add.at`` accumulates repeated entries in order, as a loop would)."""
        if not self.lead:
            if np.ndim(r) == 0 and np.ndim(c) == 0 and np.ndim(v) == 0:
                vv = np.asarray(v, self.dtype).item()
                if vv != 0.0:
                    self._add_one(int(r), int(c), vv)
                return
            r, c, v = np.broadcast_arrays(np.asarray(r), np.asarray(c),
                                          np.asarray(v, self.dtype))
            if r.size <= 8:   # a few entries: plain loop, cheaper than array bookkeeping
                for rr, cc, vv in zip(r.ravel().tolist(), c.ravel().tolist(),
                                      v.ravel().tolist()):
                    if vv != 0.0:
                        self._add_one(rr, cc, vv)
                return
        r, c, v = self._entries(r, c, v)

        lead = bool(self.lead)

        def at(arr: np.ndarray, *idx: np.ndarray, vals: np.ndarray) -> None:
            if not lead:
                np.add.at(arr, idx if len(idx) > 1 else idx[0], vals)
                return
            flat = idx[0] if len(idx) == 1 else np.ravel_multi_index(idx, arr.shape[1:])
            if len(np.unique(flat)) == len(flat):      # no repeats: one indexed add
                arr[(Ellipsis, *idx)] += vals
            else:
                np.add.at(arr, (Ellipsis, *idx), vals)

        n, s = self.n, self.s
        spinal = (r < n) & (c < n)
        only_spinal = bool(spinal.all())
        if only_spinal or spinal.any():
            rs, cs, vs = r[spinal], c[spinal], v[..., spinal]
            d, lo, up = rs == cs, rs == cs + 1, cs == rs + 1
            if not np.all(d | lo | up):
                raise AssertionError("transfer outside the tridiagonal spinal block")
            at(self.diag, rs[d], vals=vs[..., d])
            at(self.lower, cs[lo], vals=vs[..., lo])
            at(self.upper, rs[up], vals=vs[..., up])
            if only_spinal:
                return
        cord = (r < s) & (c < s) & ~spinal
        if cord.any():
            rs, cs, vs = r[cord], c[cord], v[..., cord]
            d = (rs >= n) & (cs >= n) & (rs == cs)
            to_cord = (rs >= n) & (cs == rs - n)
            to_csf = (cs >= n) & (rs == cs - n)
            if not np.all(d | to_cord | to_csf):
                raise AssertionError("cord coupled to a cell other than its own")
            at(self.cord_diag, rs[d] - n, vals=vs[..., d])
            at(self.csf_to_cord, cs[to_cord], vals=vs[..., to_cord])
            at(self.cord_to_csf, rs[to_csf], vals=vs[..., to_csf])
        m = (r >= s) & (c < s)
        if m.any():
            at(self.rows, r[m] - s, c[m], vals=v[..., m])
        m = (r < s) & (c >= s)
        if m.any():
            at(self.cols, r[m], c[m] - s, vals=v[..., m])
        m = (r >= s) & (c >= s)
        if m.any():
            at(self.block, r[m] - s, c[m] - s, vals=v[..., m])

    def _add_one(self, rr: int, cc: int, vv: float | complex) -> None:
        n, s = self.n, self.s
        if rr < n and cc < n:
            if rr == cc:
                self.diag[rr] += vv
            elif rr == cc + 1:
                self.lower[cc] += vv
            elif cc == rr + 1:
                self.upper[rr] += vv
            else:
                raise AssertionError("transfer outside the tridiagonal spinal block")
        elif rr < s and cc < s:
            if rr >= n and cc >= n and rr == cc:
                self.cord_diag[rr - n] += vv
            elif rr >= n and cc == rr - n:
                self.csf_to_cord[cc] += vv
            elif cc >= n and rr == cc - n:
                self.cord_to_csf[rr] += vv
            else:
                raise AssertionError("cord coupled to a cell other than its own")
        elif rr >= s and cc < s:
            self.rows[rr - s, cc] += vv
        elif rr < s:
            self.cols[rr, cc - s] += vv
        else:
            self.block[rr - s, cc - s] += vv

    def flux(self, src, dst, k, coef) -> None:
        """Add ``flux(src -> dst) = coef * y[k]`` (conservative by construction)."""
        self._add(src, k, -np.asarray(coef, self.dtype))
        self._add(dst, k, np.asarray(coef, self.dtype))

    def exchange(self, a, b, cl, vol_a, vol_b) -> None:
        """Add ``flux(a -> b) = cl * (y[a]/vol_a - y[b]/vol_b)``."""
        cl = np.asarray(cl, self.dtype)
        self.flux(a, b, a, cl / vol_a)
        self.flux(b, a, b, cl / vol_b)

