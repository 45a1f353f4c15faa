"""The predicted between-patient spread of calibration measures against the published one.

Each measure is simulated in the study's design (as :mod:`csfmodel.validation` runs it:
dose, site, injected volume, sampling site) for a virtual population, and its
coefficient of variation (SD / mean across patients) is set beside the study's.
Where a study gave its SEM, the SD is ``SEM * sqrt(n)``; when the abstract does not
give ``n``, the SD is shown for the range of ``n`` assumed (:data:`ASSUMED_N`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._simulate import population

__all__ = ["SpreadCheck", "calibration_spread", "format_spread", "ASSUMED_N"]

#: patients per study arm where the table's note does not give them: (low, high)
ASSUMED_N = {"nordberg84_lumbar_1h_025": (5, 10), "nordberg84_lumbar_1h_05": (5, 10),
             "sjostrom87_cmax": (6, 6), "stuartharris00_iv_cl": (1, 1),
             "mscontin_30_cmax": (1, 1)}


@dataclass(frozen=True)
class SpreadCheck:
    """A measure's spread: observed (CV range) and predicted (CV and percentiles)."""

    row: str
    what: str
    observed_mean: float
    observed_cv: tuple[float, float] | None   # None: the table gives no spread
    predicted_median: float
    predicted_cv: float
    predicted_5_95: tuple[float, float]

    @property
    def ratio(self) -> tuple[float, float] | None:
        """Predicted CV over the observed CV range (low, high)."""
        if self.observed_cv is None:
            return None
        return self.predicted_cv / self.observed_cv[1], self.predicted_cv / self.observed_cv[0]


def _bolus(mg: float, hours: float) -> dict:
    """The studies' bolus, given 0.6 s after the first output: every later output is a
    sample time of the study (5, 10, ... min after the injection; Sjostrom's first
    sample is at 5 min), and no output holds the injectate in its own 1 mL at t = 0."""
    return {"simulation": {"duration": f"{hours} h", "output_interval": "5 min"},
            "dose": [{"route": "intrathecal", "type": "bolus", "site": "L3-L4",
                      "amount": f"{mg} mg", "volume": "1 mL", "injection_rate": "4 mL/min",
                      "time": "0.01 min"}]}


def _observed_cv(row, n: tuple[int, int]) -> tuple[float, float] | None:
    if row.spread is None:
        return None
    if "SEM" in row.note:
        return (row.spread * math.sqrt(n[0]) / row.value,
                row.spread * math.sqrt(n[1]) / row.value)
    return (row.spread / row.value,) * 2


def calibration_spread(n: int = 200, seed: Any = 0, bodies: int | None = None,
                       spec: Any = None) -> list[SpreadCheck]:
    """Predicted vs published between-patient spread of the calibration measures.

    Nordberg 1984 (lumbar CSF 1 h after 0.25 and 0.5 mg at L3-L4), Sjostrom 1987
    (lumbar CSF Cmax after 0.3 mg), Stuart-Harris 2000 (IV clearance) and the MS Contin
    30 mg plasma Cmax (no spread in the table: predicted only).
    """
    from csfmodel.validation import load_rows

    rows = {r.id: r for r in load_rows()}
    out = []

    def check(rid: str, what: str, values: np.ndarray) -> None:
        row = rows[rid]
        v = np.asarray(values, float)
        out.append(SpreadCheck(
            row=rid, what=what, observed_mean=row.value,
            observed_cv=_observed_cv(row, ASSUMED_N[rid]),
            predicted_median=float(np.median(v)), predicted_cv=float(v.std(ddof=1) / v.mean()),
            predicted_5_95=(float(np.percentile(v, 5)), float(np.percentile(v, 95)))))

    kw = dict(spec=spec, bodies=bodies, segments=("L1",))
    for rid, mg in (("nordberg84_lumbar_1h_025", 0.25), ("nordberg84_lumbar_1h_05", 0.5)):
        pop = population(_bolus(mg, 1.0), n, seed, levels=("L3-L4",), **kw)
        check(rid, f"lumbar CSF 1 h after {mg} mg (ng/mL)",
              pop.csf_final.sel(level="L3-L4").values)
    pop = population(_bolus(0.3, 6.0), n, seed, levels=("L3-L4",), **kw)
    check("sjostrom87_cmax", "lumbar CSF Cmax after 0.3 mg (ng/mL)",
          pop.csf_max.sel(level="L3-L4").values)
    pop = population({"simulation": {"duration": "24 h", "output_interval": "5 min"},
                      "dose": [{"route": "oral", "type": "bolus", "amount": "30 mg",
                                "formulation": "controlled"}]}, n, seed, levels=(), **kw)
    check("stuartharris00_iv_cl", "systemic clearance (mL/min)", pop.drug_cl.values)
    check("mscontin_30_cmax", "MS Contin 30 mg plasma Cmax (ng/mL)", pop.plasma_max.values)
    return out


def format_spread(checks: list[SpreadCheck]) -> str:
    """The checks as a Markdown table."""
    lines = ["| measure | observed mean | observed CV | predicted median [5-95 %] | "
             "predicted CV | predicted / observed CV |", "|---|---|---|---|---|---|"]
    for c in checks:
        obs = ("not given" if c.observed_cv is None else
               f"{100 * c.observed_cv[0]:.0f} %" if c.observed_cv[0] == c.observed_cv[1]
               else f"{100 * c.observed_cv[0]:.0f}-{100 * c.observed_cv[1]:.0f} %")
        r = c.ratio
        ratio = "" if r is None else (f"{r[0]:.2f}" if abs(r[0] - r[1]) < 1e-9
                                      else f"{r[0]:.2f}-{r[1]:.2f}")
        lines.append(f"| {c.what} ({c.row}) | {c.observed_mean:g} | {obs} | "
                     f"{c.predicted_median:.4g} [{c.predicted_5_95[0]:.4g}-"
                     f"{c.predicted_5_95[1]:.4g}] | {100 * c.predicted_cv:.0f} % | {ratio} |")
    return "\n".join(lines)
