"""The slices' part of a reduction: a block's rows mapped to slices and each measure's per-row
values folded into per-slice arrays; states merged by key. Picklable (process executors)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from losscli.losses import Batch, row_multipliers
from losscli.slices.keys import Encoder
from losscli.slices.state import (
    TAIL_BUCKETS,
    GroupState,
    block_arrays,
    block_tail,
    fields_of,
    tail_keys,
    weight_scale,
)
from losscli.sources import Chunk, RawChunk
from losscli.spec import LossSpec

#: Measure: per-row values and a per-row multiplier of the weight (None: 1)
Measure = tuple[np.ndarray, np.ndarray | None]


def sliceable(spec: LossSpec) -> bool:
    """Whether a loss has per-slice values: ``balanced`` class weights are measured over the
    whole input at the end of the pass, so a slice has no value of its own."""
    return spec.is_combination or not spec.terms[0].balanced


def residual_tail(spec: LossSpec) -> bool:
    """Whether a loss's tail is read from the residual's, as the overall tail index is: a loss
    of |e| whose gradient grows as a known function of it (mse, mae, huber, ...)."""
    return spec.single is not None and spec.single.abs_grad_of_abs_residual is not None


def tail_sources(specs: Sequence[LossSpec], paired: bool = False) -> tuple[list[int], list[int]]:
    """(the tail histogram of each measure, the source of each histogram: -1 the residual |e|,
    else the measure whose |values| it counts). eval's losses of the residual share one
    histogram of |e|; other losses, and compare's per-row differences, have their own."""
    of: list[int] = []
    inputs: list[int] = []
    for i, spec in enumerate(specs):
        if not paired and residual_tail(spec):
            if -1 not in inputs:
                inputs.append(-1)
            of.append(inputs.index(-1))
        else:
            inputs.append(i)
            of.append(len(inputs) - 1)
    return of, inputs


def row_values(spec: LossSpec, batch: Batch) -> Measure:
    """A loss's per-row values l and weight multipliers a, its value being sum(w l) / sum(w a)
    (a is the class weight of losses reduced by their class-weighted total, else 1)."""
    from losscli.state import _normalised_weights, row_losses

    values = row_losses(spec, batch)
    mult = _normalised_weights(spec)
    if mult is None:
        return values, None
    a = row_multipliers(mult, batch.target)
    return np.divide(values, a, out=np.zeros_like(values), where=a > 0), a


@dataclass
class Slicer:
    """Folds a block into the states of every grouping (one per ``--by``)."""

    encoders: list[Encoder]
    #: the number of measures (losses) per slice
    measures: int
    weighted: bool
    #: the input has a weight column: its per-slice sums follow the measures (weight shares)
    input_weighted: bool
    #: slices a state holds at most (beside (other))
    cap: int
    #: the tail histogram of each measure and each histogram's source (:func:`tail_sources`)
    tail_of: list[int] = field(default_factory=list)
    tail_inputs: list[int] = field(default_factory=list)

    def empty(self) -> list[GroupState]:
        return [GroupState(self.weighted) for _ in self.encoders]

    def fold(self, raw: RawChunk, chunk: Chunk, values: Sequence[Measure | None],
             extras: Sequence[Sequence[np.ndarray]] = (),
             residual: np.ndarray | None = None) -> list[GroupState]:
        """The states of one block: ``values`` per measure (None: not computed here, zeros),
        ``extras`` more per-row values per measure whose sums are kept, ``residual`` the rows'
        e (or |e|) when a tail histogram counts it."""
        keep = None if chunk.rows is None else chunk.rows - raw.first_row
        w = chunk.weight
        scale = 0
        if w is not None:
            scale = weight_scale(w)
            w = np.ldexp(w, -scale)
        sources = [residual if src < 0 else (None if values[src] is None
                                             else values[src][0])  # type: ignore[index]
                   for src in self.tail_inputs]
        buckets = [None if v is None or v.size == 0 else tail_keys(v) for v in sources]
        out = []
        for enc in self.encoders:
            g, slice_keys = enc.encode(raw.batch, keep)
            rows = np.bincount(g, minlength=len(slice_keys))
            if not rows.all():  # crossings: only the pairs present
                present = np.flatnonzero(rows)
                renumber = np.cumsum(rows > 0) - 1
                g = renumber[g]
                slice_keys = [slice_keys[int(i)] for i in present]
                rows = rows[present]
            data = []
            for i in range(self.measures):
                more = extras[i] if i < len(extras) else ()
                m = values[i]
                if m is None:
                    data.append(np.zeros((fields_of(self.weighted) + len(more),
                                          len(slice_keys))))
                    continue
                v, a = m
                wi = w if a is None else (a if w is None else w * a)
                if wi is None and self.weighted:  # class multipliers elsewhere: unit weights
                    wi = np.ones(v.shape[0])
                data.append(block_arrays(g, len(slice_keys), v, wi, more, rows))
            if w is not None and self.input_weighted:
                totals = np.zeros((fields_of(True), len(slice_keys)))
                totals[0] = np.bincount(g, weights=w, minlength=len(slice_keys))
                data.append(totals)
            tails: list[np.ndarray] = []
            tops: list[int | None] = []
            for k in buckets:
                if k is None:
                    tails.append(np.zeros((TAIL_BUCKETS, len(slice_keys)), dtype=np.int64))
                    tops.append(None)
                else:
                    top, counts = block_tail(g, len(slice_keys), k)
                    tails.append(counts)
                    tops.append(top)
            state = GroupState(self.weighted, list(slice_keys), rows.astype(np.int64), data,
                               scale, tails=tails, tops=tops)
            out.append(state.limit(self.cap))
        return out

    def merge(self, earlier: list[GroupState], later: list[GroupState]) -> list[GroupState]:
        return [a.merge(b, self.cap) for a, b in zip(earlier, later, strict=True)]


def measures_of(specs: Sequence[LossSpec], batch: Batch,
                skip: Collection[int]) -> list[Measure | None]:
    """Each loss's per-row values (None for losses skipped or not sliceable)."""
    return [None if i in skip or not sliceable(s) else row_values(s, batch)
            for i, s in enumerate(specs)]
