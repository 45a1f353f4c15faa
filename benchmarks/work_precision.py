"""Work-precision diagram: error against wall time for every backend and method.

Usage (from the repository root)::

    python benchmarks/work_precision.py --out benchmarks/figures/work_precision.png

The problem is the suite's benchmark scenario (``scenarios/pump_7d_5mm.toml``: one
week of a T10 pump with four patient boluses a day, output every 5 min; 2017
output times) at 5 mm (217 states) and 1 mm (1043 states). Each method runs at
several tolerances; its error is the largest difference from an exact solution
over every output time, relative to the peak of each variable (spinal CSF, and
each compartment), worst of them (the measure of ``benchmarks/conftest.py``), and
its time the best of a few runs (compilation excluded: numba loads its kernels
first, jax and diffrax are called once before timing).

The exact solution is the ``expm`` backend (matrix exponentials on the output
grid, exact to rounding); it is cross-checked against the scipy reference at its
tightest tolerance (Radau, rtol 1e-13, one of Radau's points), and that difference
is what is plotted as the ``expm`` point's error (an upper bound: it is the
reference's own error).

Methods: numba (``esdirk3``, ``trbdf2``), jax (``esdirk3``), ``expm``, the
reference backend (scipy ``solve_ivp`` Radau and BDF, restarted at every dose
event) and, as an outside anchor, diffrax (Kvaerno5, an L-stable 5th-order ESDIRK,
with a PID step-size controller on the same dense linear system, restarted at
every dose event). BLAS runs on one thread (``OPENBLAS_NUM_THREADS=1`` unless set),
as the numba single-run kernel does, so that every method gets one core.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))

from conftest import _relative_error, scenario_dict  # noqa: E402

from csfmodel.api import prepare  # noqa: E402
from csfmodel.solvers import SolverOptions, get_backend  # noqa: E402

#: tolerances per method (rtol); the loosest first (it also warms up the compiled code)
TOLERANCES = {
    "numba esdirk3": [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11],
    "numba trbdf2": [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8],
    "jax esdirk3": [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8],
    "scipy Radau (reference)": [1e-4, 1e-6, 1e-8, 1e-10, 1e-13],
    "scipy BDF (reference)": [1e-4, 1e-6, 1e-8, 1e-10],
    "diffrax Kvaerno5": [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8],
}
#: fewer points for the slow methods on fine grids (minutes per point at 1 mm)
FINE_TOLERANCES = {"scipy Radau (reference)": [1e-5, 1e-9, 1e-13],
                   "scipy BDF (reference)": [1e-5, 1e-9]}
#: the tightest reference run, against which the exact solution is checked
CROSS_CHECK = ("scipy Radau (reference)", 1e-13)
STYLE = {
    "numba esdirk3": ("C0", "o-"), "numba trbdf2": ("C0", "s--"),
    "jax esdirk3": ("C2", "^-"), "scipy Radau (reference)": ("C7", "D-"),
    "scipy BDF (reference)": ("C7", "v--"), "diffrax Kvaerno5": ("C4", "P-"),
    "expm": ("C3", "*"),
}


def timed(fn, repeat: int, budget: float = 1.0):
    """``(best wall time, result)``: one run, more (up to ``repeat``) while each is short."""
    t0 = time.perf_counter()
    result = fn()
    best = time.perf_counter() - t0
    for _ in range(repeat - 1):
        if best > budget:
            break
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


class Diffrax:
    """diffrax on ``dy/dt = J y + u``: one jitted solve per dose interval (padded outputs)."""

    def __init__(self, system, schedule, t_out):
        import diffrax
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        self.schedule, self.t_out = schedule, t_out
        J = jnp.asarray(system.to_dense())
        ends = np.append(schedule.times[1:], schedule.t_end)
        last = len(ends) - 1
        self.sel = [np.flatnonzero((t_out >= t0) & ((t_out < t1) | ((k == last) & (t_out <= t1))))
                    for k, (t0, t1) in enumerate(zip(schedule.times, ends))]
        self.ends = ends
        width = max(len(s) for s in self.sel)
        term = diffrax.ODETerm(lambda t, y, u: J @ y + u)

        @jax.jit
        def interval(y0, t0, t1, u, ts, rtol, atol):
            sol = diffrax.diffeqsolve(
                term, diffrax.Kvaerno5(), t0, t1, None, y0, args=u,
                saveat=diffrax.SaveAt(ts=ts, t1=True),
                stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
                max_steps=1_000_000, adjoint=diffrax.ForwardMode())
            return sol.ys, sol.stats["num_steps"]

        self.interval, self.width, self.jnp = interval, width, jnp

    def solve(self, rtol: float):
        sch, n = self.schedule, self.schedule.jumps.shape[1]
        out = np.empty((len(self.t_out), n))
        y = np.zeros(n)
        atol = 1e-7 * rtol * sch.total_dosed()
        steps = 0
        for k, (t0, t1) in enumerate(zip(sch.times, self.ends)):
            y = y + sch.jumps[k]
            ts = np.full(self.width, t1)
            ts[:len(self.sel[k])] = self.t_out[self.sel[k]]
            ys, ns = self.interval(y, t0, t1, sch.rates[k], ts, rtol, atol)
            ys = np.asarray(ys)
            out[self.sel[k]] = ys[:len(self.sel[k])]
            y = ys[-1]
            steps += int(ns)
        return out, steps


def measure(res: str, methods: list[str], repeat: int, log) -> dict:
    prep = prepare(scenario_dict(res))
    system, schedule, t_out = prep.model.system, prep.schedule, prep.t_out
    n_sp = system.n_spinal
    log(f"{res}: {system.n_state} states, {len(t_out)} output times, "
        f"{len(schedule.times)} dose events")
    expm = get_backend("expm")
    expm.solve(system, schedule, t_out[:2])                          # imports (scipy.linalg)
    t_exact, exact_sol = timed(lambda: expm.solve(system, schedule, t_out), repeat)
    exact = exact_sol.states
    log(f"  expm: {t_exact * 1e3:.1f} ms ({exact_sol.stats.factorizations} exponential(s), "
        f"{exact_sol.stats.steps} steps)")
    results = {"n_state": system.n_state, "n_out": len(t_out)}
    fine = system.n_state > 300
    cross = None
    for method in methods:
        rows = []
        if method.startswith("diffrax"):
            dfx = Diffrax(system, schedule, t_out)
            dfx.solve(TOLERANCES[method][0])                      # compile

            def run(rtol, dfx=dfx):
                return dfx.solve(rtol)
        else:
            name, meth = method.split()[:2]
            backend = get_backend({"scipy": "reference"}.get(name, name))
            backend.solve(system, schedule, t_out,
                          SolverOptions(rtol=TOLERANCES[method][0], method=meth))  # warm up

            def run(rtol, backend=backend, meth=meth):
                sol = backend.solve(system, schedule, t_out, SolverOptions(rtol=rtol, method=meth))
                return sol.states, sol.stats.steps
        for rtol in (FINE_TOLERANCES if fine else {}).get(method, TOLERANCES[method]):
            seconds, (states, steps) = timed(lambda rtol=rtol: run(rtol), repeat)
            err = _relative_error(states, exact, n_sp)
            if (method, rtol) == CROSS_CHECK:
                cross = _relative_error(exact, states, n_sp)
            rows.append({"rtol": rtol, "seconds": seconds, "error": err, "steps": steps})
            log(f"  {method:<24} rtol {rtol:7.0e}: {seconds * 1e3:9.1f} ms, error {err:8.1e}"
                + (f", {steps} steps" if steps is not None else ""))
        results[method] = rows
    # the exact solution's own error: no better known than its distance from the tightest
    # reference run (an upper bound)
    results["expm"] = [{"rtol": None, "seconds": t_exact, "error": cross,
                        "steps": exact_sol.stats.steps}]
    if cross is not None:
        log(f"  expm differs from {CROSS_CHECK[0]} at rtol {CROSS_CHECK[1]:g} by {cross:.1e} "
            "of peak")
    return results


def plot(data: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(data), figsize=(6.2 * len(data), 5.0), squeeze=False)
    for ax, (res, d) in zip(axes[0], data.items()):
        for method, rows in d.items():
            if not isinstance(rows, list):
                continue
            color, fmt = STYLE[method]
            x = [r["seconds"] for r in rows]
            y = [max(r["error"] if r["error"] is not None else 1e-16, 1e-16) for r in rows]
            if method == "expm":
                ax.plot(x, y, fmt, color=color, ms=16, zorder=5,
                        label="expm: exact propagation (error: its distance from Radau "
                              "at rtol 1e-13, an upper bound)")
                continue
            ax.plot(x, y, fmt, color=color, label=method, ms=5, lw=1.2)
            for r, xi, yi in zip(rows, x, y):
                if r["rtol"] in (rows[0]["rtol"], rows[-1]["rtol"]):
                    ax.annotate(f"{r['rtol']:.0e}", (xi, yi), fontsize=6, color=color,
                                xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("wall time (s, one core, best of runs)")
        ax.set_ylabel("max |error| / peak (worst variable)")
        ax.set_title(f"7-day pump, {res} ({d['n_state']} states, {d['n_out']} outputs)")
        ax.grid(True, which="major", alpha=0.3)
    handles: dict = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    order = [m for m in STYLE if m != "expm"] + ["expm"]
    labels = [lab for m in order for lab in handles if lab.split(":")[0] == m]
    fig.legend([handles[lab] for lab in labels], labels, loc="lower center", ncol=4,
               fontsize=8, frameon=False)
    fig.suptitle("Work-precision: error against the exact solution vs wall time "
                 "(labels: rtol)", fontsize=11)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/figures/work_precision.png"),
                   help="the figure (PNG)")
    p.add_argument("--json", type=Path, default=None,
                   help="the numbers (default: next to the figure, .json)")
    p.add_argument("--replot", action="store_true",
                   help="draw the figure from the numbers in --json, measure nothing")
    p.add_argument("--resolutions", default="5mm,1mm",
                   help="comma-separated: 10mm, 5mm, 2mm, 1mm (default 5mm,1mm)")
    p.add_argument("--repeat", type=int, default=3, help="runs per point (best is kept)")
    p.add_argument("--no-jax", action="store_true", help="leave out jax and diffrax")
    args = p.parse_args(argv)
    numbers = args.json or args.out.with_suffix(".json")
    if args.replot:
        plot(json.loads(numbers.read_text()), args.out)
        print(f"figure: {args.out} (from {numbers})")
        return 0
    have_jax = importlib.util.find_spec("jax") is not None and not args.no_jax
    have_diffrax = have_jax and importlib.util.find_spec("diffrax") is not None

    def log(msg: str) -> None:
        print(msg, flush=True)

    data = {}
    for res in args.resolutions.split(","):
        methods = ["numba esdirk3", "numba trbdf2", "scipy Radau (reference)",
                   "scipy BDF (reference)"]
        if have_jax:
            methods.insert(2, "jax esdirk3")
        if have_diffrax and res not in ("1mm", "2mm"):   # dense LU per step: minutes at 1 mm
            methods.append("diffrax Kvaerno5")
        data[res] = measure(res, methods, args.repeat, log)
    plot(data, args.out)
    numbers.write_text(json.dumps(data, indent=1) + "\n")
    log(f"figure: {args.out}; numbers: {numbers}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
