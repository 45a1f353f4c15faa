"""The matrix J in structured form: the state layout, :class:`LinearSystem` and the
assembler that fills it from transfers (the transfers themselves, i.e. the model's
equations, are in ``_system.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class _Step:
    """Where the entries of one ``_Assembler._add`` call land in the structured arrays.

    ``r``/``c``: the call's row and column indices (as given), ``vt``: the trailing shape
    of its values; ``shape``/``size``: the entries after broadcasting; ``targets``: per
    structured array (name), the indices of its entries, which entries go there (``sel``)
    and whether those indices are distinct (one fancy-indexed add) or not (``np.add.at``).
    """

    r: np.ndarray
    c: np.ndarray
    vt: tuple[int, ...]
    shape: tuple[int, ...]
    size: int
    targets: tuple[tuple[str, tuple[np.ndarray, ...], np.ndarray, bool], ...]
    #: the index arrays as given, where they are read-only (their values cannot change):
    #: a later call passing the same objects matches without comparing values
    r_given: Any = None
    c_given: Any = None

    def matches(self, r, c, vt: tuple[int, ...]) -> bool:
        if vt != self.vt:
            return False
        if r is self.r_given and c is self.c_given:     # the same (read-only) index arrays
            return True
        return _same(r, self.r) and _same(c, self.c)

    @classmethod
    def of(cls, r, c, vt: tuple[int, ...], n: int, m: int) -> _Step:
        r0, c0 = np.array(r, np.int64), np.array(c, np.int64)
        shape = np.broadcast_shapes(r0.shape, c0.shape, vt)
        rr = np.broadcast_to(r0, shape).ravel()
        cc = np.broadcast_to(c0, shape).ravel()
        s = n + m
        targets: list = []

        def put(name: str, mask: np.ndarray, *idx: np.ndarray) -> None:
            sel = np.flatnonzero(mask)
            if sel.size:
                idx = tuple(i[sel] for i in idx)
                flat = idx[0] if len(idx) == 1 else idx[0] * (s + len(COMPARTMENTS)) + idx[1]
                targets.append((name, idx, sel, len(np.unique(flat)) == len(flat)))

        spinal = (rr < n) & (cc < n)
        d, lo, up = spinal & (rr == cc), spinal & (rr == cc + 1), spinal & (cc == rr + 1)
        if np.any(spinal & ~(d | lo | up)):
            raise AssertionError("transfer outside the tridiagonal spinal block")
        put("diag", d, rr)
        put("lower", lo, cc)
        put("upper", up, rr)
        cord = (rr < s) & (cc < s) & ~spinal
        d = cord & (rr >= n) & (cc >= n) & (rr == cc)
        to_cord = cord & (rr >= n) & (cc == rr - n)
        to_csf = cord & (cc >= n) & (rr == cc - n)
        if np.any(cord & ~(d | to_cord | to_csf)):
            raise AssertionError("cord coupled to a cell other than its own")
        put("cord_diag", d, rr - n)
        put("csf_to_cord", to_cord, cc)
        put("cord_to_csf", to_csf, rr)
        put("rows", (rr >= s) & (cc < s), rr - s, cc)
        put("cols", (rr < s) & (cc >= s), rr, cc - s)
        put("block", (rr >= s) & (cc >= s), rr - s, cc - s)
        def frozen(a: Any) -> Any:
            return a if isinstance(a, np.ndarray) and not a.flags.writeable else None

        return cls(r=r0, c=c0, vt=tuple(vt), shape=tuple(shape), size=int(rr.size),
                   targets=tuple(targets), r_given=frozen(r), c_given=frozen(c))


def _same(x, ref: np.ndarray) -> bool:
    """``x`` (an int or an index array) has the values of ``ref``."""
    if isinstance(x, (int, np.integer)):
        return ref.ndim == 0 and int(ref) == x
    return np.shape(x) == ref.shape and bool(np.all(x == ref))


#: the replay plans of the assembly, per (spinal cells, cord cells, batched): per
#: ``_add`` call of ``_system._assemble`` in order, the :class:`_Step` of each variant
#: seen (a batched coefficient is ``(B, 1)`` in one batch and a scalar in another)
_PLANS: dict[tuple[int, int, bool], list[list[_Step]]] = {}
_MAX_PLANS = 64
_MAX_VARIANTS = 4


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
        key = (n, m, bool(lead))
        if key not in _PLANS and len(_PLANS) >= _MAX_PLANS:
            _PLANS.pop(next(iter(_PLANS)))
        self._plan: list[list[_Step]] = _PLANS.setdefault(key, [])
        self._pos = 0

    def _add(self, r, c, v) -> None:
        """Add ``J[r, c] += v`` elementwise into the structured arrays.

        Where each entry lands depends only on ``r`` and ``c`` (index arrays built from
        the cell counts), so it is worked out once per call site and cell counts
        (:class:`_Step`, kept in :data:`_PLANS`) and replayed for every later model of
        that shape: only the values are computed per model. Repeated entries accumulate
        in order (``np.add.at``), as a loop would.
        """
        v = np.asarray(v, self.dtype)
        vt = v.shape[-1:] if self.lead and v.ndim == 2 else v.shape
        plan, pos = self._plan, self._pos
        if pos == len(plan):
            plan.append([])
        variants = plan[pos]
        step = next((st for st in variants if st.matches(r, c, vt)), None)
        if step is None:
            step = _Step.of(r, c, vt, self.n, self.m)
            if len(variants) >= _MAX_VARIANTS:
                variants.pop(0)
            variants.append(step)
        self._pos = pos + 1
        # one value for every entry (of each system of a batch) is added as it is,
        # broadcast by the addition itself; others are laid out over the entries
        one = v.size == 1 or (self.lead and v.shape == self.lead + (1,))
        if not one:
            full = self.lead + step.shape
            vals = (v if v.shape == full else np.broadcast_to(v, full)).reshape(
                self.lead + (step.size,))
        for name, idx, sel, unique in step.targets:
            arr = getattr(self, name)
            add = v if one else vals[..., sel]
            if unique:
                arr[(Ellipsis, *idx)] += add
            else:
                np.add.at(arr, (Ellipsis, *idx), add)

    def flux(self, src, dst, k, coef) -> None:
        """Add ``flux(src -> dst) = coef * y[k]`` (conservative by construction)."""
        self._add(src, k, -np.asarray(coef, self.dtype))
        self._add(dst, k, np.asarray(coef, self.dtype))

    def exchange(self, a, b, cl, vol_a, vol_b) -> None:
        """Add ``flux(a -> b) = cl * (y[a]/vol_a - y[b]/vol_b)``."""
        cl = np.asarray(cl, self.dtype)
        self.flux(a, b, a, cl / vol_a)
        self.flux(b, a, b, cl / vol_b)

