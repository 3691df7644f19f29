"""Per-slice mergeable states: for every slice key and measure (a loss's per-row values), the
sums and moments that its value, standard error, interval and test need, as arrays over the
slices so that a block folds with a few ``bincount`` passes and two states merge in a few
vectorised operations.

Layout of a measure's array (rows x slices). Unweighted: n, sum l, mean, M2, M3 (Chan / Pebay
merge). Weighted, under the block's weights w' = w 2^-scale: sum w', sum w' l, and the moments
of l under v = w'^2 (sum v, mean, M2) and under w'^3 (sum, mean, M2, M3), as
:class:`losscli.state.RowMoments` keeps them. Then ``extra`` additive sums (compare's baseline
sums).

Beside the moments, a slice keeps a histogram of the magnitudes behind each tail estimate (the
residual |e| shared by the losses of the residual, or a measure's |l|): TAIL_BUCKETS buckets of a
quarter octave, the highest at the largest value of the grouping's rows (of the state), the lowest
holding everything below the window; bucket counts are integers, so merges are exact.

Memory is bounded: a state holds at most ``cap`` slices. Past it, the slices whose key hashes
highest merge into ``(other)`` and every later key hashing at or above that threshold goes there
too (the threshold only falls), so a key is either exact for all of its rows or in ``(other)``
for all of them, and the kept keys do not depend on the order in which blocks arrive.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from losscli.slices.keys import Key

#: rows of a measure's array
UNWEIGHTED_FIELDS = ("n", "sum", "mean", "m2", "m3")
WEIGHTED_FIELDS = ("w", "sum", "v2", "mean2", "m2_2", "v3", "mean3", "m2_3", "m3_3", "v4")
#: (count, mean, M2, M3 or None) rows of each moment group
_UNWEIGHTED_MOMENTS = ((0, 2, 3, 4),)
_WEIGHTED_MOMENTS = ((2, 3, 4, None), (5, 6, 7, 8))
#: rows multiplied by f, f^2, f^3 when a weighted state is rescaled by f = 2^-k
_SCALE_POWERS = (1, 1, 2, 0, 2, 3, 0, 3, 3, 4)


#: mantissa bits of a tail bucket's key: 2^2 = 4 buckets per octave
TAIL_BITS = 2
#: tail buckets per slice: 32 octaves below the largest value, the lowest bucket holding the rest
TAIL_BUCKETS = 128
#: ln of the ratio of a tail bucket's ends
TAIL_WIDTH = math.log(2.0) / (1 << TAIL_BITS)
_TAIL_SHIFT = 52 - TAIL_BITS


def tail_keys(values: np.ndarray, non_negative: bool = False) -> np.ndarray:
    """The tail bucket key of |v| for each value: its exponent and first mantissa bits, the
    top 14 bits of the float after the sign (``non_negative``: no sign bit to clear). Read
    as the top 16 bits of each float where the machine is little-endian (a quarter of the
    memory of shifting all 64)."""
    v = np.ascontiguousarray(values, dtype=np.float64)
    if sys.byteorder == "little":
        top = v.view(np.uint16)[3::4]
        if not non_negative:
            top = top & np.uint16(0x7FFF)
        return np.right_shift(top, np.uint16(4 - TAIL_BITS))
    bits = v.view(np.int64)
    if non_negative:
        return np.right_shift(bits, _TAIL_SHIFT)
    return np.right_shift(bits & np.int64(0x7FFF_FFFF_FFFF_FFFF), _TAIL_SHIFT)


def tail_value(key: int) -> float:
    """The middle of a tail bucket."""
    lo, hi = (np.array([key, key + 1], dtype=np.int64) << _TAIL_SHIFT).view(np.float64)
    return float(lo + 0.5 * (hi - lo)) if math.isfinite(hi) else float(lo)


def block_tail(g: np.ndarray, groups: int, keys: np.ndarray,
               scaled_g: np.ndarray | None = None) -> tuple[int, np.ndarray]:
    """A block's tail histograms: (the largest key, counts TAIL_BUCKETS x groups, bucket i
    holding key top - TAIL_BUCKETS + 1 + i, bucket 0 also every key below); ``scaled_g`` is
    g * TAIL_BUCKETS when the caller has it."""
    top = int(keys.max())
    base = top - TAIL_BUCKETS + 1
    if int(keys.min()) < base:  # keys below the window count in its lowest bucket
        keys = np.maximum(keys, base)
    # bucket key - base of group g at g * TAIL_BUCKETS + key - base: counted at
    # g * TAIL_BUCKETS + key, then shifted by base
    idx = keys + (g * TAIL_BUCKETS if scaled_g is None else scaled_g)
    size = groups * TAIL_BUCKETS
    if base >= 0:
        counts = np.bincount(idx, minlength=base + size)[base:]
    else:  # all keys near 0 (values all 0 or subnormal): the window reaches below key 0
        counts = np.zeros(size, dtype=np.int64)
        counts[-base:] = np.bincount(idx, minlength=size + base)[:size + base]
    return top, np.ascontiguousarray(counts.reshape(groups, TAIL_BUCKETS).T)


def reanchor(counts: np.ndarray, shift: int) -> np.ndarray:
    """Tail histograms whose top key rises by ``shift`` >= 0: buckets move down, those that
    leave the window join the lowest. Exact: the lowest bucket is max(key - base, 0) for any
    order of merges."""
    if shift == 0:
        return counts
    out = np.zeros_like(counts)
    if shift >= counts.shape[0]:
        out[0] = counts.sum(axis=0)
        return out
    out[0] = counts[:shift + 1].sum(axis=0)
    out[1:counts.shape[0] - shift] = counts[shift + 1:]
    return out


@lru_cache(maxsize=1 << 16)
def key_hash(key: Key) -> int:
    """A hash of a key that is the same in every process (``hash`` of a str is salted);
    cached, since past the cap every merge looks up its keys' hashes again."""
    return int.from_bytes(hashlib.blake2b(repr(key).encode(), digest_size=8).digest(), "big")


def fields_of(weighted: bool) -> int:
    return len(WEIGHTED_FIELDS) if weighted else len(UNWEIGHTED_FIELDS)


def block_arrays(g: np.ndarray, groups: int, values: np.ndarray, w: np.ndarray | None,
                 extras: Sequence[np.ndarray] = (), rows: np.ndarray | None = None) -> np.ndarray:
    """One block's array of a measure: rows as in the module's layout, a column per group;
    ``g`` is each row's group, ``w`` the (rescaled) weights, ``extras`` more per-row values
    whose (weighted) sums are kept, ``rows`` each group's row count when known."""
    def count(x: np.ndarray | None) -> np.ndarray:
        return np.bincount(g, weights=x, minlength=groups)

    def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.divide(a, b, out=np.zeros_like(a), where=b > 0)

    sums = [count(e if w is None else e * w) for e in extras]
    if w is None:
        n = count(None) if rows is None else rows.astype(np.float64)
        # Sums of powers of d = l - c about the block's mean c, one pass each, then central
        # moments per slice; where a slice's mean is far from c (its M2 under a quarter of
        # sum d^2) they would cancel, and the block takes two passes about each slice's mean.
        c = float(np.sum(values)) / values.size if values.size else 0.0
        d = values - c
        s1 = count(d)
        d2 = d * d
        s2 = count(d2)
        mean_d = ratio(s1, n)
        m2 = s2 - s1 * mean_d
        if np.all(4.0 * m2 >= s2):
            d2 *= d
            s3 = count(d2)
            m3 = s3 - 3.0 * mean_d * s2 + 2.0 * n * mean_d * mean_d * mean_d
            mean = np.where(n > 0, c + mean_d, 0.0)
            return np.stack([n, n * c + s1, mean, m2, m3, *sums])
        s = count(values)
        mean = ratio(s, n)
        d = values - mean[g]
        d2 = d * d
        m2 = count(d2)
        d2 *= d
        return np.stack([n, s, mean, m2, count(d2), *sums])
    return _weighted_arrays(values, w, sums, count, lambda x: x[g])


def segment_arrays(starts: np.ndarray, rows: np.ndarray, values: np.ndarray,
                   w: np.ndarray | None, extras: Sequence[np.ndarray] = (),
                   skew: bool = True) -> np.ndarray:
    """:func:`block_arrays` of rows sorted by group (each group's rows contiguous, every group
    present, the i-th starting at ``starts[i]``, ``rows[i]`` of them): the sums are
    ``np.add.reduceat`` over the segments, contiguous and pairwise, instead of a scatter per
    sum. Without ``skew`` (no interval that reads the skewness: ``--ci t`` or ``none``) the
    third moments are left 0: no cubes."""
    def seg(x: np.ndarray) -> np.ndarray:
        return np.add.reduceat(x, starts)

    def spread(x: np.ndarray) -> np.ndarray:  # a per-group value on each of its rows
        return np.repeat(x, rows)

    sums = [seg(e if w is None else e * w) for e in extras]
    if w is None:
        n = rows.astype(np.float64)
        # Power sums of l, then central moments per slice; where a slice's mean is large
        # against its spread (M2 under a quarter of sum l^2) they would cancel, and the block
        # takes two passes about each slice's mean.
        s = seg(values)
        t = values * values
        s2 = seg(t)
        mean = s / n
        m2 = s2 - s * mean
        if np.all(4.0 * m2 >= s2):
            if not skew:
                return np.stack([n, s, mean, m2, np.zeros_like(n), *sums])
            t *= values
            m3 = seg(t) - 3.0 * mean * s2 + 2.0 * n * mean * mean * mean
            return np.stack([n, s, mean, m2, m3, *sums])
        d = values - spread(mean)
        t = d * d
        m2 = seg(t)
        if not skew:
            return np.stack([n, s, mean, m2, np.zeros_like(n), *sums])
        t *= d
        return np.stack([n, s, mean, m2, seg(t), *sums])
    return _weighted_arrays(values, w, sums, seg, spread, skew)


def _weighted_arrays(values: np.ndarray, w: np.ndarray, sums: list[np.ndarray],
                     total: Callable[[np.ndarray], np.ndarray],
                     spread: Callable[[np.ndarray], np.ndarray],
                     skew: bool = True) -> np.ndarray:
    """The weighted layout's rows of one block (:func:`block_arrays` and
    :func:`segment_arrays`): ``total`` sums per-row values per group, ``spread`` puts a
    per-group value on each of its rows. The moments under w^2 and w^3 are taken about each
    group's own mean (0 for a group without weight); without ``skew`` those under w^3 are
    left 0."""
    def mean_of(x: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.divide(x, v, out=np.zeros_like(x), where=v > 0)

    wsum = total(w)
    s = total(values * w)
    v = w * w
    v2 = total(v)
    v4 = total(v * v)  # the degrees of freedom of the weighted variance (state.variance_df)
    mean2 = mean_of(total(v * values), v2)
    d = values - spread(mean2)
    m2_2 = total(v * d * d)
    if not skew:
        zero = np.zeros_like(wsum)
        return np.stack([wsum, s, v2, mean2, m2_2, zero, zero, zero, zero, v4, *sums])
    v *= w
    v3 = total(v)
    mean3 = mean_of(total(v * values), v3)
    d = values - spread(mean3)
    t = v * d * d
    m2_3 = total(t)
    t *= d
    return np.stack([wsum, s, v2, mean2, m2_2, v3, mean3, m2_3, total(t), v4, *sums])


def _chan(a: np.ndarray, b: np.ndarray, rows: tuple[int, int, int, int | None]) -> None:
    """Merge the moment group ``rows`` of b into a's (same columns), in place."""
    c, m, q2, q3 = rows
    na, nb = a[c], b[c]
    n = na + nb
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = b[m] - a[m]
        f = np.where(n > 0, nb / n, 0.0)
        mean = a[m] + delta * f
        cross = na * f  # na nb / n
        if q3 is not None:
            m3 = (a[q3] + b[q3] + delta * delta * delta * cross * np.where(n > 0, (na - nb) / n, 0)
                  + 3.0 * delta * np.where(n > 0, (na * b[q2] - nb * a[q2]) / n, 0.0))
        m2 = a[q2] + b[q2] + delta * delta * cross
    empty_a, empty_b = na == 0, nb == 0
    a[m] = np.where(empty_a, b[m], np.where(empty_b, a[m], mean))
    a[q2] = np.where(empty_a, b[q2], np.where(empty_b, a[q2], m2))
    if q3 is not None:
        a[q3] = np.where(empty_a, b[q3], np.where(empty_b, a[q3], m3))
    a[c] = n


def combine(data: np.ndarray, weighted: bool) -> np.ndarray:
    """The columns of ``data`` as one (the moments of the union of the slices): the exact
    decomposition of central moments about the pooled mean, no cancelling power sums."""
    out = data.sum(axis=1)
    for c, m, q2, q3 in (_WEIGHTED_MOMENTS if weighted else _UNWEIGHTED_MOMENTS):
        n = data[c]
        total = out[c]
        mean = float(np.dot(n, data[m]) / total) if total > 0 else 0.0
        d = data[m] - mean
        out[m] = mean
        out[q2] = float(np.sum(data[q2]) + np.sum(n * d * d))
        if q3 is not None:
            out[q3] = float(np.sum(data[q3]) + 3.0 * np.sum(d * data[q2]) + np.sum(n * d * d * d))
    return out


def rescale(data: np.ndarray, k: int) -> None:
    """A weighted measure's array with its weights multiplied by 2^k (k <= 0), in place."""
    if k == 0:
        return
    f = 2.0 ** k
    for i, p in enumerate(_SCALE_POWERS):
        if p:
            data[i] *= f ** p
    data[len(_SCALE_POWERS):] *= f


@dataclass
class GroupState:
    """The slices of one grouping: their keys (None is ``(other)``), row counts and each
    measure's array, with a common weight scale."""

    weighted: bool
    keys: list[Key | None] = field(default_factory=list)
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    data: list[np.ndarray] = field(default_factory=list)
    scale: int = 0
    #: keys hashing at or above this go to (other) (None: no key was ever sent there)
    threshold: int | None = None
    #: tail histograms (TAIL_BUCKETS x slices) and the key of each one's highest bucket (None:
    #: no value yet)
    tails: list[np.ndarray] = field(default_factory=list)
    tops: list[int | None] = field(default_factory=list)

    def index(self) -> dict[Key | None, int]:
        return {k: i for i, k in enumerate(self.keys)}

    def merge(self, later: GroupState, cap: int) -> GroupState:
        """Both states as one (reuses self); then at most ``cap`` slices beside (other)."""
        if not later.keys:
            return self
        if not self.keys:
            later.threshold = _low(self.threshold, later.threshold)
            return later.limit(cap)
        if self.weighted and later.scale != self.scale:
            top = max(self.scale, later.scale)
            for d in self.data:
                rescale(d, self.scale - top)
            for d in later.data:
                rescale(d, later.scale - top)
            self.scale = top
        old = len(self.keys)
        if later.keys == self.keys:  # the same slices in the same order (blocks of one file)
            pos: np.ndarray | None = None
            size = old
        else:
            where = self.index()
            pos = np.empty(len(later.keys), dtype=np.int64)
            new: list[Key | None] = []
            for i, k in enumerate(later.keys):
                j = where.get(k)
                if j is None:
                    j = old + len(new)
                    new.append(k)
                pos[i] = j
            size = old + len(new)
            self.keys.extend(new)
            self.rows = np.concatenate([self.rows, np.zeros(len(new), dtype=np.int64)])
        if pos is None:
            self.rows = self.rows + later.rows
        else:
            self.rows[pos] += later.rows
        groups = _WEIGHTED_MOMENTS if self.weighted else _UNWEIGHTED_MOMENTS
        moments = {r for g in groups for r in g if r is not None}
        # the measures of one shape merged at once: (fields, measures, slices)
        by_shape: dict[int, list[int]] = {}
        for i, d in enumerate(self.data):
            by_shape.setdefault(d.shape[0], []).append(i)
        for idx in by_shape.values():
            grown = np.zeros((self.data[idx[0]].shape[0], len(idx), size))
            for j, i in enumerate(idx):
                grown[:, j, :old] = self.data[i]
            b = np.stack([later.data[i] for i in idx], axis=1)
            sub = grown if pos is None else grown[:, :, pos]
            plain = [r for r in range(grown.shape[0]) if r not in moments]
            summed = sub[plain] + b[plain]
            for rows in groups:
                _chan(sub, b, rows)
            sub[plain] = summed
            if pos is not None:
                grown[:, :, pos] = sub
            for j, i in enumerate(idx):
                self.data[i] = grown[:, j, :]
        for i, (a, b) in enumerate(zip(self.tails, later.tails, strict=True)):
            ta, tb = self.tops[i], later.tops[i]
            high = ta if tb is None else tb if ta is None else max(ta, tb)
            a = a if ta is None or high is None else reanchor(a, high - ta)
            b = b if tb is None or high is None else reanchor(b, high - tb)
            if pos is None:
                grown_t = a + b
            else:
                grown_t = np.zeros((a.shape[0], size), dtype=np.int64)
                grown_t[:, :old] = a
                grown_t[:, pos] += b
            self.tails[i], self.tops[i] = grown_t, high
        self.threshold = _low(self.threshold, later.threshold)
        return self.limit(cap)

    def limit(self, cap: int) -> GroupState:
        """Keys at or past the hash threshold into (other); then, past ``cap`` keys, the
        highest hashes too (lowering the threshold)."""
        real = [i for i, k in enumerate(self.keys) if k is not None]
        if len(real) <= cap and self.threshold is None:
            return self
        hashes = {i: key_hash(self.keys[i]) for i in real}
        if len(real) > cap:
            cut = sorted(hashes.values())[cap]
            self.threshold = _low(self.threshold, cut)
        t = self.threshold
        assert t is not None
        out = [i for i in real if hashes[i] >= t]
        if out:
            self.send_to_other(out)
        return self

    def send_to_other(self, idx: Sequence[int]) -> None:
        """The slices at ``idx`` merged into (other) (made when missing) and removed."""
        if None not in self.keys:
            self.keys.append(None)
            self.rows = np.concatenate([self.rows, [0]])
            self.data = [np.concatenate([d, np.zeros((d.shape[0], 1))], axis=1)
                         for d in self.data]
            self.tails = [np.concatenate([t, np.zeros((t.shape[0], 1), dtype=np.int64)], axis=1)
                          for t in self.tails]
        o = self.keys.index(None)
        sel = np.asarray(sorted(idx), dtype=np.int64)
        for i, d in enumerate(self.data):
            pooled = combine(d[:, sel], self.weighted)[:, None]
            other = d[:, o:o + 1].copy()
            self.data[i] = d
            merged = _merge_columns(other, pooled, self.weighted)
            d[:, o] = merged[:, 0]
        for t in self.tails:
            t[:, o] += t[:, sel].sum(axis=1)
        self.rows[o] += int(self.rows[sel].sum())
        keep = np.setdiff1d(np.arange(len(self.keys)), sel)
        self.keys = [self.keys[i] for i in keep]
        self.rows = self.rows[keep]
        self.data = [d[:, keep] for d in self.data]
        self.tails = [t[:, keep] for t in self.tails]


def _merge_columns(a: np.ndarray, b: np.ndarray, weighted: bool) -> np.ndarray:
    """Two one-column arrays merged (a first)."""
    groups = _WEIGHTED_MOMENTS if weighted else _UNWEIGHTED_MOMENTS
    moments = {r for g in groups for r in g if r is not None}
    out = a.copy()
    for rows in groups:
        _chan(out, b, rows)
    for r in range(a.shape[0]):
        if r not in moments:
            out[r] = a[r] + b[r]
    return out


def _low(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def weight_scale(w: np.ndarray) -> int:
    """The exponent e of the largest weight (w 2^-e < 1), 0 when every weight is 0."""
    top = float(w.max()) if w.size else 0.0
    return math.frexp(top)[1] if top > 0 else 0
