"""Safe reading and writing of the files csfmodel touches (private).

* :func:`read_text` reads a small text input (a scenario, a parameter table):
  only regular files up to :data:`MAX_TEXT_BYTES`, UTF-8 with or without a BOM;
  anything else is a one-line :class:`~csfmodel.errors.ScenarioError`.
* :func:`atomic_path` is the one way csfmodel writes a file: the writer fills a
  temporary file in the target's directory, which is flushed to disk and moved
  over the target with :func:`os.replace` only when the writer succeeded. On any
  failure the temporary file is removed and an existing target is untouched.
  :func:`write_text`, :func:`save_figure` and :func:`csfmodel.results.save` use it.
* :func:`check_output_file`, :func:`check_output_dir` and :func:`check_figure_path`
  refuse an output before the long work starts (not writable, a directory, the
  same file as an input, an unknown figure format).
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from csfmodel.errors import ScenarioError

__all__ = ["MAX_TEXT_BYTES", "read_text", "atomic_path", "write_text", "save_figure",
           "figure_formats", "check_output_file", "check_output_dir", "check_figure_path",
           "same_file", "TEMP_SUFFIX"]

#: largest text input read (scenario and parameter files are a few kB)
MAX_TEXT_BYTES = 4 * 1024 * 1024
#: suffix of the temporary files written by :func:`atomic_path`
TEMP_SUFFIX = ".part"


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


# ------------------------------------------------------------------ reading
def read_text(path: str | Path, key: str = "scenario", allowed: str = "a readable TOML file",
              max_bytes: int = MAX_TEXT_BYTES) -> str:
    """Read a small UTF-8 text file (a BOM is allowed), refusing anything else.

    Parameters
    ----------
    path
        The file.
    key, allowed
        Name of the input and what it should be, for the error message.
    max_bytes
        Larger files are refused (a scenario is a few kB).

    Returns
    -------
    str
        The text, without a BOM.

    Raises
    ------
    ScenarioError
        A missing or unreadable file, a directory, a device, pipe or socket, a
        file over ``max_bytes``, bytes that are not UTF-8, or a NUL byte.
    """
    p = Path(path)

    def fail(detail: str) -> ScenarioError:
        return ScenarioError(key, str(path), allowed, detail=detail)

    try:
        st = os.stat(p)
    except OSError as exc:
        raise fail(_reason(exc)) from None
    except ValueError as exc:          # e.g. an embedded NUL in the path
        raise fail(str(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise fail("is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise fail("not a regular file (a device, pipe or socket)")
    if st.st_size > max_bytes:
        raise fail(f"{st.st_size} bytes; the limit is {max_bytes} bytes")
    try:
        with open(p, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise fail(_reason(exc)) from None
    if len(raw) > max_bytes:
        raise fail(f"more than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise fail(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at byte position "
                   f"{exc.start} (line {line}) is invalid") from None
    nul = text.find("\x00")
    if nul >= 0:
        raise fail(f"a binary file: NUL character at position {nul}")
    return text


# ------------------------------------------------------------------ writing
def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_error(exc: BaseException, target: Path, parent: Path) -> OSError:
    """An OSError naming the user's path (not the temporary file) and the reason."""
    if isinstance(exc, OSError):
        reason = _reason(exc)
        code = exc.errno
    else:                                   # e.g. netCDF4's RuntimeError("NetCDF: HDF error")
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        code = None
        if "HDF error" in reason:
            reason += " while writing (disk full or a file size limit?)"
    if code != _errno.ENOSPC:
        with contextlib.suppress(OSError):
            if shutil.disk_usage(parent).free < 1024 * 1024:
                reason += " (the device looks full)"
    return OSError(code, reason, str(target))


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Write a file atomically: yield a temporary path to fill, then move it into place.

    The temporary file (``.NAME.XXXX.part``) is created in the target's directory
    (which must exist). When the ``with`` block succeeds it is flushed to disk and
    renamed over ``path`` (an existing file keeps its permission bits; a new one
    gets the usual ``0o666 & ~umask``). When the block fails the temporary file is
    removed and ``path`` is untouched; an :class:`OSError` or :class:`RuntimeError`
    of the writer is raised again as an :class:`OSError` naming ``path``.

    A symbolic link as ``path`` is written through (its target is replaced).
    """
    target = Path(path)
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    parent = target.parent
    try:
        fd, name = tempfile.mkstemp(dir=parent if str(parent) else ".",
                                    prefix=f".{target.name}.", suffix=TEMP_SUFFIX)
    except OSError as exc:
        raise _write_error(exc, target, parent) from None
    os.close(fd)
    tmp = Path(name)
    try:
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except OSError:
            mode = 0o666 & ~_umask()
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, (OSError, RuntimeError)):
            raise _write_error(exc, target, parent) from exc
        raise
    _fsync_dir(parent)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def save_figure(fig: Any, path: str | Path, dpi: int = 120, close: bool = True) -> Path:
    """Save a matplotlib figure atomically; the format is the file name's extension."""
    import matplotlib

    p = Path(path)
    fmt = p.suffix.lstrip(".").lower() or matplotlib.rcParams["savefig.format"]
    try:
        with atomic_path(p) as tmp:
            fig.savefig(tmp, dpi=dpi, format=fmt)
    finally:
        if close:
            import matplotlib.pyplot as plt

            plt.close(fig)
    return p


# ------------------------------------------------------------------ checks
def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (symlinks, ``..`` and hard links resolved)."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, ValueError, RuntimeError):
        return False


def _probe_dir(d: Path, key: str, value: str, allowed: str) -> None:
    """Refuse ``d`` unless a file can be created in it (catches read-only filesystems)."""
    try:
        fd, name = tempfile.mkstemp(dir=d, prefix=".csfmodel-probe-", suffix=TEMP_SUFFIX)
    except OSError as exc:
        raise ScenarioError(key, value, allowed,
                            detail=f"cannot create files in {str(d)!r}: {_reason(exc)}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)


def _existing_ancestor(p: Path, key: str, value: str, allowed: str) -> Path:
    """The nearest existing ancestor directory of ``p`` (which will hold it)."""
    d = Path(os.path.abspath(p)).parent
    while not d.exists() and d != d.parent:
        if d.is_symlink():
            raise ScenarioError(key, value, allowed, detail=f"{str(d)!r} is a broken link")
        d = d.parent
    if not d.is_dir():
        raise ScenarioError(key, value, allowed, detail=f"{str(d)!r} is not a directory")
    return d


def check_output_file(path: str | Path, key: str = "--output",
                      inputs: Iterable[str | Path | None] = (),
                      allowed: str = "a file path in a writable directory") -> Path:
    """Refuse an output file path that cannot be written, before any work is done.

    Refused: an empty path, a directory, an existing non-regular file (device,
    pipe, ``/proc`` entry), the same file as one of ``inputs``, a parent that is
    not a directory, or a directory where files cannot be created. Nothing is
    created (a missing parent directory is made when the file is written).
    """
    value = str(path)
    if not value.strip():
        raise ScenarioError(key, value, allowed, detail="empty path")
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise ScenarioError(key, value, allowed,
                            detail="a parent in the path is not a directory") from None
    except (OSError, ValueError) as exc:
        detail = _reason(exc) if isinstance(exc, OSError) else str(exc)
        raise ScenarioError(key, value, allowed, detail=detail) from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise ScenarioError(key, value, allowed, detail="is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise ScenarioError(key, value, allowed,
                                detail="exists and is not a regular file")
    for inp in inputs:
        if inp is not None and same_file(p, inp):
            raise ScenarioError(key, value, "a file that is not one of the inputs",
                                detail=f"is the input {str(inp)!r}, which would be overwritten")
    d = _existing_ancestor(p.resolve() if p.is_symlink() else p, key, value, allowed)
    _probe_dir(d, key, value, allowed)
    return p


def check_output_dir(path: str | Path, key: str = "--output",
                     inputs: Iterable[str | Path | None] = (),
                     allowed: str = "a directory (existing or to be created) where files can "
                                    "be written") -> Path:
    """Refuse an output directory that is a file, an input, or cannot be created/written."""
    value = str(path)
    if not value.strip():
        raise ScenarioError(key, value, allowed, detail="empty path")
    p = Path(path)
    for inp in inputs:
        if inp is not None and same_file(p, inp):
            raise ScenarioError(key, value, "a directory that is not one of the inputs",
                                detail=f"is the input {str(inp)!r}")
    try:
        exists = p.exists()
    except (OSError, ValueError) as exc:
        raise ScenarioError(key, value, allowed, detail=str(exc)) from None
    if exists:
        if not p.is_dir():
            raise ScenarioError(key, value, allowed, detail="exists and is not a directory")
        _probe_dir(p, key, value, allowed)
    else:
        _probe_dir(_existing_ancestor(p, key, value, allowed), key, value, allowed)
    return p


def figure_formats() -> list[str]:
    """File extensions matplotlib can save figures as (``png``, ``pdf``, ``svg``, ...)."""
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


def check_figure_path(path: str | Path, key: str = "--plot",
                      inputs: Iterable[str | Path | None] = ()) -> Path:
    """Refuse a figure path with an unknown extension or that cannot be written."""
    formats = figure_formats()
    allowed = "a figure file name ending in ." + ", .".join(formats)
    ext = Path(path).suffix.lstrip(".").lower()
    if ext not in formats:
        raise ScenarioError(key, str(path), allowed,
                            detail="no file extension" if not ext
                            else f"matplotlib cannot write '.{ext}' files")
    return check_output_file(path, key, inputs, allowed=allowed)
