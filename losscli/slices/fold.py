"""The slices' part of a reduction: a block's rows mapped to slices and each measure's per-row
values folded into per-slice arrays; states merged by key. Picklable (process executors)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from losscli.losses import Batch, row_multipliers
from losscli.slices.keys import Encoder
from losscli.slices.state import GroupState, block_arrays, fields_of, weight_scale
from losscli.sources import Chunk, RawChunk
from losscli.spec import LossSpec

#: Measure: per-row values and a per-row multiplier of the weight (None: 1)
Measure = tuple[np.ndarray, np.ndarray | None]


def sliceable(spec: LossSpec) -> bool:
    """Whether a loss has per-slice values: ``balanced`` class weights are measured over the
    whole input at the end of the pass, so a slice has no value of its own."""
    return spec.is_combination or not spec.terms[0].balanced


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

    def empty(self) -> list[GroupState]:
        return [GroupState(self.weighted) for _ in self.encoders]

    def fold(self, raw: RawChunk, chunk: Chunk, values: Sequence[Measure | None],
             extras: Sequence[Sequence[np.ndarray]] = ()) -> list[GroupState]:
        """The states of one block: ``values`` per measure (None: not computed here, zeros),
        ``extras`` more per-row values per measure whose sums are kept."""
        keep = None if chunk.rows is None else chunk.rows - raw.first_row
        w = chunk.weight
        scale = 0
        if w is not None:
            scale = weight_scale(w)
            w = np.ldexp(w, -scale)
        out = []
        for enc in self.encoders:
            g, keys = enc.encode(raw.batch, keep)
            rows = np.bincount(g, minlength=len(keys))
            if not rows.all():  # crossings: only the pairs present
                present = np.flatnonzero(rows)
                renumber = np.cumsum(rows > 0) - 1
                g = renumber[g]
                keys = [keys[int(i)] for i in present]
                rows = rows[present]
            data = []
            for i in range(self.measures):
                more = extras[i] if i < len(extras) else ()
                m = values[i]
                if m is None:
                    data.append(np.zeros((fields_of(self.weighted) + len(more), len(keys))))
                    continue
                v, a = m
                wi = w if a is None else (a if w is None else w * a)
                if wi is None and self.weighted:  # class multipliers elsewhere: unit weights
                    wi = np.ones(v.shape[0])
                data.append(block_arrays(g, len(keys), v, wi, more, rows))
            if w is not None and self.input_weighted:
                totals = np.zeros((fields_of(True), len(keys)))
                totals[0] = np.bincount(g, weights=w, minlength=len(keys))
                data.append(totals)
            state = GroupState(self.weighted, list(keys), rows.astype(np.int64), data, scale)
            out.append(state.limit(self.cap))
        return out

    def merge(self, earlier: list[GroupState], later: list[GroupState]) -> list[GroupState]:
        return [a.merge(b, self.cap) for a, b in zip(earlier, later, strict=True)]


def measures_of(specs: Sequence[LossSpec], batch: Batch,
                skip: Collection[int]) -> list[Measure | None]:
    """Each loss's per-row values (None for losses skipped or not sliceable)."""
    return [None if i in skip or not sliceable(s) else row_values(s, batch)
            for i, s in enumerate(specs)]
