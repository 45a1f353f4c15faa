"""Every command-line path fails with one line (no traceback) and never loses or litters files.

Covers: unreadable / binary / huge / non-regular scenario files, outputs that cannot be
written (checked before simulating), atomic writes (a failing run leaves a good existing
file untouched and no temporary file), ``-o`` equal to an input, ``metrics`` on files it
cannot use, a closed stdout (``| head -1``), out-of-memory and internal errors, figures
only where asked for, and sweep directories (resume checks chunks, stale temporaries,
a concurrent sweep, a failed sweep leaving nothing behind).
"""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from conftest import requires_dask

import csfmodel
from csfmodel.cli import main

SCEN = """\
[simulation]
duration = "2 h"
output_interval = "10 min"
resolution = "1 cm"
solver = "reference"

[[dose]]
route = "intrathecal"
type = "bolus"
site = "L3"
amount = "0.3 mg"
volume = "1 mL"
"""
CLI = Path(sys.executable).with_name("csfmodel")


# ------------------------------------------------------------------ helpers
def _one_error_line(err: str) -> str:
    """The single stderr line of a failed command (and no traceback)."""
    assert "Traceback" not in err
    # the one-time notice of a first numba compile (a clean cache, as in CI) is not an error
    lines = [ln for ln in err.strip().splitlines()
             if not ln.startswith("csfmodel: compiling the numba solver")]
    assert len(lines) == 1, err
    assert lines[0].startswith("csfmodel: ")
    return lines[0]


def _fails(argv: list[str], capsys, code: int = 2) -> str:
    assert main(argv) == code
    return _one_error_line(capsys.readouterr().err)


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _no_temporaries(d: Path) -> None:
    assert not [p.name for p in d.iterdir() if p.name.endswith(".part")]


@pytest.fixture
def scen(tmp_path) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(SCEN)
    return p


@pytest.fixture
def good_nc(tmp_path, scen) -> Path:
    """An existing, valid results file."""
    out = tmp_path / "good.nc"
    assert main(["run", str(scen), "-o", str(out)]) == 0
    return out


@pytest.fixture
def no_simulation(monkeypatch):
    """Fail the test if a simulation starts (arguments must be refused before)."""
    import csfmodel.api

    def boom(*a, **k):
        raise AssertionError("simulated although an argument was bad")

    monkeypatch.setattr(csfmodel.api, "simulate_to_file", boom)


# ------------------------------------------------------------------ scenario files
def test_binary_scenario_is_refused_naming_file_and_byte(tmp_path, capsys):
    p = tmp_path / "bin.toml"
    p.write_bytes(b"[simulation]\nduration = \"2 h\"\n\xff\xfe\x00garbage")
    line = _fails(["run", str(p), "-o", str(tmp_path / "o.nc")], capsys)
    assert "bin.toml" in line and "position 30 (line 3)" in line and "UTF-8" in line


def test_nul_bytes_are_refused_as_binary(tmp_path, capsys):
    p = tmp_path / "zeros.toml"
    p.write_bytes(b"\x00" * 100)
    assert "binary" in _fails(["run", str(p), "-o", str(tmp_path / "o.nc")], capsys)


def test_utf8_bom_is_accepted(tmp_path, capsys):
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + SCEN.encode())
    assert main(["run", str(p), "-o", str(tmp_path / "o.nc")]) == 0
    assert csfmodel.load(tmp_path / "o.nc").sizes["time"] == 13


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_scenario_is_refused_at_once(tmp_path, capsys):
    line = _fails(["run", "/dev/zero", "-o", str(tmp_path / "o.nc")], capsys)
    assert "not a regular file" in line


def test_directory_as_scenario_is_refused(tmp_path, capsys):
    assert "is a directory" in _fails(["run", str(tmp_path), "-o", str(tmp_path / "o.nc")],
                                      capsys)


def test_huge_scenario_is_refused(tmp_path, capsys):
    p = tmp_path / "big.toml"
    p.write_text("# " + "x" * (5 * 1024 * 1024) + "\n" + SCEN)
    assert "limit" in _fails(["run", str(p), "-o", str(tmp_path / "o.nc")], capsys)


def test_missing_scenario_is_one_line(tmp_path, capsys):
    _fails(["run", str(tmp_path / "nope.toml"), "-o", str(tmp_path / "o.nc")], capsys)


# ------------------------------------------------------------------ outputs checked first
@pytest.mark.parametrize("ext", ["xyz", ""])
def test_bad_plot_extension_is_refused_before_simulating(tmp_path, scen, capsys, no_simulation,
                                                         ext):
    fig = tmp_path / (f"fig.{ext}" if ext else "fig")
    line = _fails(["run", str(scen), "-o", str(tmp_path / "o.nc"), "--plot", str(fig)],
                  capsys)
    assert line.startswith("csfmodel: error: --plot: got ") and ".png" in line


def test_output_equal_to_scenario_is_refused(tmp_path, scen, capsys, no_simulation):
    before = _digest(scen)
    for out in (str(scen), str(tmp_path / "sub" / ".." / "s.toml")):
        (tmp_path / "sub").mkdir(exist_ok=True)
        line = _fails(["run", str(scen), "-o", out], capsys)
        assert "--output" in line and "input" in line
    link = tmp_path / "link.toml"
    link.symlink_to(scen)
    assert "input" in _fails(["run", str(scen), "-o", str(link)], capsys)
    assert _digest(scen) == before


def test_plot_equal_to_output_is_refused(tmp_path, scen, capsys, no_simulation):
    out = str(tmp_path / "o.png")
    assert "--plot" in _fails(["run", str(scen), "-o", out, "--plot", out], capsys)


def test_output_directory_is_refused(tmp_path, scen, capsys, no_simulation):
    assert "is a directory" in _fails(["run", str(scen), "-o", str(tmp_path)], capsys)


def test_output_under_a_regular_file_is_refused(tmp_path, scen, capsys, no_simulation):
    line = _fails(["run", str(scen), "-o", str(scen / "deeper" / "o.nc")], capsys)
    assert "--output" in line and "not a directory" in line


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="no /proc")
def test_output_in_proc_is_refused(scen, capsys, no_simulation):
    assert "--output" in _fails(["run", str(scen), "-o", "/proc/csfmodel_out.nc"], capsys)


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
def test_output_onto_a_device_is_refused(scen, capsys, no_simulation):
    assert "not a regular file" in _fails(["run", str(scen), "-o", "/dev/null"], capsys)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only directories")
def test_output_in_read_only_directory_is_refused(tmp_path, scen, capsys, no_simulation):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        assert "--output" in _fails(["run", str(scen), "-o", str(d / "o.nc")], capsys)
    finally:
        d.chmod(0o700)


def test_missing_output_directories_are_created(tmp_path, scen):
    out = tmp_path / "a" / "b" / "o.nc"
    assert main(["run", str(scen), "-o", str(out), "--plot", str(tmp_path / "f" / "o.svg")]) == 0
    assert csfmodel.load(out).sizes["time"] == 13
    assert (tmp_path / "f" / "o.svg").read_bytes().lstrip().startswith(b"<?xml")


# ------------------------------------------------------------------ atomic writes
def test_good_output_untouched_after_invalid_scenario(tmp_path, good_nc, capsys):
    before = _digest(good_nc)
    bad = tmp_path / "bad.toml"
    bad.write_text(SCEN.replace('"0.3 mg"', '"-1 mg"'))
    _fails(["run", str(bad), "-o", str(good_nc)], capsys)
    assert _digest(good_nc) == before


def test_good_output_untouched_when_the_write_fails(tmp_path, scen, good_nc, capsys,
                                                    monkeypatch):
    before = _digest(good_nc)

    def half_written(self, path, *a, **k):  # what a full disk does to netCDF4
        Path(path).write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
        raise RuntimeError("NetCDF: HDF error")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", half_written)
    line = _fails(["run", str(scen), "-o", str(good_nc)], capsys)
    assert "good.nc" in line and "HDF error" in line and ".part" not in line
    assert _digest(good_nc) == before
    _no_temporaries(tmp_path)


def test_good_output_untouched_when_permission_is_denied(tmp_path, scen, good_nc, capsys,
                                                         monkeypatch):
    before = _digest(good_nc)

    def refuse(self, path, *a, **k):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(xr.Dataset, "to_netcdf", refuse)
    line = _fails(["run", str(scen), "-o", str(good_nc)], capsys)
    assert "'" + str(good_nc) + "'" in line and "Permission denied" in line
    assert _digest(good_nc) == before
    _no_temporaries(tmp_path)


@pytest.mark.skipif(not CLI.exists(), reason="csfmodel script not installed")
def test_full_disk_leaves_no_truncated_file_subprocess(tmp_path, scen, good_nc):
    """A write past RLIMIT_FSIZE fails like a full disk (EFBIG / 'NetCDF: HDF error')."""
    before = _digest(good_nc)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (8000, 8000))

    for target in (good_nc, tmp_path / "new.nc"):
        r = subprocess.run([str(CLI), "run", str(scen), "-o", str(target)], cwd=tmp_path,
                           capture_output=True, text=True, preexec_fn=limit, timeout=300)
        assert r.returncode == 2, r.stderr
        assert target.name in _one_error_line(r.stderr)
    assert _digest(good_nc) == before
    assert not (tmp_path / "new.nc").exists()
    _no_temporaries(tmp_path)


# ------------------------------------------------------------------ main(): error classes
def test_memory_error_is_one_line(tmp_path, scen, capsys, monkeypatch):
    import csfmodel.api

    def oom(*a, **k):
        raise MemoryError

    monkeypatch.setattr(csfmodel.api, "simulate_to_file", oom)
    assert "output_interval" in _fails(["run", str(scen), "-o", str(tmp_path / "o.nc")], capsys)


def test_os_error_names_path_and_reason(tmp_path, scen, capsys, monkeypatch):
    import csfmodel.api

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", "/some/where")

    monkeypatch.setattr(csfmodel.api, "simulate_to_file", denied)
    line = _fails(["run", str(scen), "-o", str(tmp_path / "o.nc")], capsys)
    assert line == "csfmodel: error: '/some/where': Permission denied"


def test_internal_error_is_one_line_and_debug_shows_traceback(tmp_path, scen, capsys,
                                                              monkeypatch):
    import csfmodel.api

    def bug(*a, **k):
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr(csfmodel.api, "simulate_to_file", bug)
    monkeypatch.delenv("CSFMODEL_DEBUG", raising=False)
    argv = ["run", str(scen), "-o", str(tmp_path / "o.nc")]
    line = _fails(argv, capsys, code=3)
    assert line == ("csfmodel: internal error: ZeroDivisionError: division by zero second line "
                    "(set CSFMODEL_DEBUG=1 for the traceback; please report)")
    monkeypatch.setenv("CSFMODEL_DEBUG", "1")
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err


def test_keyboard_interrupt_is_130(tmp_path, scen, capsys, monkeypatch):
    import csfmodel.api

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(csfmodel.api, "simulate_to_file", stop)
    assert _fails(["run", str(scen), "-o", str(tmp_path / "o.nc")], capsys,
                  code=130) == "csfmodel: interrupted"


# ------------------------------------------------------------------ broken pipe
@pytest.mark.skipif(not CLI.exists(), reason="csfmodel script not installed")
@pytest.mark.parametrize("command", ["presets", "run", "help"])
def test_closed_stdout_exits_quietly_subprocess(tmp_path, scen, command):
    """As `csfmodel ... | head -1` when head has gone: no traceback, files still written."""
    argv = {"presets": ["presets"],
            "run": ["run", str(scen), "-o", str(tmp_path / "o.nc")],
            "help": ["run", "--help"]}[command]
    p = subprocess.Popen([str(CLI), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=tmp_path)
    p.stdout.close()                       # the reader is gone before anything is printed
    err = p.stderr.read().decode()
    assert p.wait(timeout=300) == (0 if command == "help" else 1)
    assert err == ""
    if command == "run":
        assert csfmodel.load(tmp_path / "o.nc").sizes["time"] == 13


@pytest.mark.skipif(not CLI.exists(), reason="csfmodel script not installed")
def test_pipe_into_head_subprocess(tmp_path, scen):
    r = subprocess.run(f"'{CLI}' presets | head -1; exit ${{PIPESTATUS[0]}}", shell=True,
                       executable="/bin/bash", capture_output=True, text=True, cwd=tmp_path,
                       timeout=120)
    assert r.stdout.count("\n") == 1
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr
    assert r.returncode in (0, 1)


@pytest.mark.skipif(not CLI.exists(), reason="csfmodel script not installed")
def test_subprocess_errors_are_one_line(tmp_path):
    p = tmp_path / "bin.toml"
    p.write_bytes(os.urandom(64) + b"\xff")
    r = subprocess.run([str(CLI), "run", str(p), "-o", str(tmp_path / "o.nc")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "bin.toml" in _one_error_line(r.stderr)
    nc = p.rename(tmp_path / "bin.nc")
    r = subprocess.run([str(CLI), "metrics", str(nc)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "not a netCDF file" in _one_error_line(r.stderr)


# ------------------------------------------------------------------ metrics
def test_metrics_on_an_unrelated_netcdf_names_what_is_missing(tmp_path, capsys):
    p = tmp_path / "other.nc"
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_netcdf(p)
    line = _fails(["metrics", str(p)], capsys)
    assert "missing variable(s) csf_concentration" in line and "plasma_concentration" in line


def test_metrics_on_a_truncated_file(tmp_path, good_nc, capsys):
    p = tmp_path / "trunc.nc"
    data = good_nc.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    assert "truncated" in _fails(["metrics", str(p)], capsys)


def test_metrics_on_a_text_file_directory_and_device(tmp_path, capsys):
    p = tmp_path / "text.nc"
    p.write_text("time,value\n0,1\n")
    assert "not a netCDF file" in _fails(["metrics", str(p)], capsys)
    assert "is a directory" in _fails(["metrics", str(tmp_path)], capsys)
    assert "results" in _fails(["metrics", str(tmp_path / "missing.nc")], capsys)
    if os.path.exists("/dev/zero"):
        assert "not a regular file" in _fails(["metrics", "/dev/zero"], capsys)


def test_metrics_effects_without_scenario_attribute(tmp_path, good_nc, capsys):
    ds = csfmodel.load(good_nc)
    del ds.attrs["scenario"]
    p = tmp_path / "noscen.nc"
    ds.to_netcdf(p)
    line = _fails(["metrics", str(p), "--effects"], capsys)
    assert line.startswith("csfmodel: error: --effects: ") and "scenario" in line
    assert main(["metrics", str(p)]) == 0          # plain metrics do not need it
    assert main(["metrics", str(good_nc), "--effects", "--json"]) == 0


# ------------------------------------------------------------------ figures only on request
def test_compare_writes_no_figure_unless_asked(tmp_path, capsys, monkeypatch):
    import csfmodel.compare as cmp

    class Stub:
        def to_dict(self):
            return {"ratios": {}}

        def table(self):
            return "table"

        def plot(self, path=None):
            raise AssertionError("drew a figure nobody asked for")

    monkeypatch.setattr(cmp, "compare_routes", lambda **kw: Stub())
    monkeypatch.chdir(tmp_path)
    for extra in (["--json"], []):
        assert main(["compare", *extra]) == 0
    capsys.readouterr()
    assert list(tmp_path.iterdir()) == []
    assert "--plot" in _fails(["compare", "--json", "--plot", "fig.xyz"], capsys)


def test_validate_writes_no_figure_unless_asked(tmp_path, capsys, monkeypatch):
    import csfmodel.validation as val

    monkeypatch.setattr(val, "run_validation", lambda *a, **k: ([], {}))
    monkeypatch.setattr(val, "format_table", lambda results: "table")
    monkeypatch.setattr(val, "plot_validation", lambda *a: pytest.fail("unasked figure"))
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 0
    assert list(tmp_path.iterdir()) == []
    assert "--figure" in _fails(["validate", "--figure", "v.xyz"], capsys)
    assert "--predictions" in _fails(["validate", "--figure", "v.png", "--predictions",
                                      "v.png"], capsys)
    data = tmp_path / "cal.png"          # an odd name for a CSV, but an input all the same
    data.write_text("id,value\n")
    assert "input" in _fails(["validate", "--data", str(data), "--figure", str(data)], capsys)


# ------------------------------------------------------------------ atomic helper
def test_atomic_path_keeps_target_on_failure_and_cleans_up(tmp_path):
    from csfmodel._io import atomic_path, write_text

    target = tmp_path / "x.json"
    write_text(target, "old")
    with pytest.raises(OSError, match="disk"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise OSError(28, "disk full")
    assert target.read_text() == "old"
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            raise ValueError("writer bug")
    assert target.read_text() == "old"
    _no_temporaries(tmp_path)
    write_text(target, "new")
    assert target.read_text() == "new"
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    _no_temporaries(tmp_path)


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


# ------------------------------------------------------------------ sweeps
BASE = """\
[simulation]
duration = "2 h"
output_interval = "30 min"
resolution = "2 cm"

[[dose]]
route = "intrathecal"
type = "infusion"
site = "T10"
rate = "1 mg/day"
"""
RATES = "dose[0].rate=0.5 mg/day;1 mg/day"


@pytest.fixture
def base(tmp_path) -> Path:
    p = tmp_path / "base.toml"
    p.write_text(BASE)
    return p


@requires_dask
def test_sweep_output_checks(tmp_path, base, capsys):
    assert "input" in _fails(["sweep", str(base), "-o", str(base), "--param", RATES], capsys)
    assert "not a directory" in _fails(["sweep", str(base), "-o", str(base / "x"),
                                        "--param", RATES], capsys)
    f = tmp_path / "file"
    f.write_text("")
    assert "--output" in _fails(["sweep", str(base), "-o", str(f), "--param", RATES], capsys)
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe")
    assert "bad.toml" in _fails(["sweep", str(bad), "-o", str(tmp_path / "o"),
                                 "--param", RATES], capsys)
    assert "bad.toml" in _fails(["sweep", str(bad), "-o", str(tmp_path / "o")], capsys)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert "not a csfmodel sweep store" in _fails(["sweep", str(base), "-o", str(other),
                                                   "--param", RATES], capsys)
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX lock")
def test_second_sweep_on_the_same_store_is_refused(tmp_path, base, capsys):
    import fcntl

    pytest.importorskip("numba")
    out = tmp_path / "sweep.zarr"
    assert main(["sweep", str(base), "-o", str(out), "--param", RATES, "--workers", "1",
                 "--no-progress"]) == 0
    capsys.readouterr()
    before = sorted(p.name for p in out.iterdir())
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        line = _fails(["sweep", str(base), "-o", str(out), "--param", RATES, "--resume"],
                      capsys)
    finally:
        os.close(fd)
    assert "--output" in line and "another csfmodel sweep" in line
    assert sorted(p.name for p in out.iterdir()) == before


@pytest.mark.slow
def test_failed_sweep_leaves_nothing_and_reruns(tmp_path, base, capsys):
    pytest.importorskip("numba")
    out = tmp_path / "deep" / "sweep.zarr"
    line = _fails(["sweep", str(base), "-o", str(out), "--chunk-size", "1",
                   "--param", "dose[0].rate=0.5 mg/day;1 kg/day"], capsys)
    assert "1 kg/day" in line
    assert not (tmp_path / "deep").exists()
    assert main(["sweep", str(base), "-o", str(out), "--chunk-size", "1", "--workers", "1",
                 "--param", RATES]) == 0
    assert int(xr.open_zarr(out).scenario_done.sum()) == 2
