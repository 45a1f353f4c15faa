"""Small helpers shared by the course notebooks.

* :func:`spine_axis` labels a z axis (cm from the foramen magnum) with vertebral levels,
  head at the top (or left), so every profile reads like the patient's spine.
* :func:`segment_axis` does the same for an axis of spinal-cord segments.
* :func:`claim` checks a number that the text of a lesson quotes against the value the
  model gives; the notebooks call it in cells tagged ``remove-cell`` (hidden on the site)
  right after they compute the value, so a lesson whose text no longer agrees with the
  model fails when it is executed (the site build executes every lesson).
* :data:`KEY_SENSORY_POINTS`: the dermatome of each cord segment, as a clinician tests it.

The notebooks import this file from their own folder (``docs/course``).
"""

from __future__ import annotations

import re

import numpy as np

#: Key sensory point of each dermatome (International Standards for Neurological
#: Classification of Spinal Cord Injury, ISNCSCI, American Spinal Injury Association,
#: revised 2019; Kirshblum 2011 J Spinal Cord Med 34:535). C1 has no dermatome.
KEY_SENSORY_POINTS: dict[str, str] = {
    "C2": "occipital protuberance", "C3": "supraclavicular fossa",
    "C4": "top of the shoulder (AC joint)", "C5": "lateral elbow",
    "C6": "thumb", "C7": "middle finger", "C8": "little finger",
    "T1": "medial elbow", "T2": "apex of the axilla", "T3": "3rd intercostal space",
    "T4": "nipple line", "T5": "5th intercostal space", "T6": "xiphisternum",
    "T7": "7th intercostal space", "T8": "8th intercostal space",
    "T9": "9th intercostal space", "T10": "umbilicus", "T11": "11th intercostal space",
    "T12": "inguinal ligament", "L1": "upper anterior thigh", "L2": "mid anterior thigh",
    "L3": "medial knee", "L4": "medial ankle", "L5": "dorsum of the foot",
    "S1": "lateral heel", "S2": "popliteal fossa", "S3": "ischial tuberosity",
    "S4": "perianal area", "S5": "perianal area",
}

DEFAULT_LEVELS = ("C1", "C4", "C7", "T2", "T4", "T6", "T8", "T10", "T12", "L2", "L4", "S1")


def level_mid(ds, level: str) -> float:
    """z (cm) of the middle of a vertebral level in a results Dataset."""
    i = list(ds.level.values).index(level)
    return float(0.5 * (ds.level_z_top.values[i] + ds.level_z_bottom.values[i]))


def segment_mid(ds) -> np.ndarray:
    """z (cm) of the middle of every spinal-cord segment (C1 … S5) in a results Dataset."""
    return 0.5 * (ds.segment_z_top.values + ds.segment_z_bottom.values)


def spine_axis(ax, ds, axis: str = "y", levels=DEFAULT_LEVELS, label: bool = True,
               head_first: bool = True) -> None:
    """Tick a z axis (cm) at vertebral levels; the head comes first (top or left).

    A secondary scale in cm from the foramen magnum is kept on the opposite side.
    """
    pos = [level_mid(ds, lv) for lv in levels]
    zmax = float(ds.level_z_bottom.values[-1])
    if axis == "y":
        ax.set_yticks(pos, list(levels))
        ax.set_ylim((zmax, 0.0) if head_first else (0.0, zmax))
        if label:
            ax.set_ylabel("vertebral level (head at the top)")
        sec = ax.secondary_yaxis("right")
        sec.set_ylabel("cm from the foramen magnum", fontsize=8)
    else:
        ax.set_xticks(pos, list(levels))
        ax.set_xlim((0.0, zmax) if head_first else (zmax, 0.0))
        if label:
            ax.set_xlabel("vertebral level (head on the left)")
        sec = ax.secondary_xaxis("top")
        sec.set_xlabel("cm from the foramen magnum", fontsize=8)
    sec.tick_params(labelsize=7)


def segment_axis(ax, ds, axis: str = "x", every: int = 2, label: bool = True) -> None:
    """Tick an axis that counts cord segments 0 … 29 with their names (C1 … S5)."""
    names = [str(s) for s in ds.segment.values]
    idx = np.arange(0, len(names), every)
    if axis == "x":
        ax.set_xticks(idx, [names[i] for i in idx])
        if label:
            ax.set_xlabel("spinal cord segment (head on the left)")
    else:
        ax.set_yticks(idx, [names[i] for i in idx])
        ax.set_ylim(len(names) - 0.5, -0.5)
        if label:
            ax.set_ylabel("spinal cord segment")


#: a number as the lessons write it: "0.28", "1e-3", or with thousands grouped by a comma
#: or a space ("11 600", "1,000")
_NUMBER = re.compile(r"[-+\u2212]?\d{1,3}(?:[ ,\u202f]\d{3})+(?:\.\d+)?(?![\d.])"
                     r"|[-+\u2212]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


_WORDS = {"twice": 2, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
          "eight": 8, "nine": 9, "ten": 10, "twenty": 20, "hundred": 100, "half": 0.5,
          "quarter": 0.25}


def quoted_number(text: str) -> tuple[float, float]:
    """The first number in ``text`` and half a unit of its last digit (its rounding).

    Numbers may be written in digits ("0.28", "1,000", "3e-3") or, without digits, as a
    word ("three times", "half"), whose rounding is then half a unit.
    """
    m = _NUMBER.search(text)
    if m is None:
        for word in re.findall(r"[a-z]+", text.lower()):
            if word in _WORDS:
                return float(_WORDS[word]), 0.5
        raise ValueError(f"no number in {text!r}")
    s = re.sub(r"[ ,\u202f]", "", m.group()).replace("\u2212", "-")
    mant = s.lower().split("e")[0]
    exp = int(s.lower().split("e")[1]) if "e" in s.lower() else 0
    decimals = len(mant.split(".")[1]) if "." in mant else 0
    return float(s), 0.5 * 10.0 ** (exp - decimals)


def claim(quote: str, value, rel: float | None = None) -> None:
    """Check that the text's ``quote`` agrees with the model's ``value``.

    ``value`` a bool: the qualitative statement ``quote`` must hold (``True``).
    ``value`` a number: it must round to the first number of ``quote`` at the precision
    written there ("0.5 h": 0.45 ≤ value < 0.55), or lie within ``rel`` (relative) of it
    when the text says "about". The quote must appear word for word in a markdown cell
    of the notebook (``tests/test_course.py`` checks it).
    """
    if isinstance(value, (bool, np.bool_)):
        if not value:
            raise AssertionError(f"the text says {quote!r}, but the model does not show it")
        return
    value = float(np.asarray(value))
    number, half = quoted_number(quote)
    tol = abs(number) * rel if rel is not None else half * (1 + 1e-9)
    if not abs(value - number) <= tol:
        raise AssertionError(f"the text says {quote!r}, the model gives {value:.4g}")
