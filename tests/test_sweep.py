"""Sweeps on Dask into one zarr store: members equal single runs, the store describes
itself, resume recomputes nothing finished, designs and distributions, Sobol indices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from csfmodel.errors import ScenarioError

pytest.importorskip("numba")
distributed = pytest.importorskip("distributed")

from csfmodel import metrics, sweep  # noqa: E402
from csfmodel.api import simulate  # noqa: E402
from csfmodel.effects import effects  # noqa: E402

BASE = {
    "simulation": {"duration": "10 h", "output_interval": "10 min", "resolution": "2 cm"},
    "dose": [{"route": "intrathecal", "type": "infusion", "site": "T10", "rate": "1 mg/day"}],
}
SWEEP_TOML = """\
base = "base.toml"
[design]
kind = "product"
[[parameter]]
key = "patient.dispersion"
values = ["0.2 cm^2/min", "0.8 cm^2/min"]
[[parameter]]
key = "dose[0].site"
values = ["T12", "T8", "L2"]
[outputs]
threshold = "5 ng/mL"
target = "T10-T12"
[run]
chunk_size = 2
"""


def _base_toml() -> str:
    s = BASE["simulation"]
    d = BASE["dose"][0]
    return ("[simulation]\n" + "".join(f'{k} = "{v}"\n' for k, v in s.items()) +
            "[[dose]]\n" + "".join(f'{k} = "{v}"\n' for k, v in d.items()))


@pytest.fixture(scope="module")
def client():
    """An in-process Dask cluster (threads): the engine without process start-up."""
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                            dashboard_address=":0") as c:
        yield c


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    (d / "base.toml").write_text(_base_toml())
    (d / "sweep.toml").write_text(SWEEP_TOML)
    return d


@pytest.fixture(scope="module")
def store(files, client):
    return sweep.run_sweep(files / "sweep.toml", files / "out.zarr", client=client)


def _member_scenario(disp: str, site: str) -> dict:
    import copy

    d = copy.deepcopy(BASE)
    d["patient"] = {"dispersion": disp}
    d["dose"][0]["site"] = site
    return d


def test_store_is_self_describing(store):
    ds = xr.open_zarr(store)
    assert ds.brain_concentration_max.dims == ("patient.dispersion", "dose[0].site")
    np.testing.assert_array_equal(ds["patient.dispersion"].values, [0.2, 0.8])
    assert ds["patient.dispersion"].attrs["units"] == "cm^2/min"
    # sites: numeric positions (cm, base patient) with their labels beside them
    assert ds["dose[0].site"].attrs["units"] == "cm"
    assert list(ds["dose[0].site_label"].values) == ["T12", "T8", "L2"]
    z = ds["dose[0].site"].values
    assert z[1] < z[0] < z[2]                             # T8 above T12 above L2
    assert ds.attrs["design"] == "product" and ds.attrs["scenarios"] == 6
    assert json.loads(ds.attrs["scenario"]) == BASE
    ref = simulate(BASE, solver="numba")
    assert ds.attrs["csfmodel_version"] == ref.attrs["csfmodel_version"]
    assert ds.brain_concentration_max.attrs["units"] == "ng/mL"
    assert ds.cord_concentration_auc.attrs["units"] == "ng h/mL"
    assert int(ds.scenario_done.sum()) == 6
    assert ds.sizes["segment"] == 30 and str(ds.segment.values[0]) == "C1"


def test_a_member_equals_simulate(store):
    """Every summary of a member is the metric of simulate() of the same scenario."""
    ds = xr.open_zarr(store).load()
    for disp, i in (("0.2 cm^2/min", 0), ("0.8 cm^2/min", 1)):
        for site, j in (("T12", 0), ("L2", 2)):
            ref = simulate(_member_scenario(disp, site), solver="numba")
            m = ds.isel({"patient.dispersion": i, "dose[0].site": j})
            peak = float(ref.brain_concentration.max())
            for v in ("brain_concentration", "plasma_concentration",
                      "cisternal_csf_concentration"):
                da = ref[v].assign_attrs(units="ng/mL")
                assert abs(float(m[f"{v}_max"]) - float(metrics.cmax(da))) <= 1e-8 * peak
                np.testing.assert_allclose(float(m[f"{v}_auc"]), float(metrics.auc(da)),
                                           rtol=1e-8)
                assert float(m[f"{v}_tmax"]) == pytest.approx(float(metrics.tmax(da)))
                np.testing.assert_allclose(float(m[f"{v}_cavg_ss"]),
                                           float(metrics.cavg(da, 0.0, None)), rtol=1e-8)
            cord = ref.cord_concentration.assign_attrs(units="ng/mL")
            np.testing.assert_allclose(m.cord_concentration_max.values,
                                       metrics.cmax(cord).values, rtol=1e-8, atol=1e-12)
            cov = metrics.segment_coverage(ref, "5 ng/mL")
            np.testing.assert_allclose(m.segment_time_above.values, cov.time_above.values,
                                       rtol=1e-6, atol=1e-6)
            assert int(m.segments_covered) == cov.attrs["n_covered"]
            sel = metrics.selectivity(ref, "T10-T12")
            np.testing.assert_allclose(float(m.selectivity_auc_ratio), float(sel.auc_ratio),
                                       rtol=1e-8)
            np.testing.assert_allclose(float(m.selectivity_cmax_ratio),
                                       float(sel.cmax_ratio), rtol=1e-8)
            rd = float(effects(ref).respiratory_depression.max())
            np.testing.assert_allclose(float(m.respiratory_depression_max), rd, rtol=1e-7)
            # the CSF at the tip lies between the neighbouring cells' concentrations
            zt = float(ds["dose[0].site"][j])
            c = ref.csf_concentration.interp(z=zt)
            np.testing.assert_allclose(float(m.csf_tip_concentration_max),
                                       float(c.max()), rtol=1e-8)


def test_resume_recomputes_only_unfinished_chunks_bit_for_bit(files, store, client, tmp_path):
    import shutil

    ref = xr.open_zarr(store).load()
    part = tmp_path / "part.zarr"
    shutil.copytree(store, part)
    # as if interrupted: the last chunk never written (flags 0, values NaN), and a
    # finished chunk marked with a value the sweep would never compute
    names = [v for v in ref.data_vars if set(ref[v].dims) >= {"patient.dispersion"}]
    region = {"patient.dispersion": slice(1, 2), "dose[0].site": slice(2, 3)}
    hole = ref[names].isel(region).copy(deep=True)
    for v in names:
        if hole[v].dtype.kind == "f":
            hole[v][...] = np.nan
    hole["scenario_done"][...] = 0
    hole.drop_vars([c for c in hole.coords]).to_zarr(part, region=region, mode="r+")
    mark = xr.Dataset({"brain_concentration_max": (("patient.dispersion", "dose[0].site"),
                                                   np.full((1, 2), 12345.0))})
    mark.to_zarr(part, region={"patient.dispersion": slice(0, 1), "dose[0].site": slice(0, 2)},
                 mode="r+")
    with pytest.raises(ScenarioError, match="--resume|resume"):
        sweep.run_sweep(files / "sweep.toml", part, client=client)
    sweep.run_sweep(files / "sweep.toml", part, client=client, resume=True)
    got = xr.open_zarr(part).load()
    assert np.all(got.brain_concentration_max.values[0, :2] == 12345.0)   # not recomputed
    for v in names:
        a, b = got[v].isel(region).values, ref[v].isel(region).values
        assert a.tobytes() == b.tobytes(), v                              # bit for bit


def test_second_sweep_on_a_store_in_use_is_refused(files, store):
    import fcntl
    import os

    fd = os.open(store, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ScenarioError, match="another csfmodel sweep is running"):
            sweep.run_sweep(files / "sweep.toml", store, resume=True)
    finally:
        os.close(fd)


@pytest.mark.parametrize("old, new, match", [
    ('"0.8 cm^2/min"', '"0.8 kg"', r"parameter\[0\].*0\.8 kg"),
    ('"L2"', '"X9"', r"parameter\[1\].*X9"),
    ('kind = "product"', 'kind = "grid"', "design.kind"),
    ('kind = "product"', 'kind = "sobol"\nn = 6', "design.n"),
    ('threshold = "5 ng/mL"', 'threshold = "5 mg"', "outputs.threshold"),
    ('chunk_size = 2', 'chunk_size = 0', "chunk_size"),
    ('key = "patient.dispersion"', 'key = "patient.dispersion"\ndistribution = "uniform"',
     r"parameter\[0\]"),
])
def test_a_bad_sweep_file_is_one_line_and_writes_nothing(files, tmp_path, capsys, old, new,
                                                         match):
    from csfmodel.cli import main

    assert old in SWEEP_TOML
    (tmp_path / "base.toml").write_text(_base_toml())
    bad = tmp_path / "bad.toml"
    bad.write_text(SWEEP_TOML.replace(old, new))
    out = tmp_path / "deep" / "out.zarr"
    assert main(["sweep", str(bad), "-o", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and __import__("re").search(match, err[0]), err
    assert not (tmp_path / "deep").exists()


# ------------------------------------------------------------------ designs
def test_columns_follow_the_parameters_and_ranges_are_checked_at_their_ends():
    """A sweep's columns are worked out once and again when a parameter changes; a
    numeric range is checked at its ends, so a value out of range is refused before
    anything runs (one line naming the parameter)."""
    sw = sweep.Sweep.of(BASE, {"patient.dispersion": (np.linspace(0.2, 0.8, 50),
                                                      "cm^2/min")}, design="zip").checked()
    first = sw.columns()
    assert sw.columns() is first
    sw.parameters[0].values = np.linspace(0.3, 0.9, 50)
    assert sw.columns()[0].numbers[0] == pytest.approx(0.3)
    for values in (np.linspace(0.2, 500.0, 50), np.linspace(-1.0, 0.8, 50)):
        bad = sweep.Sweep.of(BASE, {"patient.dispersion": (values, "cm^2/min")},
                             design="zip")
        with pytest.raises(ScenarioError, match=r"parameter\[0\]"):
            bad.checked()


def test_chunks_are_whole_hyperslabs():
    lay = sweep._store.Layout.plan(("a", "b", "c"), (3, 4, 5), 12)
    assert lay.chunks == (1, 2, 5)
    covered = np.concatenate([np.arange(a, b) for a, b in lay.tasks])
    np.testing.assert_array_equal(covered, np.arange(60))      # each scenario once
    for a, b in lay.tasks:
        reg = lay.region(a, b)
        assert int(np.prod([s.stop - s.start for s in reg.values()])) == b - a
    assert sweep._store.Layout.plan(("scenario",), (10,), 4).tasks == ((0, 4), (4, 8), (8, 10))


def test_distributions_have_their_moments_and_bounds():
    u = (np.arange(200000) + 0.5) / 200000
    p = sweep.Parameter("patient.dispersion", distribution="lognormal", mean="0.4 cm^2/min",
                        sd="0.2 cm^2/min").checked()
    x = p.ppf(u)
    assert p.unit == "cm^2/min"
    np.testing.assert_allclose([x.mean(), x.std()], [0.4, 0.2], rtol=2e-3)
    t = sweep.Parameter("patient.dispersion", distribution="normal", mean=0.4, sd=0.3,
                        low=0.1, high=0.6, unit="cm^2/min").checked().ppf(u)
    assert t.min() >= 0.1 and t.max() <= 0.6
    from scipy.stats import truncnorm

    ref = truncnorm((0.1 - 0.4) / 0.3, (0.6 - 0.4) / 0.3, loc=0.4, scale=0.3)
    np.testing.assert_allclose(np.median(t), ref.median(), rtol=1e-4)
    lu = sweep.Parameter("dose[0].rate", distribution="loguniform", low="0.1 mg/day",
                         high="10 mg/day").checked().ppf(np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(lu, [0.1, 1.0, 10.0])


def test_lhs_and_sobol_designs_from_python():
    params = {"patient.dispersion": sweep.Parameter("patient.dispersion",
                                                    distribution="uniform", low=0.2,
                                                    high=0.8, unit="cm^2/min"),
              "dose[0].rate": (np.array([0.5, 1.0, 2.0]), "mg/day")}
    lhs = sweep.Sweep.of(BASE, params, design="lhs", n=30, seed=3).checked()
    cols = lhs.columns()
    assert lhs.shape == (30,)
    # a Latin hypercube: one point per tenth of the range in every tenth
    strata = np.floor((cols[0].numbers - 0.2) / 0.6 * 30).astype(int)
    np.testing.assert_array_equal(np.sort(strata), np.arange(30))
    assert set(cols[1].raw) == {"0.5 mg/day", "1.0 mg/day", "2.0 mg/day"}
    again = sweep.Sweep.of(BASE, params, design="lhs", n=30, seed=3).checked().columns()
    np.testing.assert_array_equal(cols[0].numbers, again[0].numbers)
    sob = sweep.Sweep.of(BASE, params, design="sobol", n=8, seed=1).checked()
    assert sob.shape == (8 * 4,)


def test_sobol_indices_of_the_ishigami_function():
    """The Ishigami function's indices (analytic) from a store-like Dataset."""
    n, d = 1024, 3
    sw = sweep.Sweep.of(BASE, {f"drug.x{i}": sweep.Parameter(
        "patient.dispersion", distribution="uniform", low=0.1, high=1.0)
        for i in range(d)}, design="sobol", n=n, seed=7)
    u = sw.unit_samples()
    x = -np.pi + 2 * np.pi * u
    y = np.sin(x[:, 0]) + 7 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])
    ds = xr.Dataset({"y": ("scenario", y)},
                    attrs={"design": "sobol", "design_n": n,
                           "parameters": json.dumps(["x1", "x2", "x3"])})
    si = sweep.sobol_indices(ds, "y", seed=1)
    a, b = 7.0, 0.1
    v = a * a / 8 + b * np.pi ** 4 / 5 + b * b * np.pi ** 8 / 18 + 0.5
    s1 = [0.5 * (1 + b * np.pi ** 4 / 5) ** 2 / v, a * a / 8 / v, 0.0]
    st3 = 8 * b * b * np.pi ** 8 / 225 / v
    np.testing.assert_allclose(si.S1.values, s1, atol=0.05)
    assert abs(float(si.ST[2]) - st3) < 0.05
    assert np.all(si.S1_conf > 0) and "x2" in sweep.sobol_table(si)


def test_sobol_sweep_end_to_end(tmp_path, client):
    """A small Sobol design on the model: the dose rate drives plasma exposure, the
    dispersion does not (a linear model: AUC proportional to the rate)."""
    sw = sweep.Sweep.of(BASE, {
        "dose[0].rate": {"distribution": "uniform", "low": "0.5 mg/day", "high": "2 mg/day"},
        "patient.dispersion": {"distribution": "uniform", "low": 0.2, "high": 0.8,
                               "unit": "cm^2/min"}}, design="sobol", n=16, seed=2,
        chunk_size=16)
    out = sweep.run_sweep(sw, tmp_path / "s.zarr", client=client)
    ds = sweep.open_store(out)
    assert ds.sizes["scenario"] == 64 and ds["dose[0].rate"].attrs["units"] == "mg/day"
    rate = ds["dose[0].rate"].values
    assert rate.min() >= 0.5 and rate.max() <= 2.0
    si = sweep.sobol_indices(out, "plasma_concentration_auc", seed=0)
    assert float(si.ST.sel(parameter="dose[0].rate")) > 0.9
    assert float(si.ST.sel(parameter="patient.dispersion")) < 0.05
    fig = sweep.plot_sobol(si)
    assert len(fig.axes) == 1


# ------------------------------------------------------------------ clusters
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_cli_on_a_local_cluster_of_processes_and_interrupt_resume(files, store, tmp_path):
    """The CLI on real worker processes; SIGINT mid-sweep, then --resume equals a full run."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "cli.zarr"
    cmd = [sys.executable, "-m", "csfmodel", "sweep", str(files / "sweep.toml"), "-o", str(out),
           "--workers", "2", "--chunk-size", "1"]
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while time.time() - t0 < 120:
        try:
            if int(xr.open_zarr(out).scenario_done.sum()) >= 1:
                break
        except Exception:      # noqa: BLE001 - store not there yet
            pass
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    assert p.wait(60) == 130
    assert "--resume" in p.stderr.read()
    assert subprocess.run(cmd + ["--resume"], capture_output=True).returncode == 0
    got, ref = xr.open_zarr(out).load(), xr.open_zarr(store).load()
    assert int(got.scenario_done.sum()) == 6
    for v in ("brain_concentration_max", "segment_time_above", "solver_steps"):
        assert got[v].values.tobytes() == ref[v].values.tobytes(), v


@pytest.mark.slow
def test_a_worker_killed_mid_sweep_is_replaced(files, store, tmp_path):
    """A worker process killed while computing: its tasks run elsewhere, the sweep completes.

    The worker kills itself (SIGKILL) as its first sweep task starts executing, so the
    kill always falls inside the sweep however fast the machine is (a timer could fire
    after a quick sweep had finished)."""
    import os

    from distributed.diagnostics.plugin import WorkerPlugin

    class KillOnFirstTask(WorkerPlugin):
        def __init__(self, address: str):
            self.address, self.started = address, 0

        def setup(self, worker):
            self.worker = worker

        def transition(self, key, start, finish, **kwargs):
            if finish == "executing" and self.worker.address == self.address and \
                    "csfmodel-sweep" in str(key):
                self.started += 1
                if self.started == 1:
                    import signal

                    os.kill(os.getpid(), signal.SIGKILL)

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as lc, distributed.Client(lc) as c:
        pids = c.run(os.getpid)
        victim, victim_pid = next(iter(pids.items()))
        c.register_plugin(KillOnFirstTask(victim))
        sw = sweep.read_sweep(files / "sweep.toml")
        sw.chunk_size = 1
        out = sweep.run_sweep(sw, tmp_path / "k.zarr", client=c)
        assert victim_pid not in c.run(os.getpid).values()        # it did die mid-sweep
    got, ref = xr.open_zarr(out).load(), xr.open_zarr(store).load()
    assert int(got.scenario_done.sum()) == 6
    np.testing.assert_array_equal(got.brain_concentration_max.values,
                                  ref.brain_concentration_max.values)


@pytest.mark.slow
def test_dask_jobqueue_cluster_from_the_sweep_file(files, store, tmp_path):
    """[cluster] kind = "jobqueue-local": dask-jobqueue's job class standing in for SLURM."""
    pytest.importorskip("dask_jobqueue")
    text = SWEEP_TOML + ('[cluster]\nkind = "jobqueue-local"\ncores = 1\nmemory = "2GB"\n'
                         'processes = 1\njobs = 2\n')
    (files / "jq.toml").write_text(text)
    out = sweep.run_sweep(files / "jq.toml", tmp_path / "jq.zarr")
    got, ref = xr.open_zarr(out).load(), xr.open_zarr(store).load()
    np.testing.assert_array_equal(got.brain_concentration_auc.values,
                                  ref.brain_concentration_auc.values)


def test_open_store_refuses_other_directories(tmp_path):
    with pytest.raises(ScenarioError, match="zarr store"):
        sweep.open_store(tmp_path)


@pytest.mark.parametrize("name, size", [("grid", 48), ("sobol", 1280), ("slurm", 10**6)])
def test_example_sweep_files_validate(name, size):
    root = Path(__file__).resolve().parents[1] / "examples" / "sweeps"
    sw = sweep.read_sweep(root / f"{name}.toml")
    assert sw.size == size


def test_summary_rows_follow_the_metrics_and_effects_definitions():
    """The kernel's reductions along time (run here over stored series, the same compiled
    arithmetic) equal the definitions they stand for: numpy's argmax and trapezoids,
    metrics.cavg over the final window, metrics._time_above (columns that never reach
    the threshold, stay above it, or cross it) and the peak of effects._filter; on an
    irregular time grid, with windows that start on a sample, between samples, inside
    the last interval and before the run."""
    from csfmodel.effects import _filter
    from csfmodel.solvers import Summary
    from csfmodel.solvers._prepare import summarize

    rng = np.random.default_rng(7)
    t = np.cumsum(rng.uniform(1.0, 9.0, 300))
    y = np.cumsum(rng.normal(0.0, 1.0, (5, 300, 6)), axis=1) + 5.0
    y[3, :, 4] = 20.0                          # above the threshold throughout
    y[4, :, 5] = -3.0                          # never reaches it
    thr = 6.0
    half_lives = np.array([0.0, 17.0, 60.0, 300.0, 1e-9])
    for window in (t[-1] - t[200], t[-1] - t[200] - 0.3, 0.5 * (t[-1] - t[-2]), 1e6):
        s = Summary(window=window, threshold=thr, effect_row=2, effect_half_life=half_lives)
        assert s.rows == Summary.ROWS
        out = summarize(y, t, s)
        arg = np.argmax(y, axis=1)
        np.testing.assert_array_equal(out[:, 0], np.take_along_axis(y, arg[:, None], 1)[:, 0])
        np.testing.assert_array_equal(out[:, 1], t[arg])
        ref_area = np.sum(np.diff(t)[None, :, None] * (y[:, 1:] + y[:, :-1]) / 2.0, axis=1)
        np.testing.assert_allclose(out[:, 2], ref_area, rtol=1e-13)
        np.testing.assert_array_equal(out[:, 3], y[:, -1])
        for k in range(5):
            da = xr.DataArray(y[k], dims=("time", "row"), coords={"time": t / 60.0})
            start = max(t[-1] - window, t[0]) / 60.0
            np.testing.assert_allclose(out[k, 4], metrics.cavg(da, start=start).values,
                                       rtol=1e-12)
            np.testing.assert_allclose(out[k, 5] / 60.0,
                                       metrics._time_above(t / 60.0, y[k], thr),
                                       rtol=1e-12, atol=1e-12)
            ce = _filter(y[k, :, 2], t / 60.0, half_lives[k] / 60.0)
            np.testing.assert_allclose(out[k, 6, 2], ce.max(), rtol=1e-12)
            assert np.all(out[k, 6, [0, 1, 3, 4, 5]] == 0.0)
    # only the rows asked for, in their order; one half-life for all members
    s = Summary(threshold=thr)
    assert s.rows == ("max", "time_of_max", "integral", "final", "time_above")
    np.testing.assert_array_equal(summarize(y, t, s)[:, 4], out[:, 5])
    one = Summary(effect_row=2, effect_half_life=60.0)
    np.testing.assert_array_equal(summarize(y, t, one)[2, 4],
                                  summarize(y, t, Summary(effect_row=2,
                                                          effect_half_life=half_lives))[2, 4])


def test_summary_arguments_are_checked():
    from csfmodel.solvers import Summary

    for kw, key in [({"window": -1.0}, "summary.window"),
                    ({"threshold": float("nan")}, "summary.threshold"),
                    ({"effect_row": -2}, "summary.effect_row"),
                    ({"effect_half_life": [1.0, -1.0]}, "summary.effect_half_life")]:
        with pytest.raises(ScenarioError, match=key.replace(".", r"\.")):
            Summary(**kw)


def test_summary_of_one_output_time():
    """A single output time: every reduction is of that one sample (no NaN, no zero)."""
    from csfmodel.solvers import Summary
    from csfmodel.solvers._prepare import summarize

    y = np.array([[[3.0, 12.0]]])
    out = summarize(y, np.array([60.0]), Summary(window=30.0, threshold=10.0, effect_row=1,
                                                 effect_half_life=0.0))
    np.testing.assert_array_equal(out[0], [[3.0, 12.0], [60.0, 60.0], [0.0, 0.0],
                                           [3.0, 12.0], [3.0, 12.0], [0.0, 0.0],
                                           [0.0, 12.0]])
