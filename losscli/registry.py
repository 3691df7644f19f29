"""The one registry of losses: the built-in catalog, plugins and entry points, and pickling
by name.

The catalog (:mod:`losscli.losses`) is fixed; plugins add to :data:`PLUGINS` through the
``@loss`` decorator of :mod:`losscli.plugin` while :func:`load_plugins` imports them (a .py
file or a module), or from the ``losscli.losses`` entry-point group of installed packages
(:func:`load_entry_points`). :func:`lookup` finds a loss by name or alias; a built-in loss
pickles by name (:mod:`losscli.losses`), a plugin's by name and origin (:class:`PluginLoss`), so
states cross processes. Nothing here is imported by the catalog: the arrows point one way.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from losscli.errors import LossCliError, PluginError
from losscli.losses import (
    ALIASES,
    CATALOG,
    TASKS,
    Batch,
    Computed,
    LossDef,
    Param,
    Params,
    Task,
)

#: Custom losses registered by plugins (``@losscli.plugin.loss``), by name.
PLUGINS: dict[str, LossDef] = {}

#: The entry-point group of installed packages' losses.
ENTRY_POINT_GROUP = "losscli.losses"
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

#: The plugin being imported (its origin, for messages and pickling), while the loader runs.
_loading: str | None = None
#: Origins already imported, and whether the entry points were.
_loaded: set[str] = set()
_entry_points_loaded = False
#: Whether a name that no loaded loss has loads the installed entry points (the CLI and the
#: library's top-level functions ask for it; parse_spec alone never runs them).
_entry_points_on_demand = False


def _finite(v: float) -> bool:
    return math.isfinite(v)


class PluginLoss(LossDef):
    """A loss registered by a plugin: pickled as (name, origin), and imported from its origin
    where it is unpickled when that process has not loaded it yet."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return loss_by_name, (self.name, self.origin)


def _register(d: LossDef) -> None:
    if d.name in CATALOG or d.name in ALIASES:
        raise PluginError(f"plugin {d.origin}: loss '{d.name}' clashes with the built-in loss "
                          f"of that name; choose another name")
    other = PLUGINS.get(d.name)
    if other is not None and other.origin != d.origin:
        raise PluginError(f"plugin {d.origin}: loss '{d.name}' is also defined by plugin "
                          f"{other.origin}")
    PLUGINS[d.name] = d


@dataclass(frozen=True)
class Declaration:
    """A plugin loss's name, task and parameters, checked; :meth:`register` adds its function
    (what ``@losscli.plugin.loss`` does)."""

    name: str
    task: Task
    params: tuple[Param, ...]
    #: the plugin being imported when it was declared, or None (a module imported directly)
    origin: str | None

    def register(self, fn: Callable[..., Any], summary: str = "", formula: str = "",
                 gradient: str = "") -> None:
        where: str = self.origin or str(getattr(fn, "__module__", "?"))
        _register(PluginLoss(
            name=self.name, task=self.task,
            summary=summary or (fn.__doc__ or "").strip().split("\n")[0]
            or f"plugin loss from {where}",
            formula=formula or "(plugin)", gradient=gradient or "(plugin)",
            compute=_Compute(fn, self.name, where, tuple(p.name for p in self.params)),
            params=self.params, origin=where))


def declare(name: str, task: Task, params: Mapping[str, float] | None = None) -> Declaration:
    """Check a plugin loss's name, task and parameter defaults; raises PluginError naming the
    plugin being imported."""
    origin = _loading
    if not isinstance(name, str) or not _NAME.match(name):
        raise PluginError(f"plugin {origin or '?'}: loss name {name!r} must be lower-case "
                          "letters, digits and '_' (a spec such as name:param=1 names it)")
    if task not in TASKS:
        raise PluginError(f"plugin {origin or '?'}: loss '{name}' has task {task!r}; expected "
                          f"one of {', '.join(TASKS)}")
    declared: list[Param] = []
    for key, default in (params or {}).items():
        if not (isinstance(key, str) and _NAME.match(key)) or isinstance(default, bool) or \
                not isinstance(default, (int, float)) or not math.isfinite(default):
            raise PluginError(f"plugin {origin or '?'}: loss '{name}' parameter {key!r} needs a "
                              f"finite number as its default, got {default!r}")
        declared.append(Param(key, float(default), "plugin parameter", _finite, "finite"))
    return Declaration(name, task, tuple(declared), origin)


class _Compute:
    """Calls a plugin function on a batch and checks what it returns: shapes, finiteness."""

    def __init__(self, fn: Callable[..., Any], name: str, origin: str,
                 params: tuple[str, ...]) -> None:
        self.fn, self.name, self.origin, self.params = fn, name, origin, params

    def _fail(self, what: str) -> PluginError:
        return PluginError(f"plugin loss '{self.name}' ({self.origin}) {what}")

    def __call__(self, b: Batch, p: Params) -> Computed:
        pred, target = b.pred.view(), b.target.view()
        pred.flags.writeable = False  # the batch's arrays are shared with the other losses
        target.flags.writeable = False
        kwargs = {k: float(p[k]) for k in self.params}  # type: ignore[arg-type]
        try:
            out = self.fn(pred, target, **kwargs)
        except LossCliError:
            raise
        except Exception as exc:
            raise self._fail(f"raised {type(exc).__name__}: {exc}") from None
        if not (isinstance(out, tuple) and len(out) == 2):
            raise self._fail(f"must return (values, gradients), got {type(out).__name__}")
        n = b.n
        try:
            values = np.asarray(out[0], dtype=np.float64)
            grads = np.asarray(out[1], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise self._fail(f"must return arrays of numbers ({exc})") from None
        grad_shapes = [(n,)] + ([tuple(b.pred.shape)] if b.pred.ndim == 2 else [])
        if values.shape != (n,) or grads.shape not in grad_shapes:
            expected = " or ".join(str(s) for s in grad_shapes)
            raise self._fail(f"must return values of shape ({n},) and gradients of shape "
                             f"{expected} for {n} rows, got {values.shape} and {grads.shape}")
        bad = int(np.count_nonzero(~np.isfinite(values)))
        bad_g = int(np.count_nonzero(~np.isfinite(grads)))
        if bad or bad_g:
            raise self._fail(f"returned non-finite {'values' if bad else 'gradients'} for "
                             f"finite input ({bad or bad_g} of {n} rows in a chunk)")
        if grads.ndim == 2:  # multiclass: the row statistic is the L2 norm of the gradient row
            grads = np.sqrt(np.einsum("ij,ij->j", grads, grads))
        return Computed(values, grads)


def _origin_of(ref: str, base: Path | None) -> tuple[str, Path | None]:
    """(origin, file) of a plugin reference: a .py file (relative to ``base``) or a module."""
    looks_like_file = ref.endswith(".py") or "/" in ref or "\\" in ref
    if looks_like_file:
        path = Path(ref).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        return str(path.resolve()), path
    return ref, None


def load_plugins(refs: Sequence[str], base: Path | None = None) -> list[LossDef]:
    """Import each plugin (a .py file, relative to ``base`` when given, or a module name) and
    return the losses it registered; each origin is imported once per process."""
    global _loading
    found: list[LossDef] = []
    for ref in refs:
        origin, path = _origin_of(ref, base)
        if origin in _loaded:
            found.extend(d for d in PLUGINS.values() if d.origin == origin)
            continue
        before = set(PLUGINS)
        _loading = origin
        try:
            if path is not None:
                if not path.is_file():
                    raise PluginError(f"plugin {ref}: no such file")
                digest = hashlib.sha1(origin.encode()).hexdigest()[:12]
                spec = importlib.util.spec_from_file_location(
                    f"losscli_plugin_{path.stem}_{digest}", path)
                if spec is None or spec.loader is None:
                    raise PluginError(f"plugin {ref}: cannot be imported as a Python file")
                module = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = module
                spec.loader.exec_module(module)
            else:
                importlib.import_module(ref)
        except LossCliError:
            raise
        except Exception as exc:
            raise PluginError(f"plugin {ref}: cannot import it: {type(exc).__name__}: "
                              f"{exc}") from None
        finally:
            _loading = None
        _loaded.add(origin)
        new = [d for d in PLUGINS.values() if d.name not in before or d.origin == origin]
        if not new:
            raise PluginError(f"plugin {ref} defines no loss (decorate a function with "
                              "@losscli.plugin.loss)")
        found.extend(new)
    return found


def load_entry_points() -> bool:
    """Load the ``losscli.losses`` entry points of installed packages (once); True when that
    happened now (so a lookup may try again)."""
    global _entry_points_loaded, _loading
    if _entry_points_loaded:
        return False
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        module = ep.value.split(":")[0].strip()
        if module in _loaded:
            continue
        _loading = module
        try:
            ep.load()
        except LossCliError:
            raise
        except Exception as exc:
            raise PluginError(f"plugin {ep.name} (entry point {ep.value} of group "
                              f"{ENTRY_POINT_GROUP}): cannot import it: {type(exc).__name__}: "
                              f"{exc}") from None
        finally:
            _loading = None
        _loaded.add(module)
    return True


def entry_points_on_demand(on: bool = True) -> None:
    """Let a lookup of an unknown name load the installed entry points (once)."""
    global _entry_points_on_demand
    _entry_points_on_demand = on


def reset_entry_points() -> None:
    """Forget that the entry points were loaded and that they may be (tests call this)."""
    global _entry_points_loaded, _entry_points_on_demand
    _entry_points_loaded = _entry_points_on_demand = False
#: Whether a name that no loaded loss has loads the installed entry points (the CLI and the
#: library's top-level functions ask for it; parse_spec alone never runs them).
_entry_points_on_demand = False


def lookup(name: str) -> LossDef | None:
    """The catalog entry (or plugin loss) for a name or alias, or None. When asked for
    (:func:`entry_points_on_demand`), a name that is neither loads the installed entry points
    once, then looks again."""
    key = name.strip().lower().replace("-", "_")
    found = CATALOG.get(ALIASES.get(key, key)) or PLUGINS.get(key)
    if found is None and _entry_points_on_demand and load_entry_points():
        found = PLUGINS.get(key)
    return found


def known_names() -> list[str]:
    """Every loss name that a spec may use: the catalog's, then the plugins'."""
    return [*CATALOG, *PLUGINS]


def loss_by_name(name: str, origin: str | None = None) -> LossDef:
    """The loss of a pickled plugin loss: loaded from its origin when missing."""
    found = lookup(name)
    if found is None and origin is not None:
        load_plugins([origin])
        found = lookup(name)
    if found is None:
        raise PluginError(f"unknown loss '{name}'" + (f" (plugin {origin})" if origin else ""))
    return found


__all__ = ["ENTRY_POINT_GROUP", "PLUGINS", "Declaration", "PluginLoss", "declare",
           "entry_points_on_demand", "known_names", "load_entry_points", "load_plugins",
           "lookup", "loss_by_name", "reset_entry_points"]
