"""losscli: loss values and gradient statistics over model predictions stored in files.

``from losscli import evaluate`` gives the same :class:`~losscli.engine.Report` the CLI prints.
Heavy modules (NumPy, pyarrow) load on first use, so ``losscli --help`` starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from losscli._version import __version__

if TYPE_CHECKING:
    from losscli.engine import Report, evaluate

__all__ = ["Report", "__version__", "evaluate"]


def __getattr__(name: str) -> Any:
    if name in ("evaluate", "Report"):
        from losscli import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'losscli' has no attribute {name!r}")
