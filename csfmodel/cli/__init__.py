"""Command-line interface: ``csfmodel run | presets | compare | metrics | validate | sweep |
sobol | pump | population | fit | sensitivity``.

Every command calls the same Python API a user would. Bad input prints a one-line
error naming the key, the value and what is allowed, and exits with status 2
(no traceback); so do an unreadable input, an unwritable output (checked before
the long work starts) and running out of memory. An unexpected error is one line
and status 3 (``CSFMODEL_DEBUG=1`` shows the traceback); a closed stdout
(``| head``) ends quietly. Files are only written where a path is given, and
atomically (see :mod:`csfmodel._io`).

Each command lives in a private module of this package (listed in
:data:`_COMMANDS`) with a ``register(subparsers)`` that only uses argparse and a
handler that imports the domain code (numpy, xarray, scipy, matplotlib, numba...)
when it runs, so that ``csfmodel --help`` and ``csfmodel COMMAND --help`` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from csfmodel.errors import ScenarioError

__all__ = ["main", "build_parser"]

#: modules that add a subcommand with ``register(subparsers)``, in the order of --help
_COMMANDS: tuple[str, ...] = ("_run", "_presets", "_compare", "_metrics", "_validate",
                              "_sweep", "_pump", "_population", "_fit", "_sensitivity")

EPILOG = """\
A scenario is a TOML file; quantities carry units ("0.5 mg", "1 mg/day", "20 uL",
"12 h"). Minimal example:

    [simulation]
    duration = "24 h"

    [[dose]]
    route = "intrathecal"
    type = "infusion"
    site = "T10"
    rate = "1 mg/day"

Worked examples: examples/scenarios/*.toml.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests); imports no domain code."""
    p = argparse.ArgumentParser(
        prog="csfmodel",
        description="Simulate intrathecal, oral and IV drugs in the CSF, spinal cord and "
                    "brain.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    from csfmodel._version import __version__

    p.add_argument("--version", action="version", version=f"csfmodel {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return p


_DEBUG_ENV = "CSFMODEL_DEBUG"


def _debug() -> bool:
    return os.environ.get(_DEBUG_ENV, "").strip() not in ("", "0", "false", "no")


def _one_line(text: object, limit: int = 1000) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


def _quiet_stdout() -> None:
    """After a broken pipe: send what is left of stdout to devnull (no error at exit)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):   # stdout is not a real file (tests)
        pass


def _err(msg: str) -> None:
    try:
        print(f"csfmodel: {_one_line(msg)}", file=sys.stderr)
    except (OSError, ValueError):   # stderr closed too: nothing left to tell
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``csfmodel`` command.

    Exit status: 0 success, 1 a validation row failed (``validate``) or stdout was
    closed early (``| head``), 2 bad input or an unwritable/unreadable file or out
    of memory (a one-line message), 3 an internal error (set ``CSFMODEL_DEBUG=1``
    for the traceback), 130 interrupted.
    """
    import warnings

    def _show_warning(message, category, filename, lineno, file=None, line=None):
        # a csfmodel warning (e.g. a pump setting beyond published practice) is one line
        _err(f"warning: {message}")

    try:
        warnings.showwarning = _show_warning
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit:          # --help, --version, a usage error
            sys.stdout.flush()
            raise
        if not getattr(args, "func", None):
            parser.print_help()
            sys.stdout.flush()
            return 2
        code = int(args.func(args) or 0)
        sys.stdout.flush()          # a broken pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return 1
    except ScenarioError as exc:
        _err(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except MemoryError:
        if _debug():
            traceback.print_exc()
        _err("error: out of memory; try a coarser [simulation] output_interval or "
             "resolution, or a shorter duration (sweeps: a smaller --chunk-size)")
        return 2
    except OSError as exc:
        if _debug():
            traceback.print_exc()
        reason = exc.strerror or str(exc) or type(exc).__name__
        where = exc.filename if exc.filename is not None else None
        _err(f"error: {str(where)!r}: {reason}" if where is not None else f"error: {reason}")
        return 2
    except Exception as exc:
        if _debug():
            traceback.print_exc()
        _err(f"internal error: {type(exc).__name__}: {exc} (set {_DEBUG_ENV}=1 for the "
             "traceback; please report)")
        return 3
