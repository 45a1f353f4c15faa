"""Time-stepping methods as data: the ESDIRK tableaus used by the numba and jax backends.

A method is written once, here, as numbers (diffrax keeps its Butcher tableaus
as data the same way); the steppers of :mod:`~csfmodel.solvers._numba_kernels`
and :mod:`~csfmodel.solvers.jax_backend` take any tableau of this form, so a
method is independent of the backend that runs it.

Every method here is a stiffly accurate, L-stable ESDIRK method: an explicit
first stage, then implicit stages that all solve with the same matrix
``I - gamma h J`` (one factorization per step size), the last stage being the
new state. The embedded weights ``b_hat`` give the local error estimate
``h sum_i (b_i - b_hat_i) F_i`` (filtered through ``(I - gamma h J)^{-1}`` by
the steppers, as Hosea & Shampine do, so stiff components are not
over-estimated).

The constants of the dense-output check (how much the cubic Hermite interpolant
may deviate from the first implicit stage right after a change of the inputs)
are part of the error control of these methods and live here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Tableau", "TABLEAUS", "METHODS", "INTERP_SLACK", "INTERP_WINDOW"]


@dataclass(frozen=True, eq=False)
class Tableau:
    """A stiffly accurate ESDIRK method.

    Attributes
    ----------
    name
        What the user passes as ``method``.
    gamma
        Diagonal of the Butcher matrix (every implicit stage solves
        ``(I - gamma h J) Y_i = ...``).
    A
        Butcher matrix, ``(s, s)``: row 0 is zero (explicit first stage), the
        diagonal from row 1 on is ``gamma``, the last row is the weights ``b``.
    b_hat
        Embedded weights, ``(s,)``.
    order, embedded_order
        Orders of the method and of the embedded one.
    reference
        Where the coefficients come from.
    """

    name: str
    gamma: float
    A: np.ndarray
    b_hat: np.ndarray
    order: int
    embedded_order: int
    reference: str

    @property
    def stages(self) -> int:
        return self.A.shape[0]

    @property
    def b(self) -> np.ndarray:
        """The weights (stiffly accurate: the last row of ``A``)."""
        return self.A[-1]

    @property
    def error_weights(self) -> np.ndarray:
        """``b - b_hat``: the local error estimate is ``h sum_i e_i F_i``."""
        return self.A[-1] - self.b_hat

    @property
    def c1(self) -> float:
        """Abscissa of the first implicit stage (a trapezoidal step when ``A[1,0] = gamma``)."""
        return float(self.A[1, 0] + self.A[1, 1])

    def stability_function(self, z: complex) -> complex:
        """``R(z)`` of the method (for the L-stability test)."""
        s = self.stages
        return 1.0 + z * self.b @ np.linalg.solve(np.eye(s) - z * self.A, np.ones(s))


def _trbdf2() -> Tableau:
    # TR-BDF2, gamma = 2 - sqrt 2, in the ESDIRK form of Hosea & Shampine (1996): the
    # diagonal is d = gamma / 2 = 1 - 1/sqrt 2
    d = 1.0 - 1.0 / math.sqrt(2.0)
    w = math.sqrt(2.0) / 4.0
    A = np.array([[0.0, 0.0, 0.0], [d, d, 0.0], [w, w, d]])
    b_hat = np.array([(1.0 - w) / 3.0, (3.0 * w + 1.0) / 3.0, d / 3.0])
    return Tableau("trbdf2", d, A, b_hat, 2, 3,
                   "Bank et al. 1985, IEEE Trans. Electron Devices 32:1992; Hosea & Shampine "
                   "1996, Appl. Numer. Math. 20:21 (embedded third-order weights)")


def _esdirk3() -> Tableau:
    # ESDIRK3(2)4L[2]SA, the implicit part of ARK3(2)4L[2]SA: order 3, L-stable,
    # stiffly accurate, embedded order 2
    g = 1767732205903.0 / 4055673282236.0
    A = np.zeros((4, 4))
    A[1, :2] = [g, g]
    A[2, :3] = [2746238789719.0 / 10658868560708.0, -640167445237.0 / 6845629431997.0, g]
    A[3, :4] = [1471266399579.0 / 7840856788654.0, -4482444167858.0 / 7529755066697.0,
                11266239266428.0 / 11593286722821.0, g]
    b_hat = np.array([2756255671327.0 / 12835298489170.0,
                      -10771552573575.0 / 22201958757719.0,
                      9247589265047.0 / 10645013368117.0,
                      2193209047091.0 / 5459859503100.0])
    return Tableau("esdirk3", g, A, b_hat, 3, 2,
                   "Kennedy & Carpenter 2003, Appl. Numer. Math. 44:139")


#: every method by name; the backends that step with tableaus accept all of them
TABLEAUS: dict[str, Tableau] = {t.name: t for t in (_esdirk3(), _trbdf2())}
METHODS = tuple(TABLEAUS)

#: the interpolant-vs-stage discrepancy may be this many times the tolerance (the first
#: stage is only second order: its own error may be that large; a transient left inside
#: the step gives discrepancies far above it)
INTERP_SLACK = 3.0

#: ... checked for steps starting less than this many step lengths after an input change
#: (fast transients arise only at dose events: later they have decayed, or the error
#: estimate of the step sees them)
INTERP_WINDOW = 2.0
