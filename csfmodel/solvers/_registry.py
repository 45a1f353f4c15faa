"""The registry: the only way anything reaches a backend.

Backends are registered by name with the place of their class,
``"package.module:ClassName"``, and imported the first time they are asked for
(``import csfmodel`` imports neither numba nor jax). A plug-in registers the
same way as the built-in backends, or with the class itself::

    from csfmodel.solvers import Backend, register

    class MyBackend(Backend):
        name = "mine"
        ...

    register("mine", MyBackend)              # or register("mine", "mypkg.mod:MyBackend")
"""

from __future__ import annotations

import importlib
from typing import Any

from csfmodel.errors import ScenarioError

__all__ = ["BACKENDS", "register", "get_backend", "available_backends"]

#: name -> (``"module:Class"`` or a Backend subclass, one-line description)
BACKENDS: dict[str, tuple[Any, str]] = {}

#: instances with default settings, made once per name
_DEFAULT: dict[str, Any] = {}


def register(name: str, backend: Any, description: str | None = None) -> None:
    """Register a backend: ``"module:Class"`` (imported on first use) or the class.

    ``description`` defaults to the class's ``description`` (a class given
    directly) and is what ``csfmodel presets solvers`` lists.
    """
    if isinstance(backend, str):
        if ":" not in backend:
            raise ValueError(f"backend {backend!r}: expected 'module:Class'")
        desc = description or ""
    else:
        from csfmodel.solvers._backend import Backend

        if not (isinstance(backend, type) and issubclass(backend, Backend)):
            raise TypeError("a backend is a subclass of csfmodel.solvers.Backend")
        desc = description or backend.description
    BACKENDS[name] = (backend, desc)
    _DEFAULT.pop(name, None)


def _backend_class(name: str):
    if name not in BACKENDS:
        raise ScenarioError("simulation.solver", name, "one of: " + ", ".join(BACKENDS))
    target, _ = BACKENDS[name]
    if not isinstance(target, str):
        return target
    module, cls = target.split(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ScenarioError("simulation.solver", name,
                            "a backend whose dependencies are installed",
                            detail=f"import failed: {exc}") from None
    return getattr(mod, cls)


def get_backend(backend: Any = "numba", **settings: Any):
    """The backend ``backend`` (a name, or a :class:`Backend` instance passed through).

    ``settings`` are the backend's own settings (e.g. ``block_size`` for jax);
    without them the same default instance is returned every time.

    Raises
    ------
    ScenarioError
        An unknown name, or a setting the backend does not have.
    """
    from csfmodel.solvers._backend import Backend

    if isinstance(backend, Backend):
        if settings:
            raise ScenarioError("solver settings", settings,
                                "none when a backend instance is given")
        return backend
    name = str(backend)
    if not settings and name in _DEFAULT:
        return _DEFAULT[name]
    cls = _backend_class(name)
    for key in settings:
        if key not in cls.settings:
            from dataclasses import fields

            from csfmodel.solvers._options import SolverOptions

            opts = ", ".join(f.name for f in fields(SolverOptions))
            own = (f"; settings of the {name} backend: " + ", ".join(cls.settings)
                   if cls.settings else f" (the {name} backend has no settings)")
            raise ScenarioError(f"solver option {key!r}", settings[key],
                                f"a solver option ({opts}){own}")
    instance = cls(**settings)
    if not settings:
        _DEFAULT[name] = instance
    return instance


def available_backends() -> dict[str, str]:
    """Backend names and their descriptions."""
    return {k: v[1] for k, v in BACKENDS.items()}
