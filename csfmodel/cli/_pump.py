"""``csfmodel pump reservoir | start-rate | rescue`` (:mod:`csfmodel.clinic`).

``--json`` prints the result's ``to_dict()``; units are in the key names (``_ml``,
``_mg_per_day``, ``_min``) or, for the candidates and rescues, as documented in
``docs/clinic.md``.
"""

from __future__ import annotations

import argparse
import json
import sys

_TARGET_HELP = ("the pain target: a cord segment (e.g. T10) or a range running down the "
                "cord (e.g. L1-L5); results are those of its worst-covered segment")


def register(subparsers) -> None:
    """Add ``csfmodel pump`` and its subcommands (argparse only)."""
    p = subparsers.add_parser(
        "pump", help="the implanted pump: reservoir and refills, first rate, rescue doses",
        description="The pump in a patient's life: the reservoir over months (refill and "
                    "alarm dates), a first pump rate from a trial or the patient's opioids, "
                    "and how soon a rescue dose works.")
    sub = p.add_subparsers(dest="pump_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: _no_subcommand(p))

    r = sub.add_parser("reservoir", help="volume left, alarm and refill dates of a [pump]",
                       description="Follow the reservoir of a scenario's [pump] table: the "
                       "volume left over time, the low-reservoir alarm and empty dates of "
                       "every fill, days of therapy per fill, the volume expected back at "
                       "each refill, and settings outside published practice limits.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("scenario", help="scenario TOML file with a [pump] table")
    r.add_argument("--plot", help="draw the figure to this file (.png, .pdf, .svg, ...)")
    r.add_argument("--output", help="write reservoir_volume(time) to this netCDF file")
    r.add_argument("--interval", default="6 h", help="time step of --output")
    r.add_argument("--json", action="store_true", help="print the numbers as JSON")
    r.set_defaults(func=cmd_reservoir)

    s = sub.add_parser("start-rate", help="a first pump rate from a trial or the opioids",
                       description="Propose a starting IT morphine rate at a catheter tip, "
                       "matched on the target exposure or the modelled analgesia of a trial "
                       "that gave relief (--trial-bolus or --trial-infusion), or of the "
                       "patient's current opioids (--regimen, converted to oral morphine "
                       "equivalents), beside the published clinical rules, with the "
                       "steady-state supraspinal exposure and respiratory depression of each.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--site", default="T10", help="the pump's catheter tip")
    s.add_argument("--target", default="L1-L5", help=_TARGET_HELP)
    s.add_argument("--trial-bolus", help="single-shot IT trial dose that gave relief, "
                   "e.g. '0.3 mg'")
    s.add_argument("--trial-site", default="L3-L4", help="level of the trial")
    s.add_argument("--trial-volume", default="1 mL", help="volume of the trial bolus")
    s.add_argument("--trial-infusion", help="or a trial infusion rate, e.g. '0.5 mg/day'")
    s.add_argument("--trial-duration", default="24 h", help="duration of the trial infusion")
    s.add_argument("--regimen", help="or the patient's opioids, e.g. 'oxycodone 520 mg/day + "
                   "morphine iv 24 mg/day + fentanyl transdermal 50 ug/h'")
    s.add_argument("--basis", default=None, choices=("exposure", "analgesia"),
                   help="match the target exposure or the modelled analgesia (default: "
                        "exposure for a trial, analgesia for a regimen)")
    s.add_argument("--resolution", default="5 mm", help="grid resolution")
    s.add_argument("--plot", help="draw the figure to this file")
    s.add_argument("--json", action="store_true", help="print the numbers as JSON")
    s.set_defaults(func=cmd_start_rate)

    q = sub.add_parser("rescue", help="time to onset and peak of rescue doses",
                       description="For breakthrough pain: time to onset (a fraction of the "
                       "dose's peak gain in analgesia) and to peak of a pump patient bolus at "
                       "the tip, an oral immediate-release dose and an IV bolus; doses not "
                       "given are found equianalgesic to the pump bolus.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    q.add_argument("--site", default="T10", help="the pump's catheter tip")
    q.add_argument("--target", default="L1-L5", help=_TARGET_HELP)
    q.add_argument("--basal", default="0 mg/day",
                   help="the pump's infusion beneath the rescue (at steady state)")
    q.add_argument("--bolus", default="0.1 mg", help="the pump's patient bolus")
    q.add_argument("--oral-dose", help="oral IR dose (default: equianalgesic)")
    q.add_argument("--iv-dose", help="IV bolus dose (default: equianalgesic)")
    q.add_argument("--fraction", type=float, default=0.5,
                   help="onset = this fraction of the dose's peak gain")
    q.add_argument("--duration", default="12 h", help="length of the record")
    q.add_argument("--resolution", default="5 mm", help="grid resolution")
    q.add_argument("--plot", help="draw the figure to this file")
    q.add_argument("--json", action="store_true", help="print the numbers as JSON")
    q.set_defaults(func=cmd_rescue)


def _no_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _plot_target(args) -> None:
    if args.plot:
        from csfmodel._io import check_figure_path

        check_figure_path(args.plot, "--plot")


def _finish(args, result, extra: dict | None = None) -> int:
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        from csfmodel._io import save_figure

        save_figure(result.plot(), args.plot, dpi=120)
    if args.json:
        d = result.to_dict()
        d.update(extra or {})
        if args.plot:
            d["figure"] = args.plot
        json.dump(d, sys.stdout, indent=1, default=str)
        print()
    else:
        print(result.table())
        if extra and "output" in extra:
            print(f"\nwrote {extra['output']}")
        if args.plot:
            print(f"\nwrote {args.plot}")
    return 0


def cmd_reservoir(args: argparse.Namespace) -> int:
    import warnings

    from csfmodel._io import check_output_file
    from csfmodel.scenario import PracticeWarning

    _plot_target(args)
    if args.output:
        check_output_file(args.output, "--output", inputs=[args.scenario])
    from csfmodel.clinic import reservoir

    with warnings.catch_warnings():     # the report lists them
        warnings.simplefilter("ignore", PracticeWarning)
        rep = reservoir(args.scenario)
    extra = {}
    if args.output:
        from csfmodel.results import save

        save(rep.to_dataset(args.interval), args.output)
        extra["output"] = args.output
    return _finish(args, rep, extra)


def cmd_start_rate(args: argparse.Namespace) -> int:
    _plot_target(args)
    from csfmodel.clinic import start_rate

    res = start_rate(site=args.site, target=args.target, trial_bolus=args.trial_bolus,
                     trial_site=args.trial_site, trial_volume=args.trial_volume,
                     trial_infusion=args.trial_infusion, trial_duration=args.trial_duration,
                     regimen=args.regimen, basis=args.basis, resolution=args.resolution)
    return _finish(args, res)


def cmd_rescue(args: argparse.Namespace) -> int:
    _plot_target(args)
    from csfmodel.clinic import rescue_onset

    res = rescue_onset(site=args.site, target=args.target, basal=args.basal,
                       it_bolus=args.bolus, oral_dose=args.oral_dose, iv_dose=args.iv_dose,
                       fraction=args.fraction, duration=args.duration,
                       resolution=args.resolution)
    return _finish(args, res)
