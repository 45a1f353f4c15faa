"""Write lumbar_bolus_data.csv: synthetic observations of the design in
lumbar_bolus_design.toml, from the model with known parameters and 15 % log-normal noise.

The "true" values (what a fit should recover): dispersion 5.0 cm^2/min (the default is
8.1) and meningeal permeability 1.8e-3 cm/min (the default for morphine is 1.44e-3).
Run from the repository root: python examples/fit/make_synthetic_data.py
"""

from pathlib import Path

import numpy as np

import csfmodel

HERE = Path(__file__).parent
TRUE = {"dispersion": "5.0 cm^2/min"}
TRUE_DRUG = {"meningeal_permeability": "1.8e-3 cm/min"}
TIMES_H = (0.25, 0.5, 1, 1.5, 2, 3, 4, 6, 8, 10, 12)


def main() -> None:
    import tomllib

    design = tomllib.loads((HERE / "lumbar_bolus_design.toml").read_text())
    design["patient"] = dict(TRUE)
    design["drug"] = {**design.get("drug", {}), **TRUE_DRUG}
    design["simulation"]["output_interval"] = "5 min"   # every sample time is an output
    ds = csfmodel.simulate(design, rtol=1e-7)
    z = csfmodel.load_scenario(HERE / "lumbar_bolus_design.toml").anatomy.level_z("L3", 1.0)
    rng = np.random.default_rng(20240611)
    rows = ["time_h,site,value,unit"]
    for t in TIMES_H:
        csf = float(ds.csf_concentration.interp(z=z, time=t))
        rows.append(f"{t},L3-L4,{csf * np.exp(0.15 * rng.standard_normal()):.4g},ng/mL")
    for t in TIMES_H[2:]:
        cp = float(ds.plasma_concentration.interp(time=t))
        rows.append(f"{t},plasma,{cp * np.exp(0.15 * rng.standard_normal()):.4g},ng/mL")
    (HERE / "lumbar_bolus_data.csv").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
