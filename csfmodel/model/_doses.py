"""Dose inputs: an intrathecal bolus as a jump in the state (:func:`deposit`) and the
piecewise-constant schedule of jumps and rates every backend consumes."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from csfmodel.anatomy import Anatomy
from csfmodel.dosing import Bolus, DoseEvents, RateStep

from ._grid import Grid

if TYPE_CHECKING:
    from ._system import Model


def _hat_weights(grid: Grid, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation weights of a point z onto cell centres (conservative)."""
    c = grid.centers
    if z <= c[0]:
        return np.array([0]), np.array([1.0])
    if z >= c[-1]:
        return np.array([grid.n - 1]), np.array([1.0])
    k = int(np.searchsorted(c, z) - 1)
    t = (z - c[k]) / (c[k + 1] - c[k])
    return np.array([k, k + 1]), np.array([1.0 - t, t])


# Complex-step safety: :mod:`csfmodel.fitting` differentiates a deposit by passing a
# complex parameter (value + i h); comparisons then use the real part and the helpers
# below replace the real-only numpy functions. Real inputs take the original paths.
def _interp(x, xp: np.ndarray, fp: np.ndarray):
    """``np.interp``, also for complex ``x`` (piecewise linear in the real part)."""
    if not np.iscomplexobj(x):
        return np.interp(x, xp, fp)
    xr = np.real(x)
    k = np.clip(np.searchsorted(xp, xr, side="right") - 1, 0, len(xp) - 2)
    v = fp[k] + (x - xp[k]) * (fp[k + 1] - fp[k]) / (xp[k + 1] - xp[k])
    return np.where(xr <= xp[0], fp[0] + 0j, np.where(xr >= xp[-1], fp[-1] + 0j, v))


def _area(anatomy: Anatomy, z):
    """``anatomy.csf_area(z)``, also for complex ``z``."""
    if not np.iscomplexobj(z):
        return anatomy.csf_area(z)
    zn, an = anatomy._shape_nodes()
    return _interp(z, zn, an) * anatomy._area_scale()


def _volume_between(anatomy: Anatomy, a, b):
    """``anatomy.csf_volume_between(a, b)``, also for complex ends (exact: the area is
    piecewise linear, its integral piecewise quadratic); complex ends may be arrays
    (every cell at once)."""
    if not (np.iscomplexobj(a) or np.iscomplexobj(b)):
        return anatomy.csf_volume_between(a, b)
    zn, an = anatomy._shape_nodes()
    slope = np.diff(an) / np.diff(zn)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (an[1:] + an[:-1]) * np.diff(zn))])

    def upto(z):
        z = np.asarray(z)
        k = np.clip(np.searchsorted(zn, np.real(z), side="right") - 1, 0, len(zn) - 2)
        d = z - zn[k]
        return np.where(np.real(z) >= zn[-1], cum[-1] + an[-1] * (z - zn[-1]),
                        cum[k] + an[k] * d + 0.5 * slope[k] * d * d)

    return (upto(b) - upto(a)) * anatomy._area_scale()


def _mod(x, period: float):
    """``np.mod``, also for complex ``x`` (the real part decides)."""
    if not np.iscomplexobj(x):
        return np.mod(x, period)
    return x - period * np.floor(np.real(x) / period)


def _number(x):
    """A float, or a complex on the complex-step path."""
    return complex(x) if np.iscomplexobj(x) else float(x)


def _ndtr(x):
    r"""The standard normal CDF ``scipy.special.ndtr``, also on the complex-step path.

    For complex ``x = a + i b`` with ``|b| (1 + |a|) < 1e-9`` (a complex step) it is
    :math:`\Phi(a) + i b \varphi(a)`: the Taylor terms left out are
    :math:`O(b^2 a)` relative, far below rounding, so the derivative
    :math:`\operatorname{Im} \Phi(a + i b) / b = \varphi(a)` is as exact as the complex
    step itself, at the cost of a real ``ndtr`` (scipy's complex ``ndtr`` evaluates the
    Faddeeva function, ~100x slower). Other complex ``x`` go to scipy.
    """
    from scipy.special import ndtr

    if not np.iscomplexobj(x):
        return ndtr(x)
    a, b = np.real(x), np.imag(x)
    if np.all(np.abs(b) * (1.0 + np.abs(a)) < 1e-9):
        return ndtr(a) + 1j * b * np.exp(-0.5 * a * a) / np.sqrt(2.0 * np.pi)
    return ndtr(x)


def _mixing_interval(anatomy: Anatomy, z0: float, mix_volume: float) -> tuple[float, float]:
    """The stretch [z1, z2] of spinal SAS holding ``mix_volume`` mL of CSF nearest z0.

    Equal volumes above and below the tip where there is room; where the closed
    end of the sac (or the foramen magnum) cuts one side off, the stretch extends
    on the other side, so that the injectate always mixes into ``mix_volume`` of
    CSF (or into the whole spinal CSF, if that is less).
    """
    total = anatomy.spinal_csf_volume
    L = anatomy.length
    below = anatomy.csf_volume_between(0.0, z0)   # CSF volume rostral of the tip
    lo, hi = below - 0.5 * mix_volume, below + 0.5 * mix_volume
    if np.real(hi) > total:
        lo, hi = lo - (hi - total), total
    if np.real(lo) < 0.0:
        lo, hi = 0.0, (total if np.real(hi - lo) > total else hi - lo)
    return _number(_z_at_volume(anatomy, lo, L)), _number(_z_at_volume(anatomy, hi, L))


def _z_at_volume(anatomy: Anatomy, v, L: float):
    """The z (cm) above which the spinal SAS holds ``v`` mL of CSF: the exact inverse of
    the cumulative volume (piecewise quadratic: the area is piecewise linear between the
    shape nodes), smooth in ``v`` between nodes, also for complex ``v``."""
    zn, an = anatomy._shape_nodes()
    a = an * anatomy._area_scale()
    dz = np.diff(zn)
    slope = np.diff(a) / dz
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (a[1:] + a[:-1]) * dz)])
    if np.real(v) <= 0.0:
        return 0.0
    if np.real(v) >= cum[-1]:
        return L
    k = int(np.clip(np.searchsorted(cum, np.real(v), side="right") - 1, 0, len(dz) - 1))
    rhs = v - cum[k]
    # a_k d + slope_k d^2 / 2 = rhs, in the form that has no cancellation (nor 0/0 where
    # the area is constant)
    return zn[k] + 2.0 * rhs / (a[k] + np.sqrt(a[k] * a[k] + 2.0 * slope[k] * rhs))


def deposit(model: Model, z: float, amount: float, volume: float = 0.0,
            injection_rate: float = np.inf, puncture: bool = True,
            spread: float | None = None) -> np.ndarray:
    r"""Distribution of an intrathecal bolus once its injection-driven spread is complete.

    Injection-driven spread: the injected volume ``V`` and its jet mix the dose
    within minutes into :math:`\kappa V` of CSF (``κ`` = ``injection_spread``),
    the CSF nearest the tip (:func:`_mixing_interval`: centred on the tip, pushed
    rostrally where the closed end of the sac leaves no room below), at a
    uniform concentration ``amount / (κ V)``; the injection jet smooths the
    edges over the injection time :math:`t_{inj} = V/\dot V` with a dispersion
    ``injection_mixing`` (a Gaussian of :math:`\sigma^2 = 2 D_{jet} t_{inj}`).
    The spread grows with the injected volume and hardly with the injection rate,
    as in CFD of the human CSF system (Khani 2022 Fluids Barriers CNS 19:8: a 3x
    larger bolus or a flush doubles brain exposure, a 5x faster one does not)
    and in phantoms (Linninger 2023 Front Physiol 14:1244016: large-volume
    infusions reach the cervical SAS within 10 min). Mass beyond the sac end is
    reflected; mass above z = 0 enters the cisterna. Small volumes (pump boluses)
    reduce to a point dose on the grid.

    Nothing is put into plasma: the whole dose starts in the CSF, whether it is
    given through a needle or an implanted catheter (``puncture`` is accepted
    for compatibility and has no effect). The injected volume itself leaves the
    CSF within minutes by pressure-driven outflow, but it carries at most the
    mixed concentration ``amount / (κ V)`` with it, i.e. less than
    ``1 / κ`` (a few %) of the dose even if all of it left at the injection
    site; see docs/validation.md ("No puncture loss").

    ``spread`` replaces κ (the distribution part of the way through the spread, see
    :func:`bolus_inputs`, which spreads a needle injection over minutes).
    """
    g = model.grid
    an = model.anatomy
    kappa = an.injection_spread if spread is None else spread
    y = np.zeros(model.system.n_state, complex if any(np.iscomplexobj(v) for v in (
        amount, volume, injection_rate, kappa, an.injection_mixing)) else float)
    mix = kappa * volume
    t_inj = volume / injection_rate if np.isfinite(injection_rate) else 0.0
    sigma = np.sqrt(2.0 * an.injection_mixing * t_inj)
    z1, z2 = _mixing_interval(an, z, mix) if np.real(mix) > 0 else (z, z)
    L = an.length
    cis = model.system.index("cisterna")
    if np.real(z2 - z1) > 0.1 * g.dz and np.real(sigma) < 0.1 * g.dz:
        # uniform concentration over [z1, z2], integrated exactly over the cells
        lo, hi = np.maximum(g.edges[:-1], z1), np.minimum(g.edges[1:], z2)
        if np.iscomplexobj(lo) or np.iscomplexobj(hi):
            vol = np.where(np.real(hi) > np.real(lo), _volume_between(an, lo + 0j, hi + 0j), 0.0)
        else:
            vol = np.array([_volume_between(an, a, b) if np.real(b) > np.real(a) else 0.0
                            for a, b in zip(lo, hi)])
        y[: g.n] += amount * vol / vol.sum()
        return y
    if np.real(z2 - z1) > 0.1 * g.dz:
        # the same profile as point masses (weights ~ A(z), i.e. uniform concentration)
        # no further apart than sigma / 2, then smoothed by the jet's Gaussian
        k_pts = int(np.clip(np.ceil(np.real(2.0 * (z2 - z1) / sigma)), 64, 20000))
        pts = z1 + (z2 - z1) * (np.arange(k_pts) + 0.5) / k_pts
        wt = _area(an, pts)
        wt = amount * wt / wt.sum()
    else:
        pts = np.array([z])
        wt = np.array([amount])
    p = np.where(np.real(pts) > L, _mod(pts, 2 * L), pts)
    p = np.where(np.real(p) > L, 2 * L - p, p)          # reflected at the closed sac end
    if np.real(sigma) < 0.1 * g.dz:
        y[cis] += wt[np.real(p) < 0].sum()              # pushed above the foramen magnum
        wt, p = wt[np.real(p) >= 0], p[np.real(p) >= 0]
        c = g.centers
        k = np.clip(np.searchsorted(c, np.real(p)) - 1, 0, g.n - 2)
        t = (p - c[k]) / (c[k + 1] - c[k])
        t = np.where(np.real(t) < 0.0, 0.0, np.where(np.real(t) > 1.0, 1.0, t))  # clamped
        np.add.at(y, k, wt * (1.0 - t))
        np.add.at(y, k + 1, wt * t)
        return y
    e = g.edges[None, :]
    pc = p[:, None]
    # Gaussian mass per cell plus its mirror image beyond the sac end; the mass above
    # z = 0 goes to the cisterna; each point's total is kept exactly (what a second
    # reflection would add is renormalized into the spinal cells)
    frac = np.diff(_ndtr((e - pc) / sigma), axis=1) - np.diff(_ndtr((2 * L - e - pc) / sigma),
                                                                axis=1)
    up = _ndtr(-p / sigma)
    share = 1.0 - up                                    # each point's share in the spine
    tot = frac.sum(axis=1)
    good = np.real(tot) > 0.0
    frac *= np.divide(share, tot, out=np.zeros_like(tot), where=good)[:, None]
    if np.iscomplexobj(frac):
        # complex step: the imaginary parts in the Gaussian's far tails are subnormal
        # (h ~ 1e-20 times a density ~ 1e-290), which makes the product below 100x
        # slower; below the smallest normal double they are zero to any output
        tiny = np.finfo(float).tiny
        frac = (np.where(np.abs(frac.real) < tiny, 0.0, frac.real)
                + 1j * np.where(np.abs(frac.imag) < tiny, 0.0, frac.imag))
    y[: g.n] += wt @ frac
    # a point far above the foramen magnum has all its mass in the cisterna: its
    # Gaussian tail in the spine underflows (tot == 0); whatever share is left of it
    # goes to the top cell rather than making 0/0
    np.add.at(y, np.where(np.real(p[~good]) < 0.5 * L, 0, g.n - 1), (wt * share)[~good])
    y[cis] += wt @ up
    return y


#: injected volumes (mL) from which the injection-driven spread takes
#: ``injection_mixing_time`` to complete (needle and catheter-port injections, 0.5-4
#: mL); smaller ones (pump boluses of tens of uL raise the CSF pressure by < 0.1 mmHg
#: and spread over ~1 cm) are spread at once
STAGED_MIN_VOLUME = 0.1
#: the times (in units of the mixing time) at which the spreading profile is laid
#: down; the profile moves linearly in between, and what is left at the last
#: (e^-5 = 0.7 % of the spread) is added at once there
SPREAD_STAGES = np.array([0.0, 0.0625, 0.125, 0.25, 0.375, 0.5, 0.75, 1.0, 1.25, 1.5,
                          2.0, 2.5, 3.0, 4.0, 5.0])


def _spreads_over_time(model: Model, bolus: Bolus) -> bool:
    """Whether a bolus spreads over the mixing time (else it is one jump)."""
    return bolus.target == "spinal" and model.anatomy.injection_mixing_time > 0 and \
        np.real(bolus.volume) >= STAGED_MIN_VOLUME and \
        np.real(model.anatomy.injection_spread) > 1.0


def bolus_inputs(model: Model, bolus: Bolus) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The inputs of one bolus: jumps and rates at times relative to its own.

    Returns ``(offsets, jumps, rates)``: ``jumps[k]`` (ug per state) is added at
    ``bolus.time + offsets[k]``, ``rates[k]`` (ug/min) acts from there to the next
    offset (``rates[-1]`` is 0). A bolus into plasma or a compartment is one jump.

    An intrathecal bolus spreads over the injection-driven mixing time
    :math:`\tau` (``injection_mixing_time``): the CSF volume it has mixed into grows
    from the injected volume to :math:`\kappa V`,

    .. math:: V_{mix}(t) = V + (\kappa - 1) V (1 - e^{-t/\tau}),

    its distribution at each time that of :func:`deposit` with :math:`\kappa V` replaced
    by :math:`V_{mix}(t)`. The model's own transport acts on top. The distribution is
    laid down at the times :data:`SPREAD_STAGES` x :math:`\tau` and moved linearly in
    between: a jump of the first distribution, then rates (ug/min, summing to 0 over
    the state: the spread moves the dose, it adds none), then what is left of the
    spread as a jump at :math:`5\tau`. The time constant is that of the pressure
    pulse an injection makes, :math:`\tau = R_{out} C` (outflow resistance times
    craniospinal compliance: 6-10 min), over which the injected volume drives CSF
    motion beyond the cardiac and respiratory one. Volumes below
    :data:`STAGED_MIN_VOLUME`, or :math:`\tau = 0`, spread at once (one jump).
    """
    n = model.system.n_state
    tau = model.anatomy.injection_mixing_time
    if bolus.target != "spinal":
        y = np.zeros(n, complex if np.iscomplexobj(bolus.amount) else float)
        y[model.system.index("plasma" if bolus.target == "plasma" else bolus.target)] = \
            bolus.amount
        return np.zeros(1), y[None, :], np.zeros((1, n))

    def at(spread=None):
        return deposit(model, bolus.site_z, bolus.amount, bolus.volume, bolus.injection_rate,
                       bolus.puncture, spread)

    kappa = model.anatomy.injection_spread
    if not _spreads_over_time(model, bolus):
        y = at()
        return np.zeros(1), y[None, :], np.zeros((1, n), y.dtype)
    offsets = float(tau) * SPREAD_STAGES
    profiles = [at(1.0 + (kappa - 1.0) * (1.0 - np.exp(-s))) for s in SPREAD_STAGES]
    jumps = np.zeros((len(offsets), n), profiles[0].dtype)
    rates = np.zeros_like(jumps)
    jumps[0] = profiles[0]
    for k in range(len(offsets) - 1):
        r = (profiles[k + 1] - profiles[k]) / (offsets[k + 1] - offsets[k])
        r[np.argmax(np.abs(r))] -= r.sum()        # zero-sum to round-off: moves, adds none
        rates[k] = r
    jumps[-1] = at() - profiles[-1]
    return offsets, jumps, rates


def add_bolus(t: np.ndarray, jumps: np.ndarray, rates: np.ndarray | None, time: float,
              inputs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Add a bolus's :func:`bolus_inputs` at ``time`` into a schedule's ``jumps`` and
    ``rates`` on its event times ``t`` (which hold every ``time + offset`` before the
    end; the parts at or after the end are left out). ``rates`` may have a leading batch
    axis (the same spread added to every member), or be None for a bolus made of one
    jump."""
    offsets, jd, rd = inputs
    at = time + offsets
    keep = int(np.searchsorted(at, t[-1], side="right")) if len(t) else 0
    k = np.searchsorted(t, at[:keep])
    jumps[k] += jd[:keep]
    ends = np.append(k[1:], len(t))
    for j in range(keep):
        if np.any(rd[j]):
            rates[..., k[j]:ends[j], :] += rd[j]        # type: ignore[index]


def bolus_times(boluses: Sequence[Bolus], model: Model) -> set[float]:
    """Every time at which a bolus adds a jump or changes its rate (:func:`bolus_inputs`)."""
    out: set[float] = set()
    for b in boluses:
        out.add(b.time)
        if _spreads_over_time(model, b):
            out.update(b.time + float(model.anatomy.injection_mixing_time) * SPREAD_STAGES)
    return out


@dataclass(frozen=True)
class Schedule:
    """Piecewise-constant inputs and jumps over [0, t_end].

    ``jumps[k]`` is added to the state at ``times[k]``; ``rates[k]`` is the input
    on ``[times[k], times[k+1])`` (the last one up to ``t_end``). Amounts in ug,
    rates in ug/min, times in min.
    """

    times: np.ndarray
    jumps: np.ndarray
    rates: np.ndarray
    t_end: float

    def total_dosed(self) -> float:
        """Total amount dosed over [0, t_end] (ug): jumps plus infused amounts."""
        durations = np.diff(np.append(self.times, self.t_end))
        return float(self.jumps.sum() + self.rates.sum(axis=1) @ durations)

    def dosed(self, t: np.ndarray) -> np.ndarray:
        """Cumulative amount dosed at times ``t`` (right-continuous), ug."""
        t = np.asarray(t, float)
        ends = np.append(self.times[1:], self.t_end)
        jsum = self.jumps.sum(axis=1)
        rsum = self.rates.sum(axis=1)
        out = np.zeros_like(t)
        for k in range(len(self.times)):
            out += np.where(t >= self.times[k], jsum[k], 0.0)
            out += rsum[k] * np.clip(t - self.times[k], 0.0, ends[k] - self.times[k])
        return out


def build_schedule(model: Model, events: DoseEvents, t_end: float) -> Schedule:
    """Turn expanded dose events into the jump/rate arrays every backend consumes."""
    t = _event_times(model, events, t_end)
    rates = _rates(model, events.steps, t, [st.rate for st in events.steps])
    jumps, rates = _jumps(model, events.boluses, t, rates)
    return Schedule(times=t, jumps=jumps, rates=rates, t_end=float(t_end))


#: a rate step's fields but its rate (schedules equal in these share times and jumps)
_step_but_rate = operator.attrgetter(*(f.name for f in dataclasses.fields(RateStep)
                                       if f.name != "rate"))


def build_schedules(model: Model, events: Sequence[DoseEvents], t_end: float
                    ) -> list[Schedule]:
    """:func:`build_schedule` of many event lists on one model (a sweep's chunk).

    Event lists that differ only in the rates of their steps (a sweep of infusion
    rates) share their times and jumps (each distinct bolus deposited once), and
    their rates are built in one pass over a batch axis; each schedule equals
    :func:`build_schedule` of its events exactly (the same products, added in the
    same order).
    """
    groups: dict[tuple, list[int]] = {}
    for k, ev in enumerate(events):
        key = (tuple(ev.boluses), tuple(_step_but_rate(st) for st in ev.steps))
        groups.setdefault(key, []).append(k)
    out: list[Schedule | None] = [None] * len(events)
    for members in groups.values():
        first = events[members[0]]
        t = _event_times(model, first, t_end)
        rate = np.array([[st.rate for st in events[k].steps] for k in members])
        rates = _rates(model, first.steps, t, [rate[:, j, None, None]
                                               for j in range(len(first.steps))],
                       lead=(len(members),))
        jumps, rates = _jumps(model, first.boluses, t, rates)
        for i, k in enumerate(members):
            out[k] = Schedule(times=t, jumps=jumps, rates=rates[i], t_end=float(t_end))
    return out    # type: ignore[return-value]


def _event_times(model: Model, events: DoseEvents, t_end: float) -> np.ndarray:
    """The times at which a jump happens or an input rate changes, from 0 to ``t_end``."""
    times = {0.0}
    times.update(bolus_times(events.boluses, model))
    for st in events.steps:
        times.update((st.start, st.stop))
    return np.array(sorted(x for x in times if 0.0 <= x < t_end))


def _jumps(model: Model, boluses: Sequence[Bolus], t: np.ndarray, rates: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """The jumps ``(len(t), n_state)`` of ``boluses`` (each distinct bolus's inputs worked
    out once), and ``rates`` (the steps' input rates, any leading batch axis) with the
    rates of their spreading added bolus by bolus, in the order :func:`csfmodel.api.
    schedule_for` adds them (in place; a new array where a complex step makes them
    complex)."""
    jumps = np.zeros((len(t), model.system.n_state))
    inputs: dict[Bolus, tuple] = {}
    for b in boluses:
        key = dataclasses.replace(b, time=0.0, source=0)
        if key not in inputs:
            inputs[key] = bolus_inputs(model, key)
        got = inputs[key]
        if np.iscomplexobj(got[1]) and not np.iscomplexobj(jumps):   # complex step
            jumps = jumps.astype(complex)
        if np.iscomplexobj(got[2]) and not np.iscomplexobj(rates):
            rates = rates.astype(complex)
        add_bolus(t, jumps, rates, b.time, got)
    return jumps, rates


def _rates(model: Model, steps: Sequence[RateStep], t: np.ndarray, rate: Sequence[Any],
           lead: tuple[int, ...] = ()) -> np.ndarray:
    """The input rates ``lead + (len(t), n_state)`` of ``steps`` (``rate[j]`` the rate of
    ``steps[j]``: a number, or with a batch axis an array ``(B, 1, 1)``)."""
    rates = np.zeros(lead + (len(t), model.system.n_state))
    plasma = model.system.index("plasma")
    for st, r in zip(steps, rate):
        if st.target == "spinal":
            idx, w = _hat_weights(model.grid, st.site_z)
            vec_idx, vec_w = idx, r * w
        else:
            vec_idx, vec_w = np.array([plasma]), r * np.ones(1) if lead else np.array([r])
        active = (t >= st.start) & (t < st.stop)
        rates[(Ellipsis, *np.ix_(active, vec_idx))] += vec_w
    return rates
