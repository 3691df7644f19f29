"""The slices' part of a reduction: a block's rows mapped to slices and each measure's per-row
values folded into per-slice arrays; states merged by key. Picklable (process executors)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from losscli.losses import Batch, row_multipliers
from losscli.slices.keys import Encoder
from losscli.slices.state import (
    TAIL_BUCKETS,
    GroupState,
    block_arrays,
    block_tail,
    fields_of,
    segment_arrays,
    tail_keys,
    weight_scale,
)
from losscli.sources import Chunk, RawChunk
from losscli.spec import LossSpec

#: Measure: per-row values and a per-row multiplier of the weight (None: 1)
Measure = tuple[np.ndarray, np.ndarray | None]
#: The measures of a block's rows, or a function giving them for the rows in a given order
#: (None: the block's own)
Measures = Sequence["Measure | None"] | Callable[[np.ndarray | None], Sequence["Measure | None"]]
#: Blocks with fewer slices than this are folded sorted by slice (NumPy's stable argsort of
#: 8- and 16-bit codes is a radix sort): a gather per measure, then contiguous segment sums
#: (np.add.reduceat), instead of a scattered bincount per sum; beyond, by bincount.
SORT_MAX_SLICES = 1 << 16


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
    #: an interval reads the slices' skewness (johnson): their third moments are summed
    skew: bool = True

    def empty(self) -> list[GroupState]:
        return [GroupState(self.weighted) for _ in self.encoders]

    def fold(self, raw: RawChunk, chunk: Chunk, values: Measures,
             extras: Sequence[Sequence[np.ndarray]] = (),
             residual: np.ndarray | None = None) -> list[GroupState]:
        """The states of one block: ``values`` per measure (None: not computed here, zeros),
        or a function that gives them for the rows in an order; ``extras`` more per-row values
        per measure whose sums are kept; ``residual`` the rows' |e| when a tail histogram
        counts it."""
        keep = None if chunk.rows is None else chunk.rows - raw.first_row
        w = chunk.weight
        scale = 0
        if w is not None:
            scale = weight_scale(w)
            w = np.ldexp(w, -scale)
        shared = (tail_keys(residual, non_negative=True) if residual is not None
                  and residual.size and -1 in self.tail_inputs else None)
        out = []
        for enc in self.encoders:
            g, slice_keys = enc.encode(raw.batch, keep)
            groups = len(slice_keys)
            scaled_g = None
            shared_tail = None
            if shared is not None and groups * TAIL_BUCKETS <= max(4 * g.size, 1 << 16):
                # the rows of each slice from its |e| histogram: one bincount for both
                scaled_g = g * TAIL_BUCKETS
                shared_tail = block_tail(g, groups, shared, scaled_g)
                rows = shared_tail[1].sum(axis=0)
            else:
                rows = np.bincount(g, minlength=groups)
            if not rows.all():  # crossings: only the pairs present
                present = np.flatnonzero(rows)
                renumber = np.cumsum(rows > 0) - 1
                g = renumber[g]
                slice_keys = [slice_keys[int(i)] for i in present]
                rows = rows[present]
                groups = len(slice_keys)
                scaled_g = None
                if shared_tail is not None:
                    shared_tail = (shared_tail[0], shared_tail[1][:, present])
            if groups < SORT_MAX_SLICES:
                state = self._fold_sorted(g, slice_keys, rows, values, extras, w)
            else:
                state = self._fold_scattered(g, slice_keys, rows, values, extras, w)
            state.scale = scale
            tails: list[np.ndarray] = []
            tops: list[int | None] = []
            for h, src in enumerate(self.tail_inputs):
                if src < 0 and shared_tail is not None:
                    top, counts = shared_tail
                elif src < 0 and shared is not None:
                    top, counts = block_tail(g, groups, shared, scaled_g)
                elif src >= 0 and state.tails[h] is not None:
                    top, counts = state.tops[h], state.tails[h]  # type: ignore[assignment]
                else:
                    tails.append(np.zeros((TAIL_BUCKETS, groups), dtype=np.int64))
                    tops.append(None)
                    continue
                tails.append(counts)
                tops.append(top)
            state.tails, state.tops = tails, tops
            out.append(state.limit(self.cap))
        return out

    def _weights(self, w: np.ndarray | None, a: np.ndarray | None,
                 n: int) -> np.ndarray | None:
        wi = w if a is None else (a if w is None else w * a)
        if wi is None and self.weighted:  # class multipliers elsewhere: unit weights
            wi = np.ones(n)
        return wi

    def _fold_sorted(self, g: np.ndarray, slice_keys: list[Any], rows: np.ndarray,
                     values: Measures, extras: Sequence[Sequence[np.ndarray]],
                     w: np.ndarray | None) -> GroupState:
        """A block's state with its rows sorted by slice: segment sums."""
        groups = len(slice_keys)
        codes = g.astype(np.uint8 if groups <= 256 else np.uint16)
        perm = np.argsort(codes, kind="stable")
        starts = np.zeros(groups, dtype=np.intp)
        np.cumsum(rows[:-1], out=starts[1:])
        measures = values(perm) if callable(values) else [
            None if m is None else (m[0][perm], None if m[1] is None else m[1][perm])
            for m in values]
        ws = None if w is None else w[perm]
        data = []
        done: dict[int, int] = {}  # a measure given twice (mse and rmse): summed once
        for i in range(self.measures):
            more = [e[perm] for e in extras[i]] if i < len(extras) else []
            m = measures[i]
            if m is None:
                data.append(np.zeros((fields_of(self.weighted) + len(more), groups)))
                continue
            if not more and id(m) in done:
                data.append(data[done[id(m)]].copy())
                continue
            if not more:
                done[id(m)] = i
            v, a = m
            data.append(segment_arrays(starts, rows, v, self._weights(ws, a, v.shape[0]),
                                       more, self.skew))
        if ws is not None and self.input_weighted:
            data.append(_totals(np.add.reduceat(ws, starts)))
        tails, tops = self._own_tails(measures, groups,
                                      lambda: np.repeat(np.arange(groups), rows))
        return GroupState(self.weighted, list(slice_keys), rows.astype(np.int64), data,
                          tails=tails, tops=tops)

    def _fold_scattered(self, g: np.ndarray, slice_keys: list[Any], rows: np.ndarray,
                        values: Measures, extras: Sequence[Sequence[np.ndarray]],
                        w: np.ndarray | None) -> GroupState:
        """A block's state of very many slices: a bincount per sum."""
        groups = len(slice_keys)
        measures = values(None) if callable(values) else values
        data = []
        for i in range(self.measures):
            more = extras[i] if i < len(extras) else ()
            m = measures[i]
            if m is None:
                data.append(np.zeros((fields_of(self.weighted) + len(more), groups)))
                continue
            v, a = m
            data.append(block_arrays(g, groups, v, self._weights(w, a, v.shape[0]), more,
                                     rows))
        if w is not None and self.input_weighted:
            data.append(_totals(np.bincount(g, weights=w, minlength=groups)))
        tails, tops = self._own_tails(measures, groups, lambda: g)
        return GroupState(self.weighted, list(slice_keys), rows.astype(np.int64), data,
                          tails=tails, tops=tops)

    def _own_tails(self, measures: Sequence[Measure | None], groups: int,
                   group_of: Callable[[], np.ndarray]) -> tuple[list[Any], list[int | None]]:
        """The histograms of the measures' own |values| (the tail inputs >= 0; None for the
        residual's, counted by the caller, and for measures not computed), ``group_of()``
        giving each row's group in the measures' order (asked once, when needed)."""
        g = None
        tails: list[Any] = []
        tops: list[int | None] = []
        for src in self.tail_inputs:
            m = measures[src] if src >= 0 else None
            if m is None or m[0].size == 0:
                tails.append(None)
                tops.append(None)
                continue
            if g is None:
                g = group_of()
            top, counts = block_tail(g, groups, tail_keys(m[0]))
            tails.append(counts)
            tops.append(top)
        return tails, tops

    def merge(self, earlier: list[GroupState], later: list[GroupState]) -> list[GroupState]:
        return [a.merge(b, self.cap) for a, b in zip(earlier, later, strict=True)]


def _totals(weight_sums: np.ndarray) -> np.ndarray:
    """The input weights' measure: their per-slice sums in the weighted layout's first row
    (the slices' weight shares)."""
    totals = np.zeros((fields_of(True), weight_sums.shape[0]))
    totals[0] = weight_sums
    return totals


def of_residual(spec: LossSpec) -> bool:
    """Whether a loss's per-row values follow from the residual e alone (state.row_losses'
    shortcuts: e^2, |e|, Huber-shaped), with no class multipliers."""
    from losscli.state import _normalised_weights

    loss = spec.single
    return (loss is not None and _normalised_weights(spec) is None
            and (loss.value_form in ("square", "abs")
                 or (loss.grad_form == "clipped" and loss.clip_of is not None)))


def permuted(batch: Batch, perm: np.ndarray, residual_only: bool = False) -> Batch:
    """The batch's rows in the order ``perm``; ``residual_only``: only its residual, for
    losses that read nothing else (:func:`of_residual`), which read it only through e^2 and
    |e|: the batch then holds |e| as its residual (one gather, no sign)."""
    if residual_only:
        a = batch.abs_residual().take(perm)
        return Batch(a, a, None, _cache={"e": a, "abs_e": a})
    e = batch.residual().take(perm) if "e" in batch._cache else None

    def take(x: np.ndarray | None) -> np.ndarray | None:
        return None if x is None else x[..., perm]

    out = Batch(batch.pred[..., perm], batch.target[perm], take(batch.weight), batch.logits,
                var=take(batch.var), soft=take(batch.soft), labels=take(batch.labels))
    if e is not None:
        out._cache["e"] = e
    return out


def sorted_measures(specs: Sequence[LossSpec], batch: Batch,
                    skip: Collection[int]) -> Callable[[np.ndarray | None],
                                                       list[Measure | None]]:
    """Each loss's per-row values (None for losses skipped or not sliceable) for the rows in a
    given order (None: the batch's), computed on the reordered rows: losses of the residual
    from the reordered e alone."""
    residual_only = all(of_residual(s) for i, s in enumerate(specs)
                        if i not in skip and sliceable(s))

    def make(perm: np.ndarray | None) -> list[Measure | None]:
        b = batch if perm is None else permuted(batch, perm, residual_only)
        out: list[Measure | None] = []
        same: dict[tuple[object, ...], Measure] = {}  # mse and rmse: one array, one object
        for i, spec in enumerate(specs):
            if i in skip or not sliceable(spec):
                out.append(None)
                continue
            key = residual_key(spec)
            if key is None or key not in same:
                m = row_values(spec, b)
                if key is not None:
                    same[key] = m
            out.append(m if key is None else same[key])
        return out
    return make


def residual_key(spec: LossSpec) -> tuple[object, ...] | None:
    """What a loss of the residual computes per row (losses with equal keys have equal
    per-row values: mse and rmse); None for the others."""
    if not of_residual(spec):
        return None
    loss = spec.single
    assert loss is not None
    if loss.value_form is not None:
        return (loss.value_form,)
    assert loss.clip_of is not None
    return ("clipped", *loss.clip_of(spec.terms[0].params))
