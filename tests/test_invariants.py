"""Random valid scenarios: every backend keeps the invariants of a simulation.

The scenarios come from ``conftest.valid_scenarios``: 30 min to 3 days (awkward
duration/interval pairs such as ``"4.1 h"`` / ``"6 min"`` included), output every 1-60
min, a 1 cm grid, 1-3 regimens of any kind (IT bolus at any level or interspace,
0.05-5 mg in 0.01-20 mL by needle or catheter; IT infusion 0.1-10 mg/day, also as a
daily program; IT patient boluses; oral IR/CR 5-100 mg; IV bolus 1-10 mg; IV
infusion), morphine, hydromorphone or fentanyl, and a few patient overrides. For each:

* every value is finite, the output times start at 0, increase and end exactly at the
  duration, and the last row is filled;
* ``amount_dosed`` at the end is the total dose scheduled before the end (computed here
  from the scenario, independently of the model), to 1e-9 relative;
* mass balance ``|dosed - present - eliminated| <= 1e-9 max(dosed)`` at every time;
* every concentration of ``numba`` (and ``jax``) is within 1e-3 of that variable's peak
  of the ``reference`` solver;
* ``reference`` concentrations never below -1e-9 of their peak, ``numba``/``jax`` never
  below -1e-4 of theirs.

Each simulation runs in a child process with a 60 s limit (``conftest.SimulationWorker``),
so a solver that hangs fails its example instead of hanging the suite. Budgets: a few
examples under the default profile (the file takes well under a minute once numba is
compiled); ``HYPOTHESIS_PROFILE=slow`` runs ten times as many.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import (
    PROFILE,
    SimulationWorker,
    minutes,
    requires_jax,
    scaled,
    valid_scenarios,
)
from hypothesis import Phase, given, settings

from csfmodel.units import convert

#: seconds one simulation may take before it counts as a hang
TIMEOUT = 60.0
#: shrinking re-runs the simulations hundreds of times: only under the slow profile
PHASES = tuple(Phase) if PROFILE == "slow" else (Phase.explicit, Phase.reuse, Phase.generate)

WARMUP = {"simulation": {"duration": "2 h", "output_interval": "10 min", "resolution": "1 cm"},
          "dose": [{"route": "intrathecal", "type": "bolus", "site": "L3", "amount": "0.3 mg"}]}


@pytest.fixture(scope="module")
def worker():
    w = SimulationWorker()
    # the first numba call compiles the kernels (or loads them from the disk cache)
    w.simulate(WARMUP, "numba", timeout=900)
    w.simulate(WARMUP, "reference", timeout=300)
    yield w
    w.close()


# ------------------------------------------------------------------ expected dose
def _ug(q: str) -> float:
    return convert(q, "ug")


def _repeats(d: dict, t_end: float) -> int:
    t0 = minutes(d["time"]) if "time" in d else 0.0
    interval = minutes(d["interval"]) if "interval" in d else 0.0
    return sum(1 for k in range(d.get("count", 1)) if t0 + k * interval < t_end)


def _program_integral(steps: list[tuple[float, float]], t_end: float) -> float:
    """Integral over [0, t_end) of a daily program (at, rate): the last step runs over
    midnight into the first."""
    steps = sorted(steps)
    total, day = 0.0, 0
    while day * 1440.0 < t_end:
        t0 = day * 1440.0
        pts = [(t0, steps[-1][1])] + [(t0 + at, r) for at, r in steps]
        for i, (a, r) in enumerate(pts):
            b = pts[i + 1][0] if i + 1 < len(pts) else t0 + 1440.0
            total += r * max(0.0, min(b, t_end) - a)
        day += 1
    return total


def _accepted_requests(d: dict, t_end: float) -> int:
    lockout = minutes(d["lockout"])
    times = [minutes(t) for t in d.get("requests", [])]
    for day in range(int(math.ceil(t_end / 1440.0)) + 1):
        times += [day * 1440.0 + minutes(t) for t in d.get("daily_requests", [])]
    given_at: list[float] = []
    for t in sorted(t for t in times if 0.0 <= t < t_end):
        if given_at and t - given_at[-1] < lockout:
            continue  # within the lockout of the last accepted bolus
        if sum(1 for g in given_at if t - g < 1440.0) >= d["max_per_day"]:
            continue  # max_per_day already given in the preceding 24 h
        given_at.append(t)
    return len(given_at)


def expected_dosed_mg(data: dict) -> float:
    """Total dose scheduled before the end of the simulation (mg), from the scenario."""
    t_end = minutes(data["simulation"]["duration"])
    total = 0.0
    for d in data["dose"]:
        kind = (d["route"], d.get("type", "bolus"))
        if kind == ("intrathecal", "patient_bolus"):
            total += _ug(d["amount"]) * _accepted_requests(d, t_end)
        elif kind[1] == "bolus":
            total += _ug(d["amount"]) * _repeats(d, t_end)
        elif "program" in d:
            total += _program_integral([(minutes(s["at"]), convert(s["rate"], "ug/min"))
                                        for s in d["program"]], t_end)
        else:
            start = minutes(d["start"]) if "start" in d else 0.0
            stop = start + minutes(d["duration"]) if "duration" in d else math.inf
            total += convert(d["rate"], "ug/min") * max(0.0, min(stop, t_end) - start)
    return total / 1000.0


# ------------------------------------------------------------------ invariants
def _concentrations(ds) -> list[str]:
    return [v for v in ds.data_vars if "concentration" in v and ds[v].dtype.kind == "f"]


def check_one(ds, data: dict, negative_tol: float) -> list[str]:
    """The invariants of one result; returns what is violated (empty: all hold)."""
    bad = []
    for v in ds.data_vars:
        if ds[v].dtype.kind == "f" and not np.all(np.isfinite(ds[v].values)):
            bad.append(f"{v}: non-finite values")
    t = ds["time"].values * 60.0
    t_end = minutes(data["simulation"]["duration"])
    if not (t[0] == 0.0 and np.all(np.diff(t) > 0)):
        bad.append(f"output times do not start at 0 and increase: {t[:3]} ... {t[-3:]}")
    if not math.isclose(t[-1], t_end, rel_tol=1e-12):
        bad.append(f"last output time {t[-1]!r} min != duration {t_end!r} min")
    dosed = ds["amount_dosed"].values
    present = ds["amount_present"].values
    elim = ds["amount_eliminated"].values
    want = expected_dosed_mg(data)
    if not math.isclose(dosed[-1], want, rel_tol=1e-9, abs_tol=1e-300):
        bad.append(f"amount_dosed[-1] = {dosed[-1]!r} mg, scheduled {want!r} mg")
    if want > 0 and not (present[-1] > 0 or elim[-1] > 0):
        bad.append("last row not filled (no drug present nor eliminated)")
    gap = np.abs(dosed - present - elim)
    scale = float(np.max(np.abs(dosed))) if dosed.size else 0.0
    if np.any(gap > 1e-9 * scale):
        i = int(np.argmax(gap))
        bad.append(f"mass balance: |dosed - present - eliminated| = {gap[i]:.3g} mg at "
                   f"t = {t[i]:.6g} min (dosed {dosed[i]:.6g} mg)")
    for v in _concentrations(ds):
        x = ds[v].values
        peak = float(np.max(np.abs(x)))
        if peak > 0 and float(np.min(x)) < -negative_tol * peak:
            bad.append(f"{v}: minimum {float(np.min(x)):.3g} below -{negative_tol:g} of its "
                       f"peak {peak:.3g}")
    return bad


def compare(ds, ref, label: str) -> list[str]:
    """``ds`` concentrations within 1e-3 of each variable's peak of ``ref``."""
    bad = []
    if ds.sizes != ref.sizes:
        return [f"{label}: shape {dict(ds.sizes)} != reference {dict(ref.sizes)}"]
    for v in _concentrations(ref):
        a, b = ds[v].values, ref[v].values
        peak = float(np.max(np.abs(b)))
        err = float(np.max(np.abs(a - b)))
        if err > 1e-3 * peak + 1e-12:
            idx = np.unravel_index(np.argmax(np.abs(a - b)), a.shape)
            bad.append(f"{label} {v}: max |diff| {err:.3g} = {err / peak if peak else math.inf:.3g}"
                       f" of the reference peak {peak:.3g} (at index {tuple(map(int, idx))})")
    return bad


def run_and_check(worker: SimulationWorker, data: dict, solvers=("numba",)) -> None:
    ref = worker.simulate(data, "reference", timeout=TIMEOUT)
    bad = [f"reference: {b}" for b in check_one(ref, data, 1e-9)]
    for name in solvers:
        ds = worker.simulate(data, name, timeout=TIMEOUT)
        bad += [f"{name}: {b}" for b in check_one(ds, data, 1e-4)]
        bad += compare(ds, ref, name)
    assert not bad, "\n".join(bad + [f"scenario: {data!r}"])


# ------------------------------------------------------------------ the tests
_SIM = {"output_interval": "6 min", "resolution": "1 cm"}

#: fixed cases, run on their own so that one that fails does not keep the random
#: search from running
CASES = {
    # (was) the last row unfilled when duration / output_interval rounds badly
    "4.1h_every_6min": {"simulation": dict(_SIM, duration="4.1 h"),
                        "dose": [{"route": "iv", "type": "bolus", "amount": "5 mg"}]},
    # (was) a large IT bolus at T8 or higher gave NaN or hung
    "5mL_bolus_at_T8": {"simulation": dict(_SIM, duration="2 h"),
                        "dose": [{"route": "intrathecal", "type": "bolus", "site": "T8",
                                  "amount": "1 mg", "volume": "5 mL"}]},
    "20mL_bolus_at_C3_3_days": {
        "simulation": dict(_SIM, duration="3 day", output_interval="7 min"),
        "dose": [{"route": "intrathecal", "type": "bolus", "site": "C3", "amount": "5 mg",
                  "volume": "20 mL", "delivery": "catheter"},
                 {"route": "intrathecal", "type": "infusion", "site": "T4", "rate": "10 mg/day"},
                 {"route": "oral", "type": "bolus", "amount": "100 mg",
                  "formulation": "controlled", "count": 3, "interval": "12 h"}]},
    # found here: early in an IT infusion the small, rising concentrations (cranial CSF,
    # the cord below the tip) are off by more than 1e-3 of their peak: numba up to 5e-3
    # (cisternal, 1 h) and 1.8e-2 (cord S5 at 30 min), jax 1.1e-3 (cortical)
    "lumbar_infusion_1h": {"simulation": dict(_SIM, duration="1 h", output_interval="1 min"),
                           "dose": [{"route": "intrathecal", "type": "infusion",
                                     "site": "L3-L4", "rate": "1 mg/day"}]},
    "lumbar_infusion_30min": {"simulation": dict(_SIM, duration="30 min",
                                                  output_interval="1 min"),
                              "dose": [{"route": "intrathecal", "type": "infusion",
                                        "site": "L3-L4", "rate": "1 mg/day"}]},
    # found here: an IV bolus 0.23 min before the end; CSF concentrations in the last
    # row off by up to 2e-2 of their peak (cisternal)
    "iv_bolus_just_before_the_end": {
        "simulation": dict(_SIM, duration="100 min", output_interval="30 min"),
        "dose": [{"route": "iv", "type": "bolus", "amount": "10 mg", "time": "99.77 min"}]},
    # found here: plasma 1.2e-3 of its peak off 20 min after an IV bolus
    "iv_bolus_hydromorphone_plasma": {
        "simulation": dict(_SIM, duration="100 min", output_interval="30 min"),
        "drug": {"name": "hydromorphone"},
        "dose": [{"route": "iv", "type": "bolus", "amount": "20 mg", "time": "10 min"}]},
    # found here: a request "at" the end (1.97 day = 2836.8 min) was dosed or not
    # depending on the last bit of two conversions; now both lie on one time grid
    "request_at_the_end": {
        "simulation": {"duration": "1.97 day", "output_interval": "60 s", "resolution": "1 cm"},
        "dose": [{"route": "intrathecal", "type": "patient_bolus", "site": "C1",
                  "amount": "0.5 mg", "lockout": "1.0 h", "max_per_day": 1,
                  "requests": ["2836.8 min"]}]},
    "T9_infusion_30min": {"simulation": dict(_SIM, duration="30 min", output_interval="7 min"),
                          "dose": [{"route": "intrathecal", "type": "infusion", "site": "T9",
                                    "rate": "1 mg/day"}]},
}


@pytest.mark.parametrize("data", list(CASES.values()), ids=list(CASES))
def test_fixed_cases_numba(worker, data):
    run_and_check(worker, data)


@settings(max_examples=scaled(15), phases=PHASES)
@given(data=valid_scenarios())
def test_random_scenarios_numba(worker, data):
    run_and_check(worker, data)


@pytest.mark.slow
@settings(max_examples=scaled(15), phases=PHASES)
@given(data=valid_scenarios())
def test_random_scenarios_numba_long(worker, data):
    run_and_check(worker, data)


@requires_jax
@pytest.mark.slow
@settings(max_examples=scaled(2), phases=PHASES)
@given(data=valid_scenarios(max_doses=2))
def test_random_scenarios_jax(worker, data):
    run_and_check(worker, data, solvers=("numba", "jax"))


@requires_jax
@pytest.mark.slow
def test_fixed_case_jax(worker):
    run_and_check(worker, CASES["lumbar_infusion_30min"], solvers=("jax",))


# Found by this file: dose events a subnormal time apart (the parser accepts any time
# >= 0) stop both solvers: reference "RuntimeError: Factor is exactly singular", numba
# SolverFailure "the step size collapsed". Strict: fails until the model/solvers merge
# or refuse such events.
def _it_bolus(time: str, site: str = "L3") -> dict:
    return {"route": "intrathecal", "type": "bolus", "site": site, "amount": "0.1 mg",
            "time": time}


NEAR_COINCIDENT = {
    "0_and_1e-310_min": [_it_bolus("0 min"), _it_bolus("1e-310 min")],
    "infusion_and_1e-322_min": [{"route": "intrathecal", "type": "infusion", "site": "L3",
                                 "rate": "1 mg/day"}, _it_bolus("1e-322 min")],
    "4.94e-324_h_and_3.09e-130_h": [_it_bolus("4.94e-324 h"), _it_bolus("3.09e-130 h")],
}


@pytest.mark.parametrize("doses", list(NEAR_COINCIDENT.values()), ids=list(NEAR_COINCIDENT))
def test_dose_events_a_round_off_apart(worker, doses):
    run_and_check(worker, {"simulation": {"duration": "1 h", "output_interval": "10 min",
                                          "resolution": "1 cm"}, "dose": doses})
