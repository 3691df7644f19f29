"""losscli: loss values and gradient statistics over model predictions stored in files.

The library API, as the CLI's commands: :func:`evaluate`, :func:`compare` and :func:`recommend`
take a path, a pandas DataFrame, a pyarrow Table or RecordBatchReader, or a mapping of arrays,
and return the result whose ``to_dict()`` is the CLI's JSON. Errors derive from
:class:`LossCliError`; each class carries the CLI's ``exit_code``.

Everything heavy (NumPy, pandas, pyarrow, the engine) loads on first use, so ``import losscli``
and ``losscli --help`` stay fast.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from losscli._version import __version__
from losscli.errors import (
    ConfigError,
    DuplicateColumnError,
    InputError,
    LossCliError,
    PluginError,
    UsageError,
)

if TYPE_CHECKING:
    from losscli import gates
    from losscli.api import compare, evaluate, recommend
    from losscli.compare import Comparison
    from losscli.engine import Report
    from losscli.recommend import Recommendation

#: Public names loaded on first use: name -> the module that defines it.
_LAZY = {
    "evaluate": "losscli.api",
    "compare": "losscli.api",
    "recommend": "losscli.api",
    "Report": "losscli.engine",
    "Comparison": "losscli.compare",
    "Recommendation": "losscli.recommend",
}
#: Submodules reachable as attributes without an import of their own.
_MODULES = ("gates",)

__all__ = [
    "Comparison",
    "ConfigError",
    "DuplicateColumnError",
    "InputError",
    "LossCliError",
    "PluginError",
    "Recommendation",
    "Report",
    "UsageError",
    "__version__",
    "compare",
    "evaluate",
    "gates",
    "recommend",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module 'losscli' has no attribute {name!r}")
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """The package module. Importing the submodules ``losscli.compare`` and
    ``losscli.recommend`` would bind them as package attributes over the functions of those
    names; the functions stay (the modules are in sys.modules, and ``from losscli.compare
    import ...`` reads them there)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
