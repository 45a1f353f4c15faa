"""The runner: every study design behind the rows, simulated once, each row scored;
and the validation table."""

from __future__ import annotations

import math
from typing import Any

from ._designs import _measure_of, _sample_site
from ._measures import _plateau_run, _Run
from ._rows import FACTOR, KNOWN_DISAGREEMENTS, NOT_MODELLED, Row, RowResult, load_rows, score


def run_validation(rows: list[Row] | None = None, *, overrides: dict | None = None,
                   solver: str | None = None, return_runs: bool = False):
    """Run every study design behind ``rows`` and score each row.

    Parameters
    ----------
    rows
        Rows to judge (default: the packaged calibration table).
    overrides
        Parameter overrides in scenario form, for sensitivity analyses:
        ``{"patient": {...}, "drug": {...}, "tracer": {...}, "resolution": "5 mm"}``
        (``tracer`` applies to the ``dtpa`` preset of the Kroin design).
    solver
        Backend name (default: the scenario default).

    Returns
    -------
    list of RowResult
        (and the simulated runs by arm name if ``return_runs``). A row with no
        study design gets a NaN model value and fails.
    """
    from csfmodel.api import prepare, simulate

    rows = load_rows() if rows is None else rows
    ov = overrides or {}
    needed: dict[str, dict] = {}
    for row in rows:
        if row.id in NOT_MODELLED:
            continue
        try:
            design, _ = _measure_of(row.id)
        except KeyError:
            continue
        needed.update(design.scenarios(ov))
    runs: dict[str, Any] = {}
    for arm, sc in needed.items():
        if sc.pop("_plateau", False):
            runs[arm] = _plateau_run(sc)
            continue
        ds = simulate(sc, solver=solver)
        z = None
        site = _sample_site(arm)
        if site is not None:
            z = prepare(sc).scenario.anatomy.level_z(*site)
        runs[arm] = _Run(ds, z)
    results = []
    for row in rows:
        if row.id in NOT_MODELLED:
            results.append(RowResult(row, float("nan"), float("nan"), False, "not modelled",
                                     expected="not modelled: " + NOT_MODELLED[row.id]))
            continue
        try:
            _, measure = _measure_of(row.id)
        except KeyError:
            results.append(RowResult(row, float("nan"), float("nan"), False, "no study design"))
            continue
        value, how = measure(runs, row)
        ratio, ok = score(row, value)
        results.append(RowResult(row, float(value), ratio, ok, how,
                                 expected=KNOWN_DISAGREEMENTS.get(row.id, "")))
    return (results, runs) if return_runs else results


def format_table(results: list[RowResult]) -> str:
    """The validation table: row, observed, model, ratio, pass."""
    w = max(len(r.row.id) for r in results)
    lines = [f"{'row':<{w}}  {'observed':>10}  {'model':>10}  {'unit':<10} {'ratio':>6}  pass",
             "-" * (w + 50)]
    notes = []
    for r in results:
        obs = ("< " if r.row.measure == "upper_bound" else "") + f"{r.row.value:.4g}"
        if r.expected.startswith("not modelled"):
            verdict = "not modelled"
            notes.append(f"  {r.row.id}: {r.expected}")
        elif r.expected:
            verdict = "yes" if r.passed else "NO (known)"
            notes.append(f"  {r.row.id}: known disagreement: {r.expected}")
        else:
            verdict = "yes" if r.passed else "NO"
        model = f"{r.model:>10.4g}" if math.isfinite(r.model) else f"{'--':>10}"
        ratio = f"{r.ratio:>6.2f}" if math.isfinite(r.ratio) else f"{'--':>6}"
        lines.append(f"{r.row.id:<{w}}  {obs:>10}  {model}  {r.row.unit:<10} {ratio}  {verdict}")
    modelled = [r for r in results if not r.expected.startswith("not modelled")]
    n_ok = sum(r.passed for r in modelled)
    lines.append(f"{n_ok}/{len(modelled)} modelled rows within a factor of {FACTOR:g}"
                 + (f" ({len(results) - len(modelled)} not modelled)"
                    if len(modelled) < len(results) else ""))
    if notes:
        lines.append("notes:")
        lines.extend(notes)
    return "\n".join(lines)

