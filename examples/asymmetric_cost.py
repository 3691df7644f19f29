"""An asymmetric cost: under-predicting costs ``under`` times as much as over-predicting.

    losscli eval preds.csv --plugin examples/asymmetric_cost.py --loss asym:under=5
    losscli losses --plugin examples/asymmetric_cost.py --check asym

l = under e^2 if e < 0 else over e^2, e = pred - target (stock-outs cost more than surplus).
"""

import numpy as np

from losscli.plugin import loss


@loss(name="asym", task="regression", params={"under": 3.0, "over": 1.0},
      formula="l = under e^2 if e < 0 else over e^2", gradient="g = 2 under e or 2 over e")
def asym(pred: np.ndarray, target: np.ndarray, under: float,
         over: float) -> tuple[np.ndarray, np.ndarray]:
    """Squared error, weighted by the sign of the residual."""
    e = pred - target
    c = np.where(e < 0, under, over)
    return c * e * e, 2.0 * c * e
