"""Sweep definitions: swept parameters (values or distributions, with units) and designs.

A :class:`Sweep` is a base scenario, a list of :class:`Parameter` and a design:

=========  ===================================================================
design     scenarios
=========  ===================================================================
product    every combination of the parameters' ``values`` (one store dimension
           per parameter)
zip        the i-th values of every parameter together
lhs        ``n`` points of a Latin hypercube (:class:`scipy.stats.qmc.LatinHypercube`)
sobol      Saltelli's scheme on a scrambled Sobol sequence (``n`` base points,
           ``n (d + 2)`` scenarios; :func:`SALib.sample.sobol.sample`), for Sobol
           indices (:func:`csfmodel.sweep.sobol_indices`)
=========  ===================================================================

For ``lhs`` and ``sobol`` each parameter has a distribution (its inverse CDF maps
the unit hypercube to values) or a list of ``values`` (taken with equal
probability). Every number carries a unit: a string ``"0.5 mg/day"``, or numbers
with ``unit="mg/day"``. A parameter becomes a numeric coordinate of the store in
that unit; dose sites and vertebral levels become positions (cm from the foramen
magnum, in the base patient) with a ``<key>_label`` coordinate beside them, other
words (a drug name) an index with a label.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from csfmodel.errors import ScenarioError

__all__ = ["Parameter", "Design", "Outputs", "Sweep", "read_sweep", "DESIGNS", "DISTRIBUTIONS"]

DESIGNS = ("product", "zip", "lhs", "sobol")
#: distribution -> the keys it takes (beside ``unit``)
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name: (required, optional)
    "uniform": (("low", "high"), ()),
    "loguniform": (("low", "high"), ()),
    "normal": (("mean", "sd"), ("low", "high")),
    "lognormal": (("mean", "sd"), ("low", "high")),
    "truncnormal": (("mean", "sd", "low", "high"), ()),
    "trunclognormal": (("mean", "sd", "low", "high"), ()),
}
_NUM = re.compile(r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*(.*?)\s*$")


def _unit_of(text: str) -> str:
    m = _NUM.match(text)
    return m.group(1) if m else ""


def _is_level(value: Any) -> bool:
    from csfmodel.anatomy import VERTEBRAL_LEVELS

    if not isinstance(value, str):
        return False
    parts = [p.strip().upper() for p in re.split(r"[-/]", value)]
    return 0 < len(parts) <= 2 and all(p in VERTEBRAL_LEVELS for p in parts)


@dataclass
class Parameter:
    """One swept key of the base scenario.

    Parameters
    ----------
    key
        As in the scenario file: ``"patient.dispersion"``, ``"dose[0].rate"``,
        ``"dose[0].site"``, ``"drug.name"``.
    values
        Explicit values: strings with units (``"0.5 mg/day"``), levels (``"T10"``),
        or numbers (a list or numpy array) with ``unit``.
    distribution
        Instead of values (designs ``lhs`` and ``sobol``): one of
        :data:`DISTRIBUTIONS`, with ``low``/``high`` or ``mean``/``sd`` (strings with
        units, or numbers in ``unit``). ``normal``/``lognormal`` with ``low``/``high``
        are truncated there; ``lognormal``'s ``mean`` and ``sd`` are those of the
        quantity itself.
    unit
        The unit of plain numbers, and of the store's coordinate.
    """

    key: str
    values: Sequence[Any] | np.ndarray | None = None
    distribution: str | None = None
    low: Any = None
    high: Any = None
    mean: Any = None
    sd: Any = None
    unit: str | None = None

    def where(self, i: int | None = None) -> str:
        return f"parameter[{i}]" if i is not None else f"parameters[{self.key!r}]"

    # -------------------------------------------------------------- checking
    def checked(self, i: int | None = None) -> Parameter:
        """A copy with values/bounds converted to numbers or labels (raises ScenarioError)."""
        from csfmodel.sweep._batch import _KEY

        w = self.where(i)
        if not isinstance(self.key, str) or not _KEY.match(self.key):
            raise ScenarioError(f"{w}.key", self.key, "a key such as 'patient.dispersion', "
                                "'drug.name', 'dose[0].rate' or 'dose[0].site'")
        if (self.values is None) == (self.distribution is None):
            raise ScenarioError(w, self.key, "either values = [...] or a distribution")
        if self.unit is not None and not isinstance(self.unit, str):
            raise ScenarioError(f"{w}.unit", self.unit, "a unit such as 'mg/day'")
        if self.values is not None:
            vals = self.values
            if isinstance(vals, (str, bytes)) or not hasattr(vals, "__len__") or not len(vals):
                raise ScenarioError(f"{w}.values", vals, "a non-empty list of values")
            for k in ("low", "high", "mean", "sd"):
                if getattr(self, k) is not None:
                    raise ScenarioError(f"{w}.{k}", getattr(self, k),
                                        "nothing beside values (it belongs to a distribution)")
            return self
        if self.distribution not in DISTRIBUTIONS:
            raise ScenarioError(f"{w}.distribution", self.distribution,
                                "one of: " + ", ".join(DISTRIBUTIONS))
        need, opt = DISTRIBUTIONS[self.distribution]
        for k in ("low", "high", "mean", "sd"):
            v = getattr(self, k)
            if k in need and v is None:
                raise ScenarioError(f"{w}.{k}", None, f"a value (distribution "
                                    f"{self.distribution!r} takes {', '.join(need + opt)})")
            if v is not None and k not in need + opt:
                raise ScenarioError(f"{w}.{k}", v, f"only {', '.join(need + opt)} for "
                                    f"distribution {self.distribution!r}")
        unit = self.unit
        given = {k: getattr(self, k) for k in ("low", "high", "mean", "sd")
                 if getattr(self, k) is not None}
        if unit is None:
            texts = [v for v in given.values() if isinstance(v, str)]
            unit = _unit_of(texts[0]) if texts else ""
        nums = {k: self._number(v, unit, f"{w}.{k}") for k, v in given.items()}
        lo, hi = nums.get("low", -math.inf), nums.get("high", math.inf)
        if not lo < hi:
            raise ScenarioError(f"{w}.high", given.get("high"), f"a value above low "
                                f"({given.get('low')})")
        if "sd" in nums and not nums["sd"] > 0:
            raise ScenarioError(f"{w}.sd", given["sd"], "a positive standard deviation")
        if self.distribution in ("loguniform", "lognormal", "trunclognormal"):
            for k in ("low", "mean"):
                if k in nums and not nums[k] > 0:
                    raise ScenarioError(f"{w}.{k}", given[k], "a positive value (log scale)")
        if "mean" in nums and not lo <= nums["mean"] <= hi:
            raise ScenarioError(f"{w}.mean", given["mean"], "a mean between low and high")
        return Parameter(self.key, None, self.distribution, nums.get("low"), nums.get("high"),
                         nums.get("mean"), nums.get("sd"), unit or "1")

    @staticmethod
    def _number(v: Any, unit: str, key: str) -> float:
        from csfmodel.units import convert

        if isinstance(v, bool):
            raise ScenarioError(key, v, "a number or a quantity with units")
        if isinstance(v, (int, float, np.number)):
            x = float(v)
            if not math.isfinite(x):
                raise ScenarioError(key, v, "a finite number")
            return x
        if unit in ("", "1"):
            return convert(v, "1", key)
        return convert(v, unit, key)

    # -------------------------------------------------------------- sampling
    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Values (in :attr:`unit`) at the probabilities ``u`` (inverse CDF)."""
        from scipy.special import ndtr, ndtri

        d = self.distribution
        lo = -np.inf if self.low is None else self.low
        hi = np.inf if self.high is None else self.high
        if d == "uniform":
            return lo + u * (hi - lo)
        if d == "loguniform":
            return np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
        if d in ("normal", "truncnormal"):
            mu, s = self.mean, self.sd
        else:   # lognormal: the quantity's mean and sd -> those of its logarithm
            s = math.sqrt(math.log1p((self.sd / self.mean) ** 2))
            mu = math.log(self.mean) - 0.5 * s * s
            lo = np.log(lo) if lo > 0 else -np.inf
            hi = np.log(hi)
        a, b = ndtr((lo - mu) / s), ndtr((hi - mu) / s)
        x = mu + s * ndtri(a + u * (b - a))
        x = np.clip(x, lo, hi)
        return x if d in ("normal", "truncnormal") else np.exp(x)


@dataclass
class Design:
    """How the scenarios are drawn: ``kind`` in :data:`DESIGNS`, ``n`` and ``seed``."""

    kind: str = "product"
    n: int | None = None
    seed: int | None = None

    def checked(self) -> Design:
        if self.kind not in DESIGNS:
            raise ScenarioError("design.kind", self.kind, "one of: " + ", ".join(DESIGNS))
        if self.kind in ("lhs", "sobol"):
            n = self.n
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ScenarioError("design.n", n, f"a whole number >= 1 (design {self.kind!r})")
            if self.kind == "sobol" and n & (n - 1):
                raise ScenarioError("design.n", n, "a power of 2 (Sobol sequence), e.g. "
                                    f"{1 << max(int(n).bit_length() - 1, 0)} or "
                                    f"{1 << int(n).bit_length()}")
        elif self.n is not None:
            raise ScenarioError("design.n", self.n, f"nothing (design {self.kind!r} takes "
                                "the number of scenarios from the values)")
        seed = self.seed
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ScenarioError("design.seed", seed, "a whole number >= 0")
        return Design(self.kind, None if self.n is None else int(self.n),
                      None if seed is None else int(seed))


@dataclass
class Outputs:
    """What a sweep keeps per scenario.

    ``variables`` (concentrations, :data:`csfmodel.sweep.VARIABLES`) get Cmax, Tmax,
    AUC, final value and the average over the last ``interval`` (steady state; default
    the last 24 h, or the whole run if shorter); the CSF at the catheter tip is always
    kept. With ``cord_concentration``: the time each segment spends at or above
    ``threshold`` and the number of segments reaching it, and the target:brain
    selectivity (``target`` segments, default all); with ``brain_concentration`` and
    morphine: the peak respiratory depression (:mod:`csfmodel.effects`).
    ``series=True`` keeps the time series of ``variables`` too.
    """

    variables: tuple[str, ...] = ()
    series: bool = False
    threshold: Any = "10 ng/mL"
    target: Any = None
    interval: Any = None
    effects: bool = True

    def checked(self) -> Outputs:
        from csfmodel.effects import target_segments
        from csfmodel.sweep._batch import DEFAULT_VARIABLES, VARIABLES
        from csfmodel.units import convert

        variables = tuple(self.variables) or DEFAULT_VARIABLES
        for v in variables:
            if v not in VARIABLES:
                raise ScenarioError("outputs.variables", v, "some of: " + ", ".join(VARIABLES))
        thr = None if self.threshold is None else convert(
            self.threshold if isinstance(self.threshold, str) else float(self.threshold),
            "ng/mL" if isinstance(self.threshold, str) else "1", "outputs.threshold")
        if thr is not None and not thr > 0:
            raise ScenarioError("outputs.threshold", self.threshold, "a positive concentration")
        target_segments(self.target, "outputs.target")
        interval = None if self.interval is None else convert(
            self.interval, "min", "outputs.interval")
        if interval is not None and not interval > 0:
            raise ScenarioError("outputs.interval", self.interval, "a positive duration")
        if not isinstance(self.series, bool):
            raise ScenarioError("outputs.series", self.series, "true or false")
        return Outputs(tuple(dict.fromkeys(variables)), self.series, thr, self.target,
                       interval, bool(self.effects))


@dataclass
class Column:
    """One parameter over the scenarios of a design: what the scenarios get (``raw``),
    the store's numeric coordinate (``numbers``, in ``unit``) and labels if any."""

    key: str
    raw: list
    numbers: np.ndarray
    unit: str
    labels: np.ndarray | None = None


@dataclass
class Sweep:
    """A sweep: base scenario (dict in the TOML layout), parameters, design, outputs.

    Build it from Python (``Sweep(base, [Parameter(...)], Design("lhs", 256, 1))``, or
    ``Sweep.of(base, {"dose[0].rate": ["0.5 mg/day", "1 mg/day"]})``) or from a sweep
    file (:func:`read_sweep`).
    """

    base: Any
    parameters: list[Parameter]
    design: Design = field(default_factory=Design)
    outputs: Outputs = field(default_factory=Outputs)
    chunk_size: int = 256
    rtol: float | None = None
    backend: str = "numba"
    cluster: dict = field(default_factory=dict)
    source: str | None = None

    @classmethod
    def of(cls, base: Any, parameters: Mapping[str, Any] | Sequence[Parameter], *,
           design: str | Design = "product", n: int | None = None, seed: int | None = None,
           **kw: Any) -> Sweep:
        """From ``{key: values}`` (strings with units, or ``(numbers, unit)``) or
        :class:`Parameter` objects; ``design``/``n``/``seed`` as :class:`Design`."""
        params = []
        if isinstance(parameters, Mapping):
            for k, v in parameters.items():
                if isinstance(v, Parameter):
                    params.append(v)
                elif isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], str):
                    params.append(Parameter(k, values=v[0], unit=v[1]))
                elif isinstance(v, Mapping):
                    params.append(Parameter(k, **v))
                else:
                    params.append(Parameter(k, values=v))
        else:
            params = list(parameters)
        d = design if isinstance(design, Design) else Design(design, n, seed)
        return cls(base, params, d, **kw)

    # -------------------------------------------------------------- checking
    def checked(self) -> Sweep:
        """A validated copy (raises :class:`~csfmodel.errors.ScenarioError`, one line)."""
        from csfmodel.solvers import SolverOptions, get_backend
        from csfmodel.sweep._batch import _base_dict

        _base_dict(self.base)          # a readable base scenario
        if not self.parameters:
            raise ScenarioError("parameter", [], "at least one [[parameter]] table")
        params = [p.checked(i) for i, p in enumerate(self.parameters)]
        keys = [p.key for p in params]
        if len(set(keys)) != len(keys):
            dup = next(k for k in keys if keys.count(k) > 1)
            raise ScenarioError("parameter.key", dup, "each key once")
        design = self.design.checked()
        if design.kind in ("product", "zip"):
            for i, p in enumerate(params):
                if p.values is None:
                    raise ScenarioError(f"parameter[{i}].distribution", p.distribution,
                                        f"values = [...] (design {design.kind!r}; "
                                        "distributions need design 'lhs' or 'sobol')")
            if design.kind == "zip" and len({len(p.values) for p in params}) != 1:
                raise ScenarioError("parameter", {p.key: len(p.values) for p in params},
                                    "lists of equal length (design 'zip'), or design 'product'")
        cs = self.chunk_size
        if isinstance(cs, bool) or not isinstance(cs, (int, np.integer)) or cs < 1:
            raise ScenarioError("chunk_size", cs, "a whole number >= 1")
        backend = get_backend(self.backend)
        backend.resolve(SolverOptions(rtol=self.rtol))
        if not isinstance(self.cluster, Mapping):
            raise ScenarioError("cluster", self.cluster, "a table of cluster settings")
        out = Sweep(self.base, params, design, self.outputs.checked(), int(cs), self.rtol,
                    self.backend, dict(self.cluster), self.source)
        out.columns()     # every value parses, on its own, in the base scenario
        return out

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.parameters) if self.design.kind == "product" \
            else ("scenario",)

    @property
    def shape(self) -> tuple[int, ...]:
        if self.design.kind == "product":
            return tuple(len(p.values) for p in self.parameters)
        if self.design.kind == "zip":
            return (len(self.parameters[0].values),)
        d = len(self.parameters)
        return (self.design.n * (d + 2),) if self.design.kind == "sobol" else (self.design.n,)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def unit_samples(self) -> np.ndarray:
        """``(scenarios, d)`` points of the unit hypercube (designs lhs and sobol)."""
        d, n, seed = len(self.parameters), self.design.n, self.design.seed
        if self.design.kind == "lhs":
            from scipy.stats import qmc

            return qmc.LatinHypercube(d, seed=np.random.default_rng(seed)).random(n)
        import warnings

        from SALib.sample import sobol as saltelli

        problem = {"num_vars": d, "names": [p.key for p in self.parameters],
                   "bounds": [[0.0, 1.0]] * d}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return saltelli.sample(problem, n, calc_second_order=False, scramble=True,
                                   seed=seed)

    # -------------------------------------------------------------- columns
    def columns(self) -> list[Column]:
        """Each parameter over the scenarios (flattened in C order for a product); worked
        out once per sweep (every value checked in the base scenario)."""
        import hashlib
        import pickle

        # keyed by the values the columns come from (parameters and base are mutable)
        key = hashlib.sha1(pickle.dumps((self.base, self.parameters, self.design))).digest()
        cached = self.__dict__.get("_columns_cache")
        if cached is None or cached[0] != key:
            cached = self.__dict__["_columns_cache"] = (key, self._columns())
        return cached[1]

    def _columns(self) -> list[Column]:
        from csfmodel.sweep._batch import _base_dict

        base = _base_dict(self.base)
        kind = self.design.kind
        cols = []
        if kind in ("lhs", "sobol"):
            u = self.unit_samples()
        for i, p in enumerate(self.parameters):
            if p.values is not None:
                per = _values_column(p, base, i)
                if kind == "product":
                    pick = np.arange(len(p.values))
                elif kind == "zip":
                    pick = np.arange(len(p.values))
                else:
                    pick = np.minimum((u[:, i] * len(p.values)).astype(int), len(p.values) - 1)
                cols.append(Column(p.key, [per.raw[k] for k in pick], per.numbers[pick],
                                   per.unit, None if per.labels is None else per.labels[pick]))
            else:
                x = p.ppf(u[:, i])
                raw = [_with_unit(v, p.unit) for v in x.tolist()]
                for k in (int(np.argmin(x)), int(np.argmax(x))):
                    _check_value(base, p.key, raw[k], f"parameter[{i}]")
                cols.append(Column(p.key, raw, x, p.unit))
        return cols

    def payload(self) -> dict:
        """What a worker needs besides the chunk's values (plain data, pickled once)."""
        from csfmodel.sweep._batch import _base_dict

        return {"base": _base_dict(self.base), "outputs": self.outputs,
                "rtol": self.rtol, "backend": self.backend}

    def describe(self) -> dict:
        """The sweep as plain data (the store's ``sweep`` attribute; resume compares it)."""
        import dataclasses
        import json

        from csfmodel.sweep._batch import _base_dict

        def plain(p: Parameter) -> dict:
            d = {k: v for k, v in dataclasses.asdict(p).items() if v is not None}
            if "values" in d:
                d["values"] = [v.item() if isinstance(v, np.generic) else v
                               for v in list(p.values)]
            return d

        data = {"base": _base_dict(self.base), "parameters": [plain(p) for p in self.parameters],
                "design": dataclasses.asdict(self.design),
                "outputs": dataclasses.asdict(self.outputs), "chunk_size": self.chunk_size,
                "rtol": self.rtol, "backend": self.backend}
        return json.loads(json.dumps(data, default=str))


def _with_unit(x: float, unit: str) -> Any:
    return x if unit in ("", "1") else f"{x!r} {unit}"


def _check_value(base: dict, key: str, value: Any, where: str) -> None:
    """Parse the base with ``key = value`` (the error names the parameter and value)."""
    import copy

    from csfmodel.scenario import parse_scenario
    from csfmodel.sweep._batch import _set

    d = copy.deepcopy(base)
    _set(d, key, value)
    try:
        parse_scenario(d)
    except ScenarioError as exc:
        raise ScenarioError(f"{where} ({key})", exc.value, exc.allowed,
                            detail=exc.detail) from None


def _values_column(p: Parameter, base: dict, i: int) -> Column:
    """Explicit values: raw values for the scenarios, numbers and labels for the store."""
    from csfmodel.scenario import parse_scenario
    from csfmodel.units import convert

    vals = list(np.asarray(p.values).tolist()) if isinstance(p.values, np.ndarray) \
        else list(p.values)
    where = f"parameter[{i}]"
    for k, v in enumerate(vals):
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise ScenarioError(f"{where}.values[{k}]", v, "a number or a string such as "
                                "'0.5 mg/day' or 'T10'")
    raw = [_with_unit(float(v), p.unit) if isinstance(v, (int, float)) and p.unit else v
           for v in vals]
    distinct: dict[str, Any] = {}
    for r in raw:
        distinct.setdefault(str(r), r)
    if all(isinstance(v, (int, float)) for v in vals) and len(distinct) > 2:
        # numbers on a range: the smallest and the largest parse, so every value between
        # does (ranges are intervals); the workers parse each scenario again
        order = np.argsort(np.asarray(vals, float))
        check = [raw[int(order[0])], raw[int(order[-1])]]
    else:
        check = list(distinct.values())
    for r in check:
        _check_value(base, p.key, r, where)
    if all(_is_level(v) for v in raw):
        from csfmodel.scenario import parse_site

        anatomy = parse_scenario(base).anatomy
        z = np.array([parse_site(v, anatomy, where) for v in raw])
        return Column(p.key, raw, z, "cm", np.array([str(v).upper() for v in raw]))
    if all(isinstance(v, (int, float)) for v in raw):
        return Column(p.key, raw, np.array(raw, float), p.unit or "1")
    texts = [v for v in raw if isinstance(v, str)]
    if all(isinstance(v, str) and _NUM.match(v) for v in raw):
        unit = p.unit or _unit_of(texts[0])
        try:
            nums = np.array([convert(v, unit or "1", where) for v in raw])
            return Column(p.key, raw, nums, unit or "1")
        except ScenarioError:
            pass
    number = {label: k for k, label in enumerate(distinct)}
    return Column(p.key, raw, np.array([number[str(v)] for v in raw], float), "1",
                  np.array([str(v) for v in raw]))


# ------------------------------------------------------------------ the file
_TOP = ("base", "design", "parameter", "outputs", "run", "cluster")


def read_sweep(path: str | Path) -> Sweep:
    """A sweep file (TOML), validated: ``base`` relative to the file, ``[design]``,
    ``[[parameter]]``, ``[outputs]``, ``[run]`` (chunk_size, rtol, backend) and
    ``[cluster]`` (see ``docs/sweeps.md``)."""
    import tomllib

    from csfmodel._io import read_text

    p = Path(path)
    try:
        data = tomllib.loads(read_text(p, "sweep", "a readable sweep file (TOML)"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError("sweep", str(p), "valid TOML", detail=str(exc)) from None
    for k in data:
        if k not in _TOP:
            raise ScenarioError(k, data[k], "one of the keys: " + ", ".join(_TOP),
                                detail="unknown key")
    base = data.get("base")
    if not isinstance(base, str):
        raise ScenarioError("base", base, "the path of the base scenario, relative to the "
                            "sweep file, e.g. base = \"scenario.toml\"")
    base_path = (p.parent / base) if not Path(base).is_absolute() else Path(base)

    def table(name: str, allowed: tuple[str, ...]) -> dict:
        t = data.get(name, {})
        if not isinstance(t, dict):
            raise ScenarioError(name, t, f"a [{name}] table")
        for k in t:
            if k not in allowed:
                raise ScenarioError(f"{name}.{k}", t[k], "one of the keys: " +
                                    ", ".join(allowed), detail="unknown key")
        return t

    design = Design(**table("design", ("kind", "n", "seed")))
    outputs = Outputs(**table("outputs", ("variables", "series", "threshold", "target",
                                          "interval", "effects")))
    run = table("run", ("chunk_size", "rtol", "backend"))
    cluster = data.get("cluster", {})
    plist = data.get("parameter")
    if not isinstance(plist, list) or not plist:
        raise ScenarioError("parameter", plist, "one or more [[parameter]] tables")
    params = []
    fields = ("key", "values", "distribution", "low", "high", "mean", "sd", "unit")
    for i, t in enumerate(plist):
        for k in t:
            if k not in fields:
                raise ScenarioError(f"parameter[{i}].{k}", t[k], "one of the keys: " +
                                    ", ".join(fields), detail="unknown key")
        if "key" not in t:
            raise ScenarioError(f"parameter[{i}].key", None, "the swept key, e.g. "
                                "'dose[0].rate'")
        params.append(Parameter(**t))
    return Sweep(str(base_path), params, design, outputs, cluster=cluster, source=str(p),
                 **run).checked()
