"""One way a run happens: a read plan yields keyed blocks, a reduction folds each block into a
fresh state, the states merge in a tree whose shape is fixed by the data, an executor decides
where the folds run (this thread, a thread pool, a process pool, a cluster).

- :mod:`losscli.run.plan`: what to read, cut into blocks whose boundaries depend on the row
  index only (so ``--chunk-rows`` is an I/O batch size and never changes a result);
- :mod:`losscli.run.tree`: the fixed merge tree;
- :mod:`losscli.run.local`: the serial, thread and process-pool executors.
"""

from losscli.run.local import (
    Executor,
    ProcessExecutor,
    SerialExecutor,
    ThreadExecutor,
    resolve_executor,
    run,
)
from losscli.run.plan import BLOCK_VALUES, Key, PairedPlan, Plan, ReadPlan, Unit
from losscli.run.reduction import Reduction
from losscli.run.tree import TreeMerge

__all__ = ["BLOCK_VALUES", "Executor", "Key", "PairedPlan", "Plan", "ProcessExecutor",
           "ReadPlan", "Reduction", "SerialExecutor", "ThreadExecutor", "TreeMerge", "Unit",
           "resolve_executor", "run"]
