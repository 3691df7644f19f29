"""Hypothesis strategies for CSV input: bytes with the values they stand for.

A case is built from a model (columns, cells as tokens with the value each one means) and then
written out with a dialect (delimiter, quoting, line endings, encoding, blank lines). The model
says what losscli must do: use exactly these rows, or refuse the input (exit 2).
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass, field

from fuzzlib import Rows, pending
from hypothesis import strategies as st

#: Text that a CSV reader reads as a missing value or a non-finite number: the row is dropped
#: under --nan drop, an error under --nan error.
MISSING_TOKENS = ("", "NA", "nan", "NaN", "NAN", "null", "NULL", "N/A", "n/a", "#N/A", "-nan",
                  "inf", "-inf", "Inf", "INF", "Infinity", "-Infinity", "infinity", "1e400",
                  "-1e999")
#: Text that is not a number in any CSV reader's eyes: always an error in a selected column.
GARBAGE_TOKENS = ("abc", "1_0", "0x10", "true", "1,5", "--1", "1.2.3", "e5", "1e", "+-1", "€",
                  "1 2", "٣")
#: Names losscli recognises as a target or prediction column: extra columns avoid them.
RECOGNISED = {"y", "target", "label", "y_true", "labels", "truth", "actual", "y_test", "pred",
              "prediction", "y_pred", "y_hat", "yhat", "score", "p", "prob", "probability",
              "predictions", "preds", "output", "logit", "logits", "w", "weight"}


@dataclass
class Cell:
    text: str
    kind: str  # "number", "missing", "garbage", "text"
    value: float = math.nan


@dataclass
class CsvCase:
    data: bytes
    suffix: str
    args: list[str]
    #: None: losscli must refuse the input (exit 2); else the rows it must use
    rows: Rows | None
    dropped: int = 0
    losses: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    stdin: bool = False
    note: str = ""

    def __repr__(self) -> str:  # Hypothesis prints the failing case: keep it readable
        head = self.data[:600]
        return (f"CsvCase(suffix={self.suffix!r}, args={self.args!r}, stdin={self.stdin}, "
                f"note={self.note!r}, bytes={len(self.data)}, head={head!r})")


def _number_text(draw: st.DrawFn, value: float) -> str:
    style = draw(st.sampled_from(["repr", "g17", "e", "f3", "plus", "E", "space"]))
    if style == "repr":
        text = repr(value)
    elif style == "g17":
        text = f"{value:.17g}"
    elif style == "e":
        text = f"{value:e}"
    elif style == "f3":
        text = f"{value:.3f}"
    elif style == "plus":
        text = repr(value) if math.copysign(1.0, value) < 0 else "+" + repr(value)
    elif style == "E":
        text = f"{value:.10E}"
    else:
        text = " " + repr(value) + draw(st.sampled_from(["", " "]))
    return text


@st.composite
def number_cell(draw: st.DrawFn, low: float = -1e6, high: float = 1e6) -> Cell:
    """A finite number as CSV text, in one of the spellings writers use; its value is what
    Python's float() reads."""
    if draw(st.booleans()):
        v = float(draw(st.integers(math.ceil(low), math.floor(high))))
        text = str(int(v)) if draw(st.booleans()) else _number_text(draw, v)
    else:
        v = draw(st.floats(low, high, allow_nan=False, allow_infinity=False))
        text = _number_text(draw, v)
    return Cell(text, "number", float(text))


@st.composite
def numeric_cell(draw: st.DrawFn, missing: float, garbage: float, low: float = -1e6,
                 high: float = 1e6) -> Cell:
    """A cell of a selected column: mostly a number, sometimes missing, rarely garbage."""
    u = draw(st.floats(0, 1))
    if u < garbage:
        return Cell(draw(st.sampled_from(GARBAGE_TOKENS)), "garbage")
    if u < garbage + missing:
        return Cell(draw(st.sampled_from(MISSING_TOKENS)), "missing")
    return draw(number_cell(low, high))


def _text_alphabet(allow_cr: bool) -> st.SearchStrategy[str]:
    bad = "\x00" + ("" if allow_cr else "\r")
    return st.characters(exclude_categories=["Cs"], exclude_characters=bad)


@st.composite
def text_cell(draw: st.DrawFn) -> Cell:
    """A cell of a column that is not read: any text, quotes, delimiters, line breaks."""
    kind = draw(st.sampled_from(["short", "short", "short", "special", "long"]))
    if kind == "short":
        text = draw(st.text(_text_alphabet(not pending("cr_only")), max_size=12))
    elif kind == "special":
        text = draw(st.sampled_from(['a,b', 'say "hi"', '"', 'two\nlines', '\t', ';', '""',
                                     "x\r\ny"]))
    else:
        text = "x" * draw(st.sampled_from([1 << 10, 70_000]))
    return Cell(text, "text")


def _column_name(draw: st.DrawFn, used: set[str], plain: bool) -> str:
    """A name for an unread column: any text on one line (no delimiter at all when ``plain``)."""
    name = draw(st.text(_text_alphabet(False).filter(lambda c: c != "\n"), max_size=10))
    if plain:
        name = name.replace(",", "").replace(";", "").replace("\t", "").replace('"', "")
    if name.lower() in RECOGNISED or name.lower() in {u.lower() for u in used}:
        name = f"extra{len(used)}"
    return name


def _quote(cell: str, delim: str, force: bool) -> str:
    if force or any(c in cell for c in (delim, '"', "\n", "\r")):
        return '"' + cell.replace('"', '""') + '"'
    return cell


@st.composite
def csv_cases(draw: st.DrawFn, fmt: str | None = None) -> CsvCase:
    """A CSV input (file or stdin) with the rows losscli must use, or None when it must refuse;
    ``fmt`` fixes the kind of input ("stdin", "csv", "gz", ...)."""
    n = draw(st.integers(0, 25))
    nan = draw(st.sampled_from(["error", "drop"]))
    missing = draw(st.sampled_from([0.0, 0.0, 0.1, 0.3]))
    garbage = draw(st.sampled_from([0.0, 0.0, 0.0, 0.02]))
    weighted = draw(st.booleans())
    fmt = fmt or draw(st.sampled_from(["csv", "csv", "tsv", "txt", "none", "gz", "stdin"]))
    wrong_delim = draw(st.integers(0, 19)) == 0
    delim = "\t" if fmt == "tsv" else ","
    if wrong_delim:  # a ';' file read as CSV, a ',' file read as TSV: one column, no 'y'
        delim = ";" if delim == "," else ","

    names = {"target": draw(st.sampled_from(["y", "target", "Label", "y true", "ÿ", "t"])),
             "pred": draw(st.sampled_from(["pred", "y_hat", "Score", "p r", "ŷ", "q"])),
             "weight": draw(st.sampled_from(["w", "weight", "sample weight"]))}
    roles = ["target", "pred"] + (["weight"] if weighted else [])
    used = {names[r] for r in roles}
    extra_names = []
    for _ in range(draw(st.sampled_from([0, 0, 1, 2, 5, 40]))):
        extra_names.append(_column_name(draw, used, wrong_delim))
        used.add(extra_names[-1])
    # a column whose name another column has too: refused when losscli is to read it
    shown: dict[str, str] = {}
    duplicate_selected = False
    if not pending("duplicate_names") and draw(st.integers(0, 9)) == 0:
        twin = draw(st.sampled_from([names[r] for r in roles] + extra_names))
        shown["\x00twin"] = twin
        extra_names.append("\x00twin")
        duplicate_selected = twin in {names[r] for r in roles}
    order = draw(st.permutations([names[r] for r in roles] + extra_names))
    columns: dict[str, list[Cell]] = {}
    for role in roles:
        low, high = (0.0, 1e3) if role == "weight" else (-1e6, 1e6)
        columns[names[role]] = [draw(numeric_cell(missing, garbage, low, high))
                                for _ in range(n)]
    for name in extra_names:
        numeric = draw(st.booleans())
        columns[name] = [draw(numeric_cell(0.2, 0.2)) if numeric else draw(text_cell())
                         for _ in range(n)]

    texts = [(name, i) for name in extra_names for i, c in enumerate(columns[name])
             if c.kind == "text"]
    if texts and draw(st.integers(0, 24)) == 0:  # one line longer than the parse block or piece
        name, i = draw(st.sampled_from(texts))
        columns[name][i] = Cell("x" * draw(st.sampled_from([4 << 20, 7 << 20])), "text")

    eol = draw(st.sampled_from(["\n", "\r\n"] + ([] if pending("cr_only") else ["\r"])))
    quote_all = draw(st.sampled_from([False, False, True]))
    final_eol = draw(st.booleans())
    bom = draw(st.sampled_from([False, False, True]))
    encoding = draw(st.sampled_from(["utf-8"] * 16 + ["latin-1", "latin-1", "utf-16"]))
    blank_lines = draw(st.sampled_from([False, False, True]))
    ragged_row = draw(st.integers(0, n - 1)) if n and draw(st.integers(0, 14)) == 0 else -1

    header = delim.join(_quote(shown.get(c, c), delim, quote_all or draw(st.booleans()))
                        for c in order)
    lines = [header]
    for i in range(n):
        cells = [_quote(columns[c][i].text, delim, quote_all or draw(st.booleans()))
                 for c in order]
        if i == ragged_row:
            cells = cells[:-1] if draw(st.booleans()) else [*cells, "1"]
        lines.append(delim.join(cells))
        if blank_lines and draw(st.booleans()):
            lines.append("")
    text = eol.join(lines) + (eol if final_eol else "")
    if encoding == "latin-1" and not all(ord(c) < 256 for c in text):
        encoding = "utf-8"
    data = text.encode(encoding)
    if bom and encoding == "utf-8":
        data = b"\xef\xbb\xbf" + data
    bad_header = encoding == "utf-16" or (encoding == "latin-1" and not header.isascii())
    if encoding == "utf-8" and draw(st.integers(0, 9)) == 0:
        if draw(st.booleans()):  # invalid UTF-8 in the header: refused
            data = data.replace(names["target"].encode(), names["target"].encode() + b"\xff", 1)
            bad_header = True
        else:  # invalid UTF-8 in a cell of an unread text column: never decoded
            cut = data.find(b"\n") + 1
            # a marker that no read cell holds: the first match is then in an unread column
            # (a marker '0' went into the target's '0.0': FINDINGS.md 11)
            read = [c.text for name in columns if name not in extra_names
                    for c in columns[name]]
            marker = next((c.text.encode() for name in extra_names for c in columns[name]
                           if c.kind == "text" and c.text.strip() and c.text.isalnum()
                           and not any(c.text in t for t in read)), None)
            if marker is not None and cut > 0 and marker in data[cut:]:
                data = data[:cut] + data[cut:].replace(marker, b"\xff\xfe" + marker, 1)
    if fmt == "gz":
        data = gzip.compress(data, mtime=0)

    # the command line
    args = [f"--target={names['target']}", f"--pred={names['pred']}", f"--nan={nan}"]
    if weighted:
        args.append(f"--weight={names['weight']}")
    losses: list[tuple[str, dict[str, float]]] = [("mse", {}), ("mae", {})]
    if draw(st.booleans()):
        losses.append(("huber", {"delta": draw(st.sampled_from([0.5, 1.0, 3.0, 1e3]))}))
    for name, params in losses:
        spec = name + (":" + ",".join(f"{k}={v!r}" for k, v in params.items()) if params else "")
        args.append(f"--loss={spec}")
    chunk = draw(st.sampled_from([None, None, 1, 2, 7]))
    if chunk is not None:
        args.append(f"--chunk-rows={chunk}")
    args.append(f"--threads={draw(st.sampled_from([0, 1, 2]))}")
    suffix = {"csv": ".csv", "tsv": ".tsv", "txt": ".txt", "none": "", "gz": ".csv.gz",
              "stdin": ".csv"}[fmt]
    case = CsvCase(data, suffix, args, None, losses=losses, stdin=fmt == "stdin")

    # what losscli must do
    selected = [names[r] for r in roles]
    if wrong_delim or ragged_row >= 0 or bad_header or duplicate_selected or any(
            c.kind == "garbage" for name in selected for c in columns[name]):
        case.note = "refuse: malformed"
        return case
    keep = [i for i in range(n) if all(columns[s][i].kind == "number" for s in selected)]
    if n - len(keep) and nan == "error":
        case.note = "refuse: missing values"
        return case
    if not keep:
        case.note = "refuse: no rows"
        return case
    w = [columns[names["weight"]][i].value for i in keep] if weighted else None
    if w is not None and math.fsum(w) <= 0:
        case.note = "refuse: zero total weight"
        return case
    case.rows = Rows([columns[names["pred"]][i].value for i in keep],
                     [columns[names["target"]][i].value for i in keep], w)
    case.dropped = n - len(keep)
    case.note = "values"
    return case
