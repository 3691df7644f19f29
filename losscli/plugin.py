"""Custom losses from Python: the ``@loss`` decorator for plugin authors.

A plugin is a Python file or module whose functions are decorated with :func:`loss`::

    import numpy as np
    from losscli.plugin import loss

    @loss(name="asym", task="regression", params={"under": 3.0})
    def asym(pred, target, under):
        e = pred - target
        return np.where(e < 0, under * e * e, e * e), np.where(e < 0, 2 * under * e, 2 * e)

The function takes NumPy arrays (``pred`` is (n,), or (C, n) for multiclass; ``target`` is
(n,)) and the parameters as keyword arguments, and returns the per-row values l_i and the
per-row gradients d l_i / d pred_i ((n,), or (C, n) for multiclass, whose row L2 norm is the
statistic). From then on it is a loss like the built-in ones: specs (``asym:under=5``), weights,
chunking, threads, gates and every output format. Plugins are loaded by ``--plugin FILE_OR_MODULE``,
``[tool.losscli] plugins = [...]`` and the ``losscli.losses`` entry-point group of installed
packages (loaded the first time a spec names a loss that is not otherwise known); the
registry behind them is :mod:`losscli.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from losscli.losses import Task
from losscli.registry import declare

F = TypeVar("F", bound=Callable[..., Any])


def loss(name: str, task: Task, params: Mapping[str, float] | None = None, *,
         summary: str = "", formula: str = "", gradient: str = "") -> Callable[[F], F]:
    """Register the decorated function as the loss ``name`` of ``task`` ("regression",
    "binary" or "multiclass"), with its parameters and their defaults."""
    declared = declare(name, task, params)

    def decorate(fn: F) -> F:
        declared.register(fn, summary=summary, formula=formula, gradient=gradient)
        return fn

    return decorate


__all__ = ["loss"]
