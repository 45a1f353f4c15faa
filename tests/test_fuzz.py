"""Fuzz of the scenario parser: any input gives a Scenario or a ScenarioError, nothing else.

Whatever a user writes (a dict through the API, or a file of any bytes) must end in a
valid :class:`~csfmodel.scenario.Scenario` or in a :class:`~csfmodel.errors.ScenarioError`
(for :func:`~csfmodel.units.convert`, one naming the key it was given): never an
``OverflowError``, ``TypeError``, ``RecursionError``, a ``RuntimeWarning`` turned error by
the test configuration, or a hang.

The inputs are built around the real layout ([simulation], [patient], [drug], [[dose]]
with their real keys and bogus ones) so that most of them get deep into the parser,
with values from quantity strings (random numbers, 1e300, 1e-300, inf, nan, -0, huge
exponents; real, composed and garbage units such as ``d^200``), bare numbers, bools,
None, lists, nested tables, dates, very long and non-ASCII strings. A second family
takes the example scenarios and random valid ones (``conftest.valid_scenarios``) and
replaces, deletes or adds one to three nodes. Files: random bytes, invalid UTF-8, a BOM
or UTF-16 before valid TOML, and valid TOML written from the random dicts.

Inputs found to crash the parser are kept at the end as plain, strict cases.

Budgets: see ``tests/conftest.py`` (``HYPOTHESIS_PROFILE=slow`` for ten times more).
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import re
import tomllib
from pathlib import Path

import pytest
from conftest import scaled, valid_scenarios
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from csfmodel.anatomy import PATIENT_UNITS, VERTEBRAL_LEVELS
from csfmodel.drugs import DRUG_UNITS, DRUGS
from csfmodel.errors import ScenarioError
from csfmodel.scenario import DOSE_KEYS, Scenario, load_scenario, parse_scenario
from csfmodel.units import UNITS, convert, parse_quantity

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "scenarios"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.toml"))

# ------------------------------------------------------------------ numbers
INF, NAN = float("inf"), float("nan")
SPECIAL_FLOATS = [1e300, -1e300, 1e-300, -1e-300, 5e-324, 1.7976931348623157e308, INF, -INF,
                  NAN, -0.0, 0.0, 1.0, -1.0]
# (beyond ~4300 digits an int has no repr: hypothesis could not report it; 10**5000 is
# tested below by hand)
HUGE_INTS = [2**63 - 1, -(2**63), 10**400, -(10**400), 10**4000]

py_numbers = st.one_of(
    st.floats(),
    st.sampled_from(SPECIAL_FLOATS),
    st.integers(),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from(HUGE_INTS),
)
number_text = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(-1e4, 1e4).map(lambda x: f"{x:g}"),
    st.integers(-100, 10**6).map(str),
    st.sampled_from([
        "1e300", "1e-300", "-1e300", "1e999", "-1e999", "1e-999", "1e+308", "1e-324", "-0",
        "+0", "0", "0.0", "-0.0", ".5", "5.", "+.5", "1e", "e5", "1.2.3", "1_000", "0x1F",
        "inf", "-inf", "nan", "Infinity", "1E5", "9" * 400, "1e" + "9" * 400, "0." + "0" * 400
        + "1", "٣", "１", "½", "1,5", "--1", "+-1", "",
    ]),
)

# ------------------------------------------------------------------ units
REAL_UNITS = ["mg", "ug", "µg", "mcg", "ng", "pg", "g", "kg", "mL", "ml", "uL", "µL", "nL", "L",
              "dL", "cm", "mm", "m", "um", "min", "s", "sec", "h", "hr", "hours", "d", "day",
              "days", "week", "%", "1", "mg/day", "ug/min", "mg/h", "mL/min", "cm^2/min",
              "cm**2/min", "cm2/min", "ug/mL", "ng/mL", "mL/min/kg", "mL/min/g", "1/min", "/h",
              "cm/min", "mg·min", "mg*min", "mg min", "kg/day", "mL/day", "cm^3", "cm^-2"]
BAD_UNITS = ["d^200", "s^-400", "mg^99999999999999999999", "pg^-300", "%^400", "h^" + "9" * 5000,
             "mg//day", "mg/", "/", "//", "^2", "mg ^2", "mg^", "mg^-", "kg*" * 500 + "kg",
             "pg^6 " * 80, "kg^6 " * 80, "mg\x00", "furlong/fortnight", "MG", "Mg/Day",
             "mg/day/", "mg/-day", "µ", "m g", "mg^1.5", "mg^+3", "L^-6", "day^6/pg^6"]
_symbols = st.sampled_from(sorted(UNITS) + ["ml", "ul", "days", "hours", "mins", "seconds"])
_garbage_symbol = st.text(alphabet="abcdefghijklmnopqrstuvwxyzµ%1^*/ -+.0123456789", max_size=6)
_power = st.one_of(st.just(""), st.integers(-400, 400).map(lambda p: f"^{p}"),
                   st.integers(-9, 9).map(str), st.sampled_from(["^200", "^-200", "**2", "^+3"]))
_factor = st.builds(lambda s, p: s + p, st.one_of(_symbols, _garbage_symbol), _power)
composed_units = st.lists(st.tuples(_factor, st.sampled_from(["/", "*", " ", "·", "/ "])),
                          min_size=1, max_size=4).map(
    lambda fs: "".join(f + sep for f, sep in fs[:-1]) + fs[-1][0])
units = st.one_of(st.sampled_from(REAL_UNITS), st.sampled_from(BAD_UNITS), composed_units,
                  st.text(max_size=12))

quantity = st.builds(lambda n, sep, u: f"{n}{sep}{u}", number_text,
                     st.sampled_from(["", " ", "  ", "\t", "\n", " * ", "\u00a0"]), units)


def quantity_in(*unit_choices: str) -> st.SearchStrategy[str]:
    """Plausible-looking quantity strings in the given units (numbers of any size)."""
    return st.builds(lambda n, u: f"{n} {u}", number_text, st.sampled_from(unit_choices))


LONG_STRINGS = [
    "9" * 5000 + " mg", "1 " + " " * 100_000 + "x", "1" + "0" * 400 + " mg", "mg" * 5000,
    "1 " + "mg*" * 5000 + "mg", "\x00" * 100, "1 " + "/".join(["mg"] * 1000),
    "1 " + "mg " * 20_000, "L3-" * 1000 + "L4", "T" + "1" * 1000, "1e" + "9" * 5000 + " mg",
    "é" * 10_000, "\U0001f600 mg", "\ufeff1 mg", "1 mg\u200b", "1\u2009mg", "1 µg",
]
scalars = st.one_of(
    quantity, quantity, py_numbers, st.booleans(), st.none(), st.text(),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=50, max_size=300),
    st.sampled_from(LONG_STRINGS), st.datetimes(), st.dates(), st.times(), st.binary(max_size=8),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=8,
)

# ------------------------------------------------------------------ keys and sections
_bogus_keys = st.one_of(st.text(max_size=12), st.sampled_from(
    ["", " ", "Duration", "DURATION", "dose", "simulation", "name ", "rate", "amount", "site",
     "route", "type", "x" * 1000, "é", "__class__", "__init__", "area_shape",
     "cord_area_profile", "sources", "estimated"]))
_odd_keys = st.one_of(st.integers(), st.none(), st.booleans(), st.floats())

LEVELS = list(VERTEBRAL_LEVELS)
INTERSPACES = [f"{a}-{b}" for a, b in zip(LEVELS, LEVELS[1:])]
site_values = st.one_of(
    st.sampled_from(LEVELS + INTERSPACES),
    st.sampled_from(["L3/L4", " l3 - l4 ", "t10", "L5-S1", "S2-S3", "L4-L3", "C0", "C8", "T13",
                     "L6", "S5", "X1", "L3-L5", "C1-", "-L3", "T", "0 cm", "61 cm", "62 cm",
                     "-1 cm", "45", "45 mm", "0.45 m", "inf cm", "nan cm", "1e300 cm",
                     "1e-300 cm", "-0 cm", ".5 cm", "+30 cm", "30 mL"]),
    quantity_in("cm", "mm", "m", "mL", "h"),
)
TIME_UNITS = ("min", "h", "d", "day", "s", "week", "mg", "mL", "1/min")
time_values = st.one_of(quantity_in(*TIME_UNITS), st.sampled_from(["0 h", "2 h", "23.99 h",
                                                                   "24 h", "1e-300 h", "-0 h"]))
count_values = st.one_of(st.integers(-5, 50), st.sampled_from(HUGE_INTS), st.booleans(),
                         st.floats(), st.just("2"))
DOSE_KEY_VALUES: dict[str, st.SearchStrategy] = {
    "site": site_values,
    "amount": quantity_in("mg", "ug", "g", "kg", "mL", "mg/day"),
    "rate": quantity_in("mg/day", "ug/min", "mg/h", "kg/day", "mL/day", "mg"),
    "volume": quantity_in("mL", "uL", "L", "nL", "mg"),
    "injection_rate": quantity_in("mL/min", "uL/s", "L/min", "mL"),
    "time": time_values, "start": time_values, "duration": time_values,
    "interval": time_values, "lockout": time_values,
    "count": count_values, "max_per_day": count_values,
    "requests": st.lists(st.one_of(time_values, values), max_size=5),
    "daily_requests": st.lists(st.one_of(time_values, values), max_size=5),
    "program": st.one_of(
        st.lists(st.one_of(
            st.fixed_dictionaries({"at": time_values, "rate": quantity_in(
                "mg/day", "ug/min", "kg/day", "mL/day")}),
            st.dictionaries(st.sampled_from(["at", "rate", "x"]), values, max_size=3),
            values), max_size=4),
        values),
    "delivery": st.sampled_from(["needle", "catheter", "NEEDLE", "pump", "", "catheter "]),
    "formulation": st.sampled_from(["immediate", "controlled", "ir", "CR", "er", "", "x"]),
}
ROUTES = sorted({r for r, _ in DOSE_KEYS})
TYPES = sorted({t for _, t in DOSE_KEYS})


@st.composite
def doses(draw) -> dict:
    route = draw(st.one_of(st.sampled_from(ROUTES), st.sampled_from(["IV", "Intrathecal",
                                                                       "epidural", "it"]),
                           values))
    typ = draw(st.one_of(st.sampled_from(TYPES), st.sampled_from(["BOLUS", "pump"]), values))
    d: dict = {}
    if draw(st.integers(0, 9)):
        d["route"] = route
    if draw(st.integers(0, 3)):
        d["type"] = typ
    real = DOSE_KEYS.get((route.lower(), typ.lower()), ()) if isinstance(route, str) \
        and isinstance(typ, str) else ()
    real = real or tuple(DOSE_KEY_VALUES)
    for k in draw(st.lists(st.sampled_from(sorted(set(real))), unique=True, max_size=len(real))):
        d[k] = draw(st.one_of(DOSE_KEY_VALUES[k], DOSE_KEY_VALUES[k], values))
    for k in draw(st.lists(st.one_of(_bogus_keys, st.sampled_from(sorted(DOSE_KEY_VALUES))),
                           max_size=2)):
        d[k] = draw(st.one_of(DOSE_KEY_VALUES.get(k, values), values))
    return d


def _override_value(unit: str) -> st.SearchStrategy:
    if unit == "str":
        return st.one_of(st.sampled_from(LEVELS + ["L6", "", "l1", " L2 "]), values)
    if unit == "1":
        return st.one_of(py_numbers, st.floats(-2, 2), quantity, values)
    return st.one_of(quantity_in(unit, "mL", "cm", "min", "mg"), values)


@st.composite
def sections(draw) -> dict:
    data: dict = {}
    if draw(st.booleans()):
        sim = draw(st.fixed_dictionaries({}, optional={
            k: st.one_of(v, v, v, values) for k, v in SIM_KEY_VALUES.items()}))
        data["simulation"] = draw(st.one_of(st.just(sim), values)) if draw(
            st.integers(0, 9)) == 0 else sim
    if draw(st.booleans()):
        keys = draw(st.lists(st.sampled_from(sorted(PATIENT_UNITS)), unique=True, max_size=4))
        pat = {k: draw(_override_value(PATIENT_UNITS[k])) for k in keys}
        data["patient"] = pat
    if draw(st.booleans()):
        drug: dict = {}
        if draw(st.integers(0, 3)):
            drug["name"] = draw(st.one_of(st.sampled_from(sorted(DRUGS)), st.sampled_from(
                ["Morphine", " fentanyl ", "heroin", ""]), values))
        for k in draw(st.lists(st.sampled_from(sorted(DRUG_UNITS)), unique=True, max_size=4)):
            drug[k] = draw(_override_value(DRUG_UNITS[k]))
        data["drug"] = drug
    if draw(st.booleans()):
        data["dose"] = draw(st.one_of(st.lists(doses(), max_size=3), st.lists(doses(), max_size=3),
                                      values))
    # bogus keys and values, anywhere in the sections
    for _ in range(draw(st.integers(0, 2)) if draw(st.integers(0, 3)) == 0 else 0):
        where = draw(st.sampled_from(["", "simulation", "patient", "drug"]))
        key = draw(st.one_of(_bogus_keys, _odd_keys)) if draw(st.integers(0, 4)) else draw(
            _odd_keys)
        target = data if where == "" else data.get(where)
        if isinstance(target, dict):
            target[key] = draw(values)
    return data


SIM_KEY_VALUES = {
    "duration": st.one_of(quantity_in("h", "min", "day", "d", "week", "s", "mg"),
                          st.sampled_from(["366 day", "367 day", "1e-300 h", "0 h", "-1 h"])),
    "output_interval": st.one_of(quantity_in("min", "h", "s", "d"),
                                 st.sampled_from(["1e-300 min", "0.001 s", "1e-9 min"])),
    "resolution": quantity_in("cm", "mm", "m", "um", "mL"),
    "solver": st.sampled_from(["numba", "reference", "jax", "NUMBA", "scipy", ""]),
}
#: for each key of any section, values of the right kind over any range
KEY_VALUES: dict[str, st.SearchStrategy] = {
    **{k: _override_value(u) for k, u in PATIENT_UNITS.items()},
    **{k: _override_value(u) for k, u in DRUG_UNITS.items()},
    **SIM_KEY_VALUES, **DOSE_KEY_VALUES,
    "at": time_values,
    "name": st.one_of(st.sampled_from(sorted(DRUGS)), st.sampled_from(["Morphine", "x", ""])),
    "route": st.sampled_from(ROUTES + ["IV", "epidural"]),
    "type": st.sampled_from(TYPES + ["BOLUS", "pump"]),
}


def _example_dicts() -> list[dict]:
    return [tomllib.loads(p.read_text(encoding="utf-8")) for p in EXAMPLE_FILES]


def _leaves(obj, path=()):
    """Paths of every node (tables, arrays and scalars) below ``obj``."""
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, path + (i,))


def _get(data, path):
    for k in path:
        data = data[k]
    return data


@st.composite
def mutated_examples(draw) -> dict:
    """An example scenario with one to three nodes replaced, deleted or added."""
    data = copy.deepcopy(draw(st.one_of(st.sampled_from(_example_dicts()),
                                        valid_scenarios())))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _leaves(data) if p]
        if not paths:
            break
        if draw(st.integers(0, 3)):  # mostly a scalar deep inside, sometimes a whole table
            paths = [p for p in paths if not isinstance(_get(data, p), (dict, list))] or paths
        path = draw(st.sampled_from(paths[::-1]))
        parent = _get(data, path[:-1])
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            leaf = path[-1]
            kind = KEY_VALUES.get(leaf, values) if isinstance(leaf, str) else values
            parent[leaf] = draw(st.one_of(kind, kind, kind, quantity, values))
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(_bogus_keys)] = draw(values)
        else:
            parent.append(draw(st.one_of(doses(), values)))
    return data


def check_parse(data) -> Scenario | None:
    """``parse_scenario(data)``: a Scenario or a ScenarioError, nothing else."""
    try:
        sc = parse_scenario(data)
    except ScenarioError as exc:
        assert str(exc)  # the one-line message renders
        return None
    assert isinstance(sc, Scenario)
    return sc


# ------------------------------------------------------------------ (a) dicts
@settings(max_examples=scaled(200))
@given(sections())
@example({"simulation": {"duration": "1 d^200"}})
@example({"simulation": {"duration": "1e300 h", "output_interval": "1e-300 min"}})
@example({"simulation": {"duration": "0 h"}})
@example({"patient": {"dispersion": "0 cm^-2/min"}})
@example({"dose": [{"route": "oral", "amount": "1e999 mg"}]})
@example({"dose": [{"route": "intrathecal", "site": "L3", "amount": "5 mg^200"}]})
def test_parse_scenario_never_crashes(data):
    check_parse(data)


@settings(max_examples=scaled(150))
@given(st.one_of(mutated_examples(), mutated_examples(), mutated_examples(), values,
                 st.lists(sections(), max_size=2)))
def test_parse_mutated_examples_never_crashes(data):
    check_parse(data)


# ------------------------------------------------------------------ (b) files
def _toml_string(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_key(k) -> str:
    k = str(k)
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else _toml_string(k)


def to_toml_value(v) -> str | None:
    """TOML (inline) for the values TOML can hold; None for those it cannot."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if -(2**63) <= v < 2**63 else None
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == INF else "-inf" if v == -INF
                                            else repr(v))
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    if isinstance(v, dt.time):
        return v.isoformat()
    if isinstance(v, list):
        items = [to_toml_value(x) for x in v]
        return "[" + ", ".join(x for x in items if x is not None) + "]"
    if isinstance(v, dict):
        items = [(k, to_toml_value(x)) for k, x in v.items()]
        return "{" + ", ".join(f"{_toml_key(k)} = {x}" for k, x in items if x is not None) + "}"
    return None


def to_toml(data) -> str:
    if not isinstance(data, dict):
        data = {"value": data}
    lines = []
    seen = set()
    for k, v in data.items():
        text = to_toml_value(v)
        if text is not None and str(k) not in seen:  # TOML keys are strings, once each
            seen.add(str(k))
            lines.append(f"{_toml_key(k)} = {text}")
    return "\n".join(lines) + "\n"


_no_surrogates = st.characters(codec="utf-8")
_example_bytes = [p.read_bytes() for p in EXAMPLE_FILES]
file_contents = st.one_of(
    st.binary(max_size=2000),
    st.builds(lambda b, rest: b + rest, st.sampled_from(
        [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]),
        st.sampled_from(_example_bytes)),
    st.builds(lambda e, b: e[: len(e) // 2] + b + e[len(e) // 2:],
              st.sampled_from(_example_bytes), st.binary(min_size=1, max_size=8)),
    st.sampled_from(_example_bytes).map(lambda e: b"\xef\xbb\xbf" + e),
    st.sampled_from(_example_bytes).map(lambda e: e.decode().encode("utf-16")),
    st.text(alphabet=_no_surrogates, max_size=500).map(lambda s: s.encode()),
    st.one_of(sections(), mutated_examples()).map(lambda d: to_toml(d).encode("utf-8",
                                                                               "replace")),
    st.sampled_from([b"", b"\x00", b"[simulation]\nduration = 1e400\n", b"a = " + b"[" * 2000,
                     b"a = " + b"{a = " * 500 + b"1" + b"}" * 500,
                     b"[simulation]\nduration = '" + b"9" * 5000 + b" h'\n",
                     b"[[dose]]\n" * 500, b"dose = 1979-05-27T07:32:00Z\n"]),
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz_files")


@settings(max_examples=scaled(120), suppress_health_check=[HealthCheck.too_slow])
@given(content=file_contents)
def test_load_scenario_never_crashes(scratch, content):
    path = scratch / "scenario.toml"
    path.write_bytes(content)
    try:
        sc = load_scenario(path)
    except ScenarioError as exc:
        assert str(exc)
        return
    assert isinstance(sc, Scenario)


def test_load_scenario_refuses_what_is_not_a_file(tmp_path):
    for p in (tmp_path, tmp_path / "missing.toml"):
        with pytest.raises(ScenarioError, match="scenario"):
            load_scenario(p)


# ------------------------------------------------------------------ (c) units
@settings(max_examples=scaled(400))
@given(text=st.one_of(quantity, quantity, py_numbers, scalars, values), unit=units,
       key=st.text(min_size=1, max_size=10))
@example(text="1 d^200", unit="min", key="simulation.duration")
@example(text="1 h", unit="d^200", key="k")
@example(text=10**400, unit="1", key="k")
@example(text="1 s^-400", unit="1/min", key="k")
@example(text="0 d^-5", unit="1/min^5", key="k")
@example(text="1 pg^6 pg^6 pg^6 pg^6 pg^6 pg^6 pg^6 pg^6 pg^6", unit="1", key="k")
@example(text="1e308 L", unit="uL", key="k")
@example(text="1 " + " " * 100_000 + "x", unit="mg", key="k")
def test_convert_never_crashes(text, unit, key):
    try:
        out = convert(text, unit, key)
    except ScenarioError as exc:
        assert exc.key == key
        return
    assert isinstance(out, float) and math.isfinite(out)


@settings(max_examples=scaled(300))
@given(text=st.one_of(quantity, quantity, py_numbers, scalars), key=st.text(min_size=1,
                                                                            max_size=10))
def test_parse_quantity_never_crashes(text, key):
    try:
        value, dim = parse_quantity(text, key)
    except ScenarioError as exc:
        assert exc.key == key
        return
    assert isinstance(value, float) and math.isfinite(value)
    assert isinstance(dim, tuple) and len(dim) == 3 and all(isinstance(p, int) for p in dim)


@pytest.mark.parametrize("text, unit, expected", [
    ("0.5 mg/day", "ug/min", 500 / 1440), ("20 uL", "mL", 0.02), ("2 cm^2/min", "cm^2/min", 2),
    ("6 /h", "1/min", 0.1), ("1 cm^6", "mL^2", 1.0), ("  3  h  ", "min", 180.0),
    ("-0 mg", "mg", 0.0), ("1e-300 mg", "ug", 1e-297), ("1e300 mg^2", "ug^2", 1e306),
])
def test_convert_still_converts(text, unit, expected):
    assert convert(text, unit) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("text, unit", [
    ("1 d^200", "min"), ("1 mg^99999999999999999999", "mg"), ("1 s^-400", "1/min"),
    ("1 %^400", "1"), ("1 h^" + "9" * 5000, "h"), ("1e308 L", "uL"), ("inf mg", "mg"),
    ("nan mg", "mg"), ("1e999 mg", "mg"), ("١ mg", "mg"), ("1 mg^7", "mg^7"),
    ("1 " + "pg^6 " * 60, "1"),
], ids=lambda v: v if len(v) < 30 else v[:20] + "...")
def test_out_of_range_units_are_scenario_errors(text, unit):
    with pytest.raises(ScenarioError, match="^dose.amount: "):
        convert(text, unit, "dose.amount")


@pytest.mark.parametrize("value", [10**400, -(10**400), 10**5000, INF, -INF, NAN],
                         ids=["1e400", "-1e400", "1e5000", "inf", "-inf", "nan"])
def test_bare_numbers_out_of_float_range_are_scenario_errors(value):
    with pytest.raises(ScenarioError, match="^drug.fu_plasma: "):
        convert(value, "1", "drug.fu_plasma")
    with pytest.raises(ScenarioError, match="^drug.fu_plasma: "):
        parse_quantity(value, "drug.fu_plasma")


# ------------------------------------------------------------------ found by the fuzz
# Inputs the fuzz found that raise something other than a ScenarioError, outside
# csfmodel/units.py. Plain strict cases (no xfail): they fail until the parser is fixed.
def _nested(depth: int) -> list:
    x: list = []
    for _ in range(depth):
        x = [x]
    return x


CRASHERS = {
    # scenario.py _overrides: float(v) of an int beyond the float range -> OverflowError
    # (fixed since; kept as regression cases)
    "drug_number_1e400": {"drug": {"fu_plasma": 10**400}},
    "patient_number_1e400": {"patient": {"conus_fraction": -(10**400)}},
    # an int of more than 4300 digits has no str()/repr() (ValueError): in the
    # ScenarioError message (errors.py) and in str(value) of scenario.py / drugs.py
    "bogus_key_int_5000_digits": {"bogus": 10**5000},
    "drug_name_int_5000_digits": {"drug": {"name": 10**5000}},
    "route_int_5000_digits": {"dose": [{"route": 10**5000}]},
    # repr() of a deeply nested value in the ScenarioError message -> RecursionError
    "bogus_key_nested_100000": {"bogus": _nested(100_000)},
}
FILE_CRASHERS = {
    # tomllib raises RecursionError (not TOMLDecodeError) on deep nesting; load_scenario
    # lets it through
    "nested_arrays_1000": b"a = " + b"[" * 1000 + b"]" * 1000 + b"\n",
    "nested_inline_tables_1000": b"a = " + b"{a = " * 1000 + b"1" + b"}" * 1000 + b"\n",
}


@pytest.mark.parametrize("data", list(CRASHERS.values()), ids=list(CRASHERS))
def test_crashers_found_by_the_fuzz(data):
    check_parse(data)


@pytest.mark.parametrize("content", list(FILE_CRASHERS.values()), ids=list(FILE_CRASHERS))
def test_file_crashers_found_by_the_fuzz(tmp_path, content):
    path = tmp_path / "scenario.toml"
    path.write_bytes(content)
    with pytest.raises(ScenarioError):
        load_scenario(path)
