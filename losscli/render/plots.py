"""The report's figures, drawn by matplotlib from :class:`losscli.figures.FigureData`.

matplotlib is the optional ``report`` extra, imported only here and only when a report or
figures are asked for. Each figure comes with a one-line caption that says what to look for.
Axes, labels and text are drawn in a sentinel colour that the inline SVG turns into the page's
``var(--ink)``, so one drawing serves the light and the dark scheme.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from losscli.errors import UsageError
from losscli.figures import FigureData, SymlogBins

INSTALL = "pip install 'losscli[report]'"
#: Drawn in these, replaced by CSS variables in the inline SVG.
INK = "#0b0c0d"
GRID = "#0b0c0e"
#: Colour-blind-safe data colours (Okabe & Ito), readable on white and on near-black.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
#: Beyond this many classes the confusion matrix shows the most-confused ones.
MAX_CLASSES = 30


def require_matplotlib() -> None:
    """Exit 2 with what to install when matplotlib is missing (checked before the pass)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(f"--report and --figures draw with matplotlib, which is not "
                         f"installed: {INSTALL}") from None


@dataclass
class Plot:
    """One drawn figure: a file-name stem, a title, its caption and the matplotlib figure."""

    name: str
    title: str
    caption: str
    figure: Any
    #: a table of the exact numbers behind the figure (row labels, column labels, cells), shown
    #: beside it in the HTML report
    table: tuple[list[str], list[str], np.ndarray] | None = None


def _style() -> Any:
    from cycler import cycler

    return {"svg.fonttype": "none", "svg.hashsalt": "losscli", "font.size": 9,
            "font.family": "sans-serif", "text.color": INK, "axes.labelcolor": INK,
            "axes.edgecolor": INK, "xtick.color": INK, "ytick.color": INK,
            "axes.facecolor": "none", "figure.facecolor": "none",
            "savefig.facecolor": "none", "grid.color": GRID, "grid.alpha": 0.25,
            "axes.grid": True, "legend.frameon": False, "axes.spines.top": False,
            "axes.spines.right": False, "axes.prop_cycle": cycler(color=list(PALETTE)),
            "image.cmap": "viridis"}


def _figure(w: float = 6.4, h: float = 3.4, fixed: bool = False, top: float = 0.12,
            labels: Sequence[str] | None = None, **kw: Any) -> tuple[Any, Any]:
    """A figure of w x h inches. ``fixed``: margins in inches for axes whose labels have a
    known width (numbers), instead of the constrained layout, which draws the figure twice (it
    was half of the drawing time); ``labels``: fixed too, with the left margin as wide as the
    widest of these y tick labels."""
    from matplotlib.figure import Figure

    if not fixed and labels is None:
        fig = Figure(figsize=(w, h), layout="constrained")
        return fig, fig.subplots(**kw)
    left = 0.75 if labels is None else max(0.45, _text_width(labels) + 0.2)
    fig = Figure(figsize=(w, h))
    fig.subplots_adjust(left=left / w, right=1 - 0.15 / w, bottom=0.55 / h, top=1 - top / h,
                        hspace=0.15)
    return fig, fig.subplots(**kw)


def _text_width(labels: Sequence[str]) -> float:
    """The width in inches of the widest line of these tick labels, as the SVG is drawn
    (measured with the font, without drawing a figure)."""
    import matplotlib
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    prop = FontProperties(size=matplotlib.rcParams["ytick.labelsize"])
    measure = TextToPath().get_text_width_height_descent
    lines = [line for text in labels for line in str(text).split("\n") if line]
    return max((measure(line, prop, ismath=False)[0] for line in lines), default=0.0) / 72


def _tick(v: float, _pos: Any = None) -> str:
    """A log-axis tick label without mathtext (whose parsing was most of the drawing time):
    0.01, 1, 1000, 1e-05, 1e+06 ..."""
    return "0" if v == 0 else f"{v:g}".replace("e-0", "e-").replace("e+0", "e+")


def _plain(*axes: Any) -> None:
    """Plain tick labels on log-scaled axes; no labels on the minor ticks."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    for axis in axes:
        axis.set_major_formatter(FuncFormatter(_tick))
        axis.set_minor_formatter(NullFormatter())


def _n(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1e4 else f"{x:.4g}"


# --- regression -----------------------------------------------------------------------------------


def _symlog_axes(ax: Any, b: SymlogBins, xlabel: str) -> None:
    """A symmetric-log histogram as a density (rows per unit of x, on a log scale), so that the
    bars' heights compare across bins of different widths: a bell stays a bell."""
    from matplotlib.ticker import FixedLocator

    e = b.edges
    edges = np.concatenate((-e[::-1], e))
    counts = np.concatenate((b.negative[::-1], [b.centre], b.positive)).astype(float)
    counts /= np.diff(edges)
    ax.stairs(counts, edges, fill=True, alpha=0.85, color=PALETTE[0])
    t = float(e[0])
    step = math.log10(float(e[1]) / t) if e.size > 1 else 0.1
    ax.set_xscale("symlog", linthresh=t, linscale=step)
    decades = [10.0 ** k for k in range(math.ceil(math.log10(3 * t)),
                                        math.floor(math.log10(float(e[-1]))) + 1)]
    ax.xaxis.set_major_locator(FixedLocator([-d for d in decades[::-1]] + [0.0] + decades))
    shown = counts[counts > 0]
    if shown.size:
        ax.set_yscale("log")
        ax.set_ylim(shown.min() / 2.0, shown.max() * 2.0)
    _plain(ax.xaxis, ax.yaxis)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rows per unit (log)")


def residual_plot(b: SymlogBins) -> Plot:
    fig, ax = _figure(fixed=True)
    _symlog_axes(ax, b, "residual e = prediction - target (symmetric log scale)")
    ax.axvline(b.median, color=INK, lw=1)
    if all(math.isfinite(c) for c in b.cuts):
        for c in b.cuts:
            ax.axvline(c, color=PALETTE[5], lw=1.2, ls="--")
        outside = "dashed: outlier cuts at the median -+ 3.5 robust SDs"
    else:
        outside = "no outlier cut (the MAD is 0)"
    return Plot("residuals", "Residuals",
                f"Residual density: look for skew (one side heavier) and bars past the {outside} "
                f"(solid: the median, {_n(b.median)}).", fig)


def pred_actual_plot(edges: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Plot:
    from matplotlib.colors import LogNorm

    ex, ey, counts = edges
    fig, ax = _figure(6.4, 4.2, fixed=True)
    shown = np.where(counts > 0, counts, np.nan).T
    im = ax.imshow(shown, origin="lower", aspect="auto", interpolation="nearest",
                   extent=(float(ex[0]), float(ex[-1]), float(ey[0]), float(ey[-1])),
                   norm=LogNorm(vmin=1, vmax=max(2, int(counts.max()))))
    lo, hi = max(ex[0], ey[0]), min(ex[-1], ey[-1])
    if hi > lo:
        ax.plot([lo, hi], [lo, hi], color=INK, lw=1, ls="--")
    ax.grid(False)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual (target)")
    bar = fig.colorbar(im, ax=ax, label="rows", shrink=0.85).ax.yaxis
    _plain(bar)
    if counts.max() > 1000:
        # beyond three decades the labelled decades give the scale; the 8 minor ticks a
        # decade were two thirds of this figure's drawing time (72 ticks at 5e7 rows)
        from matplotlib.ticker import NullLocator

        bar.set_minor_locator(NullLocator())
    return Plot("predicted_vs_actual", "Predicted vs actual",
                "Row density of (prediction, target): a good model keeps the mass on the dashed "
                "diagonal; mass above it is under-prediction, below over-prediction.", fig)


def gradient_plot(data: FigureData) -> Plot:
    """One row per loss: the |g| distribution as a ridge (share of rows per half octave, each
    scaled to its own peak) with p50, p90 and p99 marked; one axes, so it draws fast."""
    grads = data.gradients
    labels = []
    for g in grads:
        zero = int(g.counts[~(g.values > 0)].sum())
        n = max(1, int(g.counts.sum()))
        labels.append(f"{g.spec}" + (f"\n{zero / n:.0%} at 0" if zero else ""))
    fig, ax = _figure(6.4, 0.9 + 0.55 * len(grads), labels=labels)
    for i, g in enumerate(grads):
        v, c = g.values, g.counts
        pos = v > 0
        if pos.any():
            lv = np.log2(v[pos])
            bins = np.arange(math.floor(lv.min() * 2) / 2 - 0.5,
                             math.ceil(lv.max() * 2) / 2 + 1.0, 0.5)
            h, _ = np.histogram(lv, bins=bins, weights=c[pos])
            top = 0.42 * h / max(1, h.max())
            x = np.exp2(np.repeat(bins, 2)[1:-1])
            y = np.repeat(top, 2)
            ax.fill_between(x, i - y, i + y, color=PALETTE[2], alpha=0.75, lw=0)
        for q, ls in ((g.p50, "-"), (g.p90, "--"), (g.p99, ":")):
            if q > 0:
                ax.plot([q, q], [i - 0.45, i + 0.45], color=INK, lw=1.2, ls=ls)
    ax.set_xscale("log")
    _plain(ax.xaxis)
    ax.set_yticks(range(len(grads)), labels)
    ax.set_ylim(len(grads) - 0.5, -0.5)
    ax.set_xlabel("|g| per row (log scale)")
    return Plot("gradients", "Gradient magnitudes",
                "|g| per loss with p50 (solid), p90 (dashed) and p99 (dotted): a long right tail "
                "means a few rows drive training; mass near 0 means vanishing gradients.", fig)


# --- binary -------------------------------------------------------------------------------------


def calibration_plot(cal: dict[str, Any]) -> Plot:
    fig, (ax, bx) = _figure(4.8, 4.6, fixed=True, top=0.35, nrows=2, sharex=True,
                            height_ratios=(3, 1))
    ax.plot([0, 1], [0, 1], color=INK, lw=1, ls="--")
    ax.plot(cal["mean_predicted"], cal["observed_rate"], marker="o", color=PALETTE[0])
    ax.set_ylabel("observed rate of 1")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"ECE {cal['ece']:.4f} (max gap {cal['max_error']:.3f})", fontsize=9,
                 loc="left")
    edges = np.asarray(cal["edges"])
    bx.stairs(np.asarray(cal["count"], dtype=float), edges, fill=True, color=PALETTE[4])
    bx.set_yscale("log")
    _plain(bx.yaxis)
    bx.set_ylabel("rows")
    bx.set_xlabel("predicted probability")
    return Plot("calibration", "Reliability diagram",
                "Mean predicted probability vs observed rate per bin: points below the diagonal "
                "are over-confident, above under-confident; ECE weighs each gap by its rows.", fig)


def probability_plot(edges: np.ndarray, counts: np.ndarray) -> Plot:
    fig, ax = _figure(6.4, 3.0, fixed=True)
    for k, label in ((0, "target 0"), (1, "target 1")):
        ax.stairs(counts[k].astype(float), edges, label=label, lw=1.6, color=PALETTE[k * 5])
    ax.set_yscale("log")
    _plain(ax.yaxis)
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("rows")
    ax.legend()
    return Plot("probabilities", "Predicted probability by class",
                "Predicted probability of the rows of each class: the less the two overlap, "
                "the better the model separates them.", fig)


# --- multiclass ---------------------------------------------------------------------------------


def _most_confused(counts: np.ndarray, keep: int) -> np.ndarray:
    off = counts.sum(axis=0) + counts.sum(axis=1) - 2 * np.diag(counts)
    return np.sort(np.argsort(-off, kind="stable")[:keep])


def confusion_plot(counts: np.ndarray, labels: Sequence[str]) -> Plot:
    k = counts.shape[0]
    idx = np.arange(k) if k <= MAX_CLASSES else _most_confused(counts, MAX_CLASSES)
    sub = counts[np.ix_(idx, idx)]
    rows = sub.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(rows > 0, sub / np.maximum(rows, 1), 0.0)
    size = min(7.0, 2.6 + 0.35 * len(idx))
    fig, ax = _figure(size + 1.0, size)
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues", interpolation="nearest")
    ax.grid(False)
    names = [str(labels[int(i)]) if i < len(labels) else str(i) for i in idx]
    ax.set_xticks(range(len(idx)), names, rotation=45 if len(idx) > 6 else 0, ha="right"
                  if len(idx) > 6 else "center")
    ax.set_yticks(range(len(idx)), names)
    ax.set_xlabel("predicted class (argmax)")
    ax.set_ylabel("true class")
    if len(idx) <= 12:
        for i in range(len(idx)):
            for j in range(len(idx)):
                ax.text(j, i, f"{norm[i, j]:.0%}\n{sub[i, j]:,}", ha="center", va="center",
                        fontsize=7, color="#ffffff" if norm[i, j] > 0.5 else "#1b1f24")
    fig.colorbar(im, ax=ax, label="share of the true class", shrink=0.8)
    more = (f" (the {MAX_CLASSES} most-confused of {k} classes)" if k > MAX_CLASSES else "")
    all_names = [str(labels[i]) if i < len(labels) else str(i) for i in range(k)]
    return Plot("confusion", "Confusion matrix",
                "Row-normalised confusion matrix" + more + ": the diagonal is each class's "
                "recall; a bright off-diagonal cell names the classes mixed up.", fig,
                (all_names, all_names, counts))


def class_loss_plot(data: FigureData) -> Plot:
    names = data.labels
    fig, ax = _figure(6.4, 0.6 + 0.3 * len(names) * max(1, len(data.class_loss)),
                      labels=names)
    height = 0.8 / max(1, len(data.class_loss))
    y = np.arange(len(names))
    for i, (spec, means, _rows) in enumerate(data.class_loss):
        ax.barh(y + i * height, np.nan_to_num(means), height=height, label=spec)
    ax.set_yticks(y + height * (len(data.class_loss) - 1) / 2, names)
    ax.invert_yaxis()
    ax.set_xlabel("mean loss of the class's rows")
    if len(data.class_loss) > 1:
        ax.legend()
    return Plot("class_loss", "Loss per class",
                "Mean per-row loss of each true class: the long bars are the classes the model "
                "gets wrong or is unsure of.", fig)


# --- compare and recommend ---------------------------------------------------------------------


def delta_plot(losses: Sequence[Any]) -> Plot:
    fig, ax = _figure(6.4, 0.9 + 0.45 * len(losses), labels=[r.spec for r in losses])
    y = np.arange(len(losses))
    for i, r in enumerate(losses):
        b = abs(r.baseline) if r.baseline else 1.0
        lo, hi, d = 100 * r.ci.low / b, 100 * r.ci.high / b, 100 * r.delta / b
        colour = PALETTE[2] if r.verdict == "better" else PALETTE[5] if r.verdict == "worse" \
            else INK
        ax.errorbar([d], [i], xerr=[[d - lo], [hi - d]], fmt="o", color=colour, capsize=3)
    ax.axvline(0, color=INK, lw=1)
    ax.set_yticks(y, [r.spec for r in losses])
    ax.invert_yaxis()
    ax.set_xlabel("candidate - baseline, % of the baseline value")
    return Plot("deltas", "Change per loss",
                "Each loss's change with its interval: left of 0 the candidate is better; an "
                "interval that crosses 0 is no evidence either way.", fig)


def diff_plot(spec: str, b: SymlogBins) -> Plot:
    fig, ax = _figure(6.4, 2.8, fixed=True)
    _symlog_axes(ax, b, f"{spec}: candidate - baseline per row (symmetric log scale)")
    ax.axvline(0, color=INK, lw=1)
    return Plot(f"diff_{re.sub(r'[^A-Za-z0-9]+', '_', spec).strip('_')}",
                f"Per-row differences, {spec}",
                f"Distribution of the per-row {spec} differences: left of 0 are rows the "
                "candidate improves, right the rows it makes worse; look for a few large ones.",
                fig)


def histogram_plot(hist: Any) -> Plot:
    fig, ax = _figure(6.4, 3.0, fixed=True)
    bins = hist.bins
    edges = np.array([b.lo for b in bins] + [bins[-1].hi])
    counts = np.array([b.count for b in bins], dtype=float)
    colours = [PALETTE[5] if b.outlier else PALETTE[0] for b in bins]
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=colours)
    if counts.max() > 0:
        ax.set_yscale("log")
        _plain(ax.yaxis)
    ax.set_xlabel(hist.unit)
    ax.set_ylabel("rows")
    return Plot("recommend_histogram", hist.title,
                "What recommend measured: the bins past the outlier cuts are coloured; their "
                "share drives the choice of a robust loss.", fig)


def figures_of(data: FigureData | None, comparison: Any = None,
               recommendation: Any = None) -> Iterator[Plot]:
    """The figures of a run, in reading order."""
    if comparison is not None:
        yield delta_plot(comparison.losses)
    if recommendation is not None and recommendation.histogram is not None and \
            recommendation.histogram.bins:
        yield histogram_plot(recommendation.histogram)
    if data is None:
        return
    if data.residual is not None:
        yield residual_plot(data.residual)
    if data.pred_actual is not None:
        yield pred_actual_plot(data.pred_actual)
    if data.calibration is not None:
        yield calibration_plot(data.calibration)
    if data.prob_counts is not None and data.prob_edges is not None:
        yield probability_plot(data.prob_edges, data.prob_counts)
    if data.confusion is not None:
        yield confusion_plot(data.confusion, data.labels)
    if data.class_loss:
        yield class_loss_plot(data)
    if data.gradients:
        yield gradient_plot(data)
    for spec, b in data.diffs:
        yield diff_plot(spec, b)


def draw(data: FigureData | None, comparison: Any = None,
         recommendation: Any = None) -> list[Plot]:
    """Every figure, drawn with the report's style."""
    import matplotlib

    with matplotlib.rc_context(_style()):
        return list(figures_of(data, comparison, recommendation))


_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_SVG_ROOT = re.compile(r'<svg [^>]*?(width="[^"]*" height="[^"]*" )')


def svg(plot: Plot) -> str:
    """The figure as an inline <svg> element: no XML prologue, sized by its viewBox, text and
    axes in ``var(--ink)``."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context(_style()):
        plot.figure.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = _METADATA.sub("", text[text.index("<svg"):])
    m = _SVG_ROOT.search(text)
    if m:
        text = text[:m.start(1)] + text[m.end(1):]
    # as wide as drawn at most (about 110 px per inch), so that text reads the same size in
    # every figure
    width = round(float(plot.figure.get_figwidth()) * 110)
    text = text.replace("<svg ", f'<svg role="img" aria-label="{_attr(plot.title)}" '
                        f'style="max-width:{width}px" ', 1)
    # ids are unique in the page: each figure's are prefixed with its name
    p = f"{plot.name}-"
    text = text.replace('id="', f'id="{p}').replace("url(#", f"url(#{p}").replace(
        'href="#', f'href="#{p}')
    return text.replace(INK, "var(--ink)").replace(GRID, "var(--grid)")


def png(plot: Plot, dpi: int = 150) -> bytes:
    """The figure as a PNG on white (papers, pull-request comments)."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({**_style(), "savefig.facecolor": "white"}):
        plot.figure.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def _attr(text: str) -> str:
    from html import escape

    return escape(text, quote=True)
