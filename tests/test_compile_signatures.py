"""One compiled specialisation per numba kernel, whatever form the arrays arrive in.

numba compiles a kernel once per *type* of its arguments, and an array's type
includes its dtype, layout, alignment and whether it is read-only: a weights
array from :func:`numpy.broadcast_to` (read-only), a column slice, ``int32``
indices or big-endian floats would each cost another minute of compilation on
2 cores. The backend hands every array over in one form
(:func:`csfmodel.solvers._prepare.kernel_array`); this module feeds the single,
sink, batch and summary paths with inputs of every such flavour and then counts
the compiled signatures of every kernel (``Dispatcher.signatures``).

The count is per process. The last test of this module checks it after this
module's own calls (and those of the modules run before it in the same
process); :func:`csfmodel.solvers.numba_backend.compiled_signatures` gives the
same count to any later check, e.g. at the end of a whole test session.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from csfmodel.api import prepare
from csfmodel.model import Schedule
from csfmodel.solvers import SolverOptions, _prepare, solve, solve_batch

pytest.importorskip("numba")

from csfmodel.solvers.numba_backend import compiled_signatures  # noqa: E402

#: an infusion, an intrathecal and an IV bolus, all on whole minutes (exact as int32; the
#: bolus spreads over 16 min, laid down at multiples of 16/16 = 1 min)
SCENARIO = {"simulation": {"duration": "4 h", "output_interval": "20 min", "resolution": "2 cm"},
            "patient": {"injection_mixing_time": "16 min"},
            "dose": [{"route": "intrathecal", "type": "infusion", "site": "L2",
                      "rate": "0.5 mg/day"},
                     {"route": "intrathecal", "type": "bolus", "site": "T12", "amount": "0.1 mg",
                      "volume": "0.5 mL", "time": "40 min"},
                     {"route": "iv", "type": "bolus", "amount": "2 mg", "time": "2 h"}]}

#: the kernels the backend calls from Python: exactly one signature each once used
ENTRY_POINTS = ("integrate", "integrate_batch")


def _read_only(a) -> np.ndarray:
    a = np.array(a)
    a.setflags(write=False)
    return a


def _strided(a) -> np.ndarray:
    """The same values as a non-contiguous view (every other element of a wider array)."""
    a = np.asarray(a, float)
    wide = np.repeat(a[..., None], 2, axis=-1)
    return wide[..., 0]


def _big_endian(a) -> np.ndarray:
    return np.asarray(a, dtype=">f8")


@pytest.fixture(scope="module")
def problem():
    prep = prepare(SCENARIO)
    return prep.model.system, prep.schedule, prep.t_out


def _odd_system(system):
    """The same matrix with arrays of every flavour numba would type differently."""
    return dataclasses.replace(
        system,
        lower=_read_only(system.lower), diag=_strided(system.diag),
        upper=_big_endian(system.upper), cord_diag=np.asfortranarray(system.cord_diag),
        border_rows=np.asfortranarray(system.border_rows),
        border_cols=_read_only(system.border_cols), block=_strided(system.block),
        volume=np.asarray(system.volume, np.float32))


def _odd_schedule(schedule):
    assert np.all(schedule.times == np.round(schedule.times))   # whole minutes: exact ints
    return Schedule(times=schedule.times.astype(np.int32), jumps=_read_only(schedule.jumps),
                    rates=np.asfortranarray(schedule.rates), t_end=schedule.t_end)


def test_single_and_sink_paths_with_odd_arrays(problem):
    system, schedule, t_out = problem
    clean = solve(system, schedule, t_out, backend="numba").states
    t_odd = _read_only(t_out.astype(np.int32))
    assert np.array_equal(t_odd, t_out)
    odd = solve(_odd_system(system), _odd_schedule(schedule), t_odd, backend="numba").states
    # float32 volumes change the error scale in the 7th digit only
    np.testing.assert_allclose(odd, clean, rtol=0, atol=1e-6 * np.abs(clean).max())
    got: list = []
    y0 = _read_only(np.broadcast_to(clean[3], clean[3].shape))
    solve(system, schedule, t_out, SolverOptions(method="trbdf2"), backend="numba",
          y0=y0, sink=lambda i0, s: got.append(s.copy()))
    assert sum(len(s) for s in got) == len(t_out)


def test_batch_and_summary_paths_with_odd_arrays(problem):
    system, schedule, t_out = problem
    clean = solve(system, schedule, t_out, backend="numba").states
    s = system
    idx = np.array([2, s.n_spinal + 1, s.index("brain"), s.index("plasma")], np.int32)
    ptr = np.arange(len(idx) + 1, dtype=np.int32)
    w = _read_only(1.0 / s.volume[idx])
    # one member: the broadcast weights and initial state are read-only views of shape (1, .)
    one = solve_batch([system], _odd_schedule(schedule), _read_only(t_out), backend="numba",
                      observables=(ptr, idx, w), y0=np.zeros(s.n_state, np.float32))
    np.testing.assert_allclose(one.values[0], clean[:, idx] * w, rtol=0,
                               atol=1e-9 * np.abs(clean[:, idx] * w).max())
    # stacked arrays of odd flavours, per-member float32 weights, int32 schedule index
    stack = _prepare.stack_systems([system, system])
    odd_stack = {k: (_read_only(v) if i % 2 else np.asfortranarray(v))
                 for i, (k, v) in enumerate(stack.items())}
    w2 = np.stack([w, 2 * w]).astype(np.float32)
    two = solve_batch(odd_stack, [schedule], t_out, backend="numba",
                      observables=(ptr, idx, w2), schedule_index=np.zeros(2, np.int32))
    np.testing.assert_allclose(two.values[1], 2 * two.values[0], rtol=1e-6)
    dense = np.zeros((2, s.n_state), np.float32)
    dense[0, s.index("plasma")] = 1.0
    dense[1, :s.n_spinal] = 1.0
    summ = solve_batch(odd_stack, schedule, t_out, backend="numba",
                       observables=np.asfortranarray(dense), summary=True)
    assert summ.values[0, 0, 0] == pytest.approx(clean[:, s.index("plasma")].max(), rel=1e-9)


def test_each_kernel_compiled_once(problem):
    """After every path above (run again here, so that the check holds in whichever
    process -- or xdist worker -- runs it): one signature per kernel."""
    test_single_and_sink_paths_with_odd_arrays(problem)
    test_batch_and_summary_paths_with_odd_arrays(problem)
    counts = compiled_signatures()
    assert set(ENTRY_POINTS) <= set(counts)
    for name in ENTRY_POINTS:
        assert counts[name] == 1, (name, counts)
    assert all(c <= 1 for c in counts.values()), counts
