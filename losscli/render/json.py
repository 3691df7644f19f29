"""The versioned JSON document of a Report."""

from __future__ import annotations

import json
from typing import Any


def dumps(doc: dict[str, Any]) -> str:
    """Deterministic JSON text (keys in insertion order, NaN already replaced by null)."""
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def document(result: Any) -> str:
    """The result's versioned JSON document (what ``--format json`` prints)."""
    return dumps(result.to_dict())
