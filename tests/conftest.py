"""Shared test set-up: hypothesis profiles, the ``requires_jax`` marker, a hang-proof runner.

Hypothesis profiles (choose with the environment variable ``HYPOTHESIS_PROFILE``):

``default``
    derandomized (the same examples on every run), small fixed budgets, no deadline:
    the property tests stay fast and never flaky in the ordinary suite.
``slow``
    ten times the examples, random (``print_blob`` prints how to replay a failure):
    ``HYPOTHESIS_PROFILE=slow python -m pytest tests/test_fuzz.py tests/test_invariants.py``.

A test asks for ``scaled(n)`` examples: ``n`` under ``default``, ``10 n`` under ``slow``.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import traceback

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: examples per property test under the default profile (a test may ask for more or
#: fewer with ``scaled``)
DEFAULT_EXAMPLES = 50
#: how many times more examples the ``slow`` profile runs
SLOW_FACTOR = 10

settings.register_profile(
    "default",
    derandomize=True,
    max_examples=DEFAULT_EXAMPLES,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "slow",
    derandomize=False,
    max_examples=DEFAULT_EXAMPLES * SLOW_FACTOR,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
settings.load_profile(PROFILE)


def scaled(n: int) -> int:
    """``n`` examples under the default profile, proportionally more under ``slow``."""
    return max(1, round(n * settings.default.max_examples / DEFAULT_EXAMPLES))


#: skip a test when jax is not installed (checked without importing jax)
HAVE_JAX = importlib.util.find_spec("jax") is not None
requires_jax = pytest.mark.skipif(not HAVE_JAX, reason="jax is not installed")

#: skip a test when the [dask] extra (dask.distributed, zarr) is not installed
HAVE_DASK = all(importlib.util.find_spec(m) is not None for m in ("distributed", "zarr"))
requires_dask = pytest.mark.skipif(not HAVE_DASK,
                                   reason="the [dask] extra (distributed, zarr) is not installed")


# ------------------------------------------------------------ hang-proof simulate
class SimulationTimeout(AssertionError):
    """A simulation that did not finish within its time limit (a hang is a failure)."""


class WorkerError(AssertionError):
    """An exception raised inside the worker process, with its traceback as text."""

    def __init__(self, kind: str, message: str, tb: str):
        super().__init__(f"{kind}: {message}\n--- traceback in the worker ---\n{tb}")
        self.kind = kind


def _worker_main(conn) -> None:  # pragma: no cover - runs in the child process
    import csfmodel

    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        scenario, solver, options = msg
        try:
            ds = csfmodel.simulate(scenario, solver=solver, **options)
            conn.send(("ok", ds.load()))
        except BaseException as exc:  # report everything; the parent decides
            conn.send(("error", type(exc).__name__, str(exc), traceback.format_exc()))


class SimulationWorker:
    """``csfmodel.simulate`` in a persistent child process, with a time limit per call.

    A solver that hangs (inside compiled code, where no signal reaches it) then fails
    one example with :class:`SimulationTimeout` instead of hanging the suite; the
    child is killed and a fresh one started for the next call. The child is spawned,
    not forked, so no thread of numba or jax is copied half-way.
    """

    def __init__(self):
        self._ctx = multiprocessing.get_context("spawn")
        self._proc = None
        self._conn = None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(child,), daemon=True)
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent

    def simulate(self, scenario: dict, solver: str, timeout: float = 60.0, **options):
        """Run ``csfmodel.simulate(scenario, solver=solver, **options)``; return the Dataset.

        Raises :class:`SimulationTimeout` after ``timeout`` seconds and
        :class:`WorkerError` for any exception raised by ``simulate``.
        """
        if self._proc is None or not self._proc.is_alive():
            self._start()
        self._conn.send((scenario, solver, options))
        if not self._conn.poll(timeout):
            self.close(kill=True)
            raise SimulationTimeout(f"solver {solver!r} did not finish within {timeout:g} s")
        try:
            reply = self._conn.recv()
        except (EOFError, OSError):  # the worker died (crash, out of memory, ...)
            code = self._proc.exitcode
            self.close(kill=True)
            raise WorkerError("WorkerDied", f"the worker process exited with {code}",
                              "") from None
        if reply[0] == "ok":
            return reply[1]
        raise WorkerError(*reply[1:])

    def close(self, kill: bool = False) -> None:
        if self._proc is None:
            return
        if kill:
            self._proc.kill()
        else:
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.kill()
        self._proc.join()
        self._conn.close()
        self._proc = self._conn = None


# ------------------------------------------------------------ valid scenarios
# A hypothesis strategy for random *valid* scenarios (dicts in the TOML layout), shared
# by the invariant tests (which simulate them) and the fuzz (which mutates them).

LEVELS = ("C1", "C2", "C3", "C4", "C5", "C6", "C7", *(f"T{i}" for i in range(1, 13)),
          "L1", "L2", "L3", "L4", "L5", "S1", "S2")
INTERSPACES = tuple(f"{a}-{b}" for a, b in zip(LEVELS, LEVELS[1:]))
#: (duration, output_interval) pairs whose interval does not divide the duration, or
#: barely does after rounding ("4.1 h" is 245.99999999999997 min, 41 x 6 min is 246)
AWKWARD_TIMES = (("4.1 h", "6 min"), ("30 min", "7 min"), ("3 day", "60 min"),
                 ("1.7 h", "7 min"), ("0.7 h", "4.2 min"), ("2.3 day", "13 min"),
                 ("100 min", "30 min"), ("1 day", "7 min"), ("12.34 h", "9 min"),
                 ("0.51 h", "1.1 min"), ("2.9 h", "6 min"), ("7.1 h", "6 min"),
                 ("30 min", "30 min"), ("33.3 min", "3.33 min"), ("1.1 day", "1.1 min"))
_TO_MIN = {"min": 1.0, "h": 60.0, "day": 1440.0, "s": 1 / 60}


def _num(lo: float, hi: float, digits: int = 3) -> st.SearchStrategy[str]:
    """A number in [lo, hi] written with ``digits`` significant digits (clamped).

    Numbers as people write them: nothing within 1e-4 of the range above ``lo`` (no
    "4.94e-324 h"; near-coincident dose times are tested on their own).
    """
    def fmt(x: float) -> str:
        if x - lo < 1e-4 * (hi - lo):
            x = lo
        text = f"{x:.{digits}g}"
        if float(text) < lo:
            text = repr(lo)
        if float(text) > hi:
            text = repr(hi)
        return text
    return st.floats(lo, hi).map(fmt)


def minutes(quantity: str) -> float:
    """The minutes of a time quantity written by these strategies (as csfmodel reads it)."""
    from csfmodel.units import convert

    return convert(quantity, "min")


@st.composite
def sim_times(draw) -> tuple[str, str]:
    """(duration, output_interval): 30 min to 3 day, interval 1-60 min (<= duration)."""
    if draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(AWKWARD_TIMES))
    unit = draw(st.sampled_from(["min", "h", "day"]))
    lo, hi = {"min": (30, 4320), "h": (0.5, 72), "day": (0.021, 3)}[unit]
    duration = f"{draw(_num(lo, hi, draw(st.integers(2, 4))))} {unit}"
    dur_min = minutes(duration)
    if draw(st.integers(0, 4)) == 0:
        interval = f"{draw(st.integers(60, int(min(3600, dur_min * 60))))} s"
    else:
        interval = f"{draw(_num(1.0, min(60.0, dur_min), draw(st.integers(1, 3))))} min"
    return duration, interval


def _time_before(draw, dur_min: float) -> str:
    """A time in [0, duration], in min or h."""
    if draw(st.booleans()):
        return f"{draw(_num(0.0, dur_min, 4))} min"
    return f"{draw(_num(0.0, dur_min / 60, 3))} h"


def _site(draw) -> str:
    return draw(st.one_of(st.sampled_from(LEVELS), st.sampled_from(INTERSPACES)))


def _repeat(draw, dose: dict) -> None:
    if draw(st.integers(0, 3)) == 0:
        dose["count"] = draw(st.integers(1, 3))
        dose["interval"] = f"{draw(_num(1.0, 24.0, 3))} h"


@st.composite
def valid_doses(draw, dur_min: float) -> dict:
    """One valid regimen of any route and type (ranges as in the task description)."""
    kind = draw(st.sampled_from(["it_bolus", "it_infusion", "it_patient_bolus", "oral",
                                 "iv_bolus", "iv_infusion"]))
    if kind == "it_bolus":
        d = {"route": "intrathecal", "type": "bolus", "site": _site(draw),
             "amount": f"{draw(_num(0.05, 5.0))} mg", "volume": f"{draw(_num(0.01, 20.0))} mL",
             "delivery": draw(st.sampled_from(["needle", "catheter"]))}
        if draw(st.booleans()):
            d["time"] = _time_before(draw, dur_min)
        if draw(st.integers(0, 3)) == 0:
            d["injection_rate"] = f"{draw(_num(0.5, 20.0))} mL/min"
        _repeat(draw, d)
    elif kind == "it_infusion":
        d = {"route": "intrathecal", "type": "infusion", "site": _site(draw)}
        if draw(st.integers(0, 3)) == 0:
            ats = draw(st.lists(st.integers(0, 23), min_size=1, max_size=3, unique=True))
            d["program"] = [{"at": f"{a} h", "rate": f"{draw(_num(0.1, 10.0))} mg/day"}
                            for a in ats]
        else:
            d["rate"] = f"{draw(_num(0.1, 10.0))} mg/day"
            if draw(st.integers(0, 2)) == 0:
                d["start"] = _time_before(draw, dur_min)
            if draw(st.integers(0, 2)) == 0:
                d["duration"] = f"{draw(_num(0.5, 48.0))} h"
    elif kind == "it_patient_bolus":
        lockout_h = float(draw(_num(0.5, 6.0, 2)))
        d = {"route": "intrathecal", "type": "patient_bolus", "site": _site(draw),
             "amount": f"{draw(_num(0.01, 0.5))} mg", "lockout": f"{lockout_h} h",
             "max_per_day": draw(st.integers(1, min(12, int(24 // lockout_h))))}
        which = draw(st.sampled_from(["requests", "daily_requests", "both"]))
        if which in ("requests", "both"):
            d["requests"] = [_time_before(draw, dur_min)
                             for _ in range(draw(st.integers(1, 5)))]
        if which in ("daily_requests", "both"):
            d["daily_requests"] = [f"{draw(_num(0.0, 23.9, 3))} h"
                                   for _ in range(draw(st.integers(1, 5)))]
        if draw(st.booleans()):
            d["volume"] = f"{draw(_num(0.01, 0.5))} mL"
    elif kind == "oral":
        d = {"route": "oral", "type": "bolus", "amount": f"{draw(_num(5.0, 100.0))} mg",
             "formulation": draw(st.sampled_from(["immediate", "controlled", "IR", "cr"]))}
        if draw(st.booleans()):
            d["time"] = _time_before(draw, dur_min)
        _repeat(draw, d)
    elif kind == "iv_bolus":
        d = {"route": "iv", "type": "bolus", "amount": f"{draw(_num(1.0, 10.0))} mg"}
        if draw(st.booleans()):
            d["time"] = _time_before(draw, dur_min)
        _repeat(draw, d)
    else:
        d = {"route": "iv", "type": "infusion", "rate": f"{draw(_num(1.0, 50.0))} mg/day"}
        if draw(st.booleans()):
            d["start"] = _time_before(draw, dur_min)
        if draw(st.booleans()):
            d["duration"] = f"{draw(_num(0.5, 48.0))} h"
    return d


@st.composite
def valid_scenarios(draw, max_doses: int = 3) -> dict:
    """A random valid scenario dict: 30 min to 3 day, 1 cm grid, 1-3 doses of any kind."""
    duration, interval = draw(sim_times())
    dur_min = minutes(duration)
    data: dict = {"simulation": {"duration": duration, "output_interval": interval,
                                 "resolution": "1 cm"},
                  "drug": {"name": draw(st.sampled_from(["morphine", "hydromorphone",
                                                         "fentanyl"]))}}
    patient = draw(st.fixed_dictionaries({}, optional={
        "dispersion": _num(0.5, 10.0).map(lambda x: f"{x} cm^2/min"),
        "spinal_csf_volume": _num(60.0, 130.0).map(lambda x: f"{x} mL"),
        "conus_level": st.sampled_from(["T12", "L1", "L2"]),
    }))
    if patient:
        data["patient"] = patient
    data["dose"] = [draw(valid_doses(dur_min)) for _ in range(draw(st.integers(1, max_doses)))]
    return data


# ---------------------------------------------------------------- one compile per kernel
_COMPILED_TWICE: dict[str, int] = {}


def pytest_sessionfinish(session, exitstatus):
    """After the whole run: every numba kernel compiled exactly one signature -- no second
    specialisation from array flags or dtypes (``tests/test_compile_signatures.py``
    exercises the paths on purpose). Under xdist each worker reports to the controller."""
    import sys

    nb = sys.modules.get("csfmodel.solvers.numba_backend")
    if nb is not None:
        _COMPILED_TWICE.update({k: n for k, n in nb.compiled_signatures().items() if n > 1})
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:                       # an xdist worker: tell the controller
        workeroutput["numba_compiled_twice"] = dict(_COMPILED_TWICE)
        return
    if _COMPILED_TWICE:
        print(f"\nnumba kernels compiled more than once: {_COMPILED_TWICE}", file=sys.stderr)
        session.exitstatus = 1


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    _COMPILED_TWICE.update(getattr(node, "workeroutput", {}).get("numba_compiled_twice", {}))
