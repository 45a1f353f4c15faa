"""``csfmodel presets``: what a scenario may name (drugs, levels, segments, ranges, solvers)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add ``csfmodel presets`` (argparse only)."""
    pr = subparsers.add_parser("presets", help="list drug presets, vertebral levels, cord "
                                               "segments, allowed ranges, solvers",
                               description="List what a scenario may name.")
    pr.add_argument("what", nargs="?", default="all",
                    choices=("all", "drugs", "levels", "segments", "ranges", "solvers"))
    pr.set_defaults(func=cmd_presets)


def cmd_presets(args: argparse.Namespace) -> int:
    from csfmodel.anatomy import CORD_SEGMENTS, VERTEBRAL_LEVELS, Anatomy
    from csfmodel.drugs import DRUGS
    from csfmodel.solvers import available_backends

    what = args.what
    if what in ("drugs", "all"):
        print("Drugs (octanol:buffer partition, meningeal permeability):")
        for name, d in DRUGS.items():
            est = f"  [estimates: {', '.join(d.estimated)}]" if d.estimated else ""
            print(f"  {name:<14} K_ob={d.octanol_buffer:<8g} P_men={d.meningeal_p():.2e} cm/min"
                  f"{est}")
    a = Anatomy()
    if what in ("levels", "all"):
        print("Vertebral levels (z of top - bottom, cm from the foramen magnum):")
        e = a.level_edges()
        for k, lv in enumerate(VERTEBRAL_LEVELS):
            print(f"  {lv:<4} {e[k]:6.2f} - {e[k + 1]:6.2f}   CSF area "
                  f"{float(a.csf_area(0.5 * (e[k] + e[k + 1]))):.2f} cm^2")
    if what in ("segments", "all"):
        print("Spinal cord segments (z of top - bottom, cm; vertebral level alongside):")
        e = a.segment_edges()
        for k, s in enumerate(CORD_SEGMENTS):
            mid = 0.5 * (e[k] + e[k + 1])
            print(f"  {s:<4} {e[k]:6.2f} - {e[k + 1]:6.2f}   behind {a.level_at(mid)}")
    if what in ("ranges", "all"):
        from csfmodel.anatomy import PATIENT_PARAMETERS
        from csfmodel.drugs import DRUG_PARAMETERS
        from csfmodel.scenario import LIMITS

        print("Allowed ranges (values outside are refused with a one-line error):")
        for section, table in (("patient", PATIENT_PARAMETERS), ("drug", DRUG_PARAMETERS),
                               ("dose / simulation", LIMITS)):
            print(f"  [{section}]")
            for k, b in table.items():
                print(f"    {k:<28} {b.describe() if b.unit != 'str' else b.basis}")
    if what in ("solvers", "all"):
        print("Solvers:")
        for k, v in available_backends().items():
            print(f"  {k:<10} {v}")
    return 0
