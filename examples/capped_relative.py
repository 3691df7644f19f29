"""A task-specific penalty: squared relative error, smoothly capped so that a few wild rows
cannot dominate (a forecast 10x off costs about ``cap``, not 100).

    losscli eval sales.parquet --plugin examples/capped_relative.py --loss capped_rel:cap=4
    losscli losses --plugin examples/capped_relative.py --check capped_rel --data sales.parquet

r = (pred - target) / max(|target|, floor);  l = cap (1 - exp(-r^2 / cap)), about r^2 for small
r and at most cap; g = 2 r exp(-r^2 / cap) / max(|target|, floor).
"""

import numpy as np

from losscli.plugin import loss


@loss(name="capped_rel", task="regression", params={"cap": 1.0, "floor": 1.0},
      formula="l = cap (1 - exp(-r^2 / cap)), r = e / max(|target|, floor)",
      gradient="g = 2 r exp(-r^2 / cap) / max(|target|, floor)")
def capped_rel(pred: np.ndarray, target: np.ndarray, cap: float,
               floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Squared relative error, capped smoothly at ``cap``."""
    scale = np.maximum(np.abs(target), floor)
    r = (pred - target) / scale
    damp = np.exp(-r * r / cap)
    return cap * (1.0 - damp), 2.0 * r * damp / scale
