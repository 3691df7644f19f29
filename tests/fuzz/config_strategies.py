"""Hypothesis strategies for the documents losscli reads besides data: ``[tool.losscli]``
settings (TOML) and ``--baseline`` reports (JSON). Each setting is drawn valid or invalid by
construction, so that a test knows whether the run must go through or be refused."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

#: the regression losses the config and baseline tests evaluate, as spec text -> (name, params)
SPECS: dict[str, tuple[str, dict[str, float]]] = {
    "mse": ("mse", {}), "mae": ("mae", {}), "huber:delta=2": ("huber", {"delta": 2.0}),
    "log_cosh": ("log_cosh", {}), "quantile:q=0.9": ("quantile", {"q": 0.9}),
}


def toml_value(v: Any) -> str:
    """A Python value as TOML (strings, numbers, booleans, arrays, inline tables)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


#: key -> (valid values, invalid values); "max" is drawn apart (it depends on the losses)
SETTINGS: dict[str, tuple[list[Any], list[Any]]] = {
    "pred": (["pred", "PRED"], ["nope", 5, True, ["pred"]]),
    "target": (["y"], ["missing", 1.5, {"a": 1}]),
    "weight": (["w"], ["nope", ["w"], 0]),
    "losses": ([["mse"], ["mae", "huber:delta=2"], ["log_cosh", "quantile:q=0.9", "mse"]],
               [["nope"], "mse", [1], ["mse", "mse"], ["huber:delta=0"], ["bce"]]),
    "nan": (["error", "drop"], ["foo", 1, False]),
    "chunk_rows": ([1, 3, 131072], [0, -1, 1.5, "10", True]),
    "logits": ([False], [True, "yes", 1]),
    "tolerance": (["2%", 0.01, 0, "0.5"], ["-1", "abc", -0.5, "nan", [1]]),
    "vanish_tol": ([1e-6, 0.0, 0.5], [-1.0, "x", math.nan, math.inf]),
    "explode_tol": ([1e3, 10], [-5, "big", math.nan]),
    "grad_clip": ([5.0, 1], [-1.0, "none", math.inf]),
    "threads": ([0, 1], [-1, "two"]),
    "format": (["table", "xml"], [5, ["json"]]),  # a --format flag overrides any string
}


@dataclass
class ConfigCase:
    text: bytes
    place: str  # "pyproject" (found in the working directory), "losscli.toml", "--config"
    settings: dict[str, Any]
    #: "ok": must run (exit 0 or 1); "bad": must be refused; "either": only the contract
    verdict: str
    why: str = ""
    losses: list[str] = field(default_factory=list)


@st.composite
def config_cases(draw: st.DrawFn) -> ConfigCase:
    place = draw(st.sampled_from(["pyproject", "losscli.toml", "--config"]))
    chosen: dict[str, Any] = {}
    bad: list[str] = []
    for key in draw(st.lists(st.sampled_from(list(SETTINGS)), unique=True, max_size=6)):
        valid, invalid = SETTINGS[key]
        if draw(st.integers(0, 7)) == 0:
            chosen[key] = draw(st.sampled_from(invalid))
            bad.append(key)
        else:
            chosen[key] = draw(st.sampled_from(valid))
    losses = chosen.get("losses") if "losses" not in bad else None
    # without a losses key the test passes --loss mse --loss mae
    asked = ["mse", "mae"] if "losses" not in chosen else losses
    if asked and draw(st.integers(0, 2)) == 0:
        if draw(st.integers(0, 5)):
            spec = draw(st.sampled_from(asked))
            chosen["max"] = {spec: draw(st.sampled_from([0.0, 0.5, 1e9]))}
        else:  # a limit on a loss that is not evaluated, or not a number
            chosen["max"] = draw(st.sampled_from([{"rmse": 1.0}, {"mse": "low"}, {"nope": 1}]))
            bad.append("max")
    if draw(st.integers(0, 19)) == 0:
        chosen["colour"] = "blue"
        bad.append("unknown key")
    body = "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in chosen.items())
    header = "[tool.losscli]\n" if place == "pyproject" or draw(st.integers(0, 3)) == 0 else ""
    if place == "pyproject":
        header = draw(st.sampled_from(["", '[project]\nname = "x"\n\n'])) + header
    text = (header + body).encode()
    verdict = "bad" if bad else "ok"
    why = ", ".join(bad)
    mutation = draw(st.sampled_from(["none"] * 12 + ["truncate", "bytes", "bom", "nest",
                                                    "duplicate"]))
    if mutation == "truncate" and text:
        text = text[:draw(st.integers(0, len(text) - 1))]
        verdict, why = "either", "truncated"
    elif mutation == "bytes":
        at = draw(st.integers(0, len(text)))
        junk = draw(st.sampled_from([b"\xff", b"\x00", b"=", b"[", b"\xc3", b"'''", b"\n[x]\n"]))
        text = text[:at] + junk + text[at:]
        verdict, why = "either", "inserted bytes"
    elif mutation == "bom":
        text = b"\xef\xbb\xbf" + text
        verdict, why = "either", "byte-order mark"
    elif mutation == "nest":
        depth = draw(st.sampled_from([10, 3000]))
        key = "tool.losscli.losses" if header.endswith("[tool.losscli]\n") else "losses"
        text += f"{key.split('.')[-1]} = {'[' * depth}{']' * depth}\n".encode()
        verdict, why = "bad", "nested arrays"
    elif mutation == "duplicate" and chosen:
        k = next(iter(chosen))
        text += f"{json.dumps(k)} = {toml_value(chosen[k])}\n".encode()
        verdict, why = "bad", "a key given twice"
    return ConfigCase(text, place, chosen, verdict, why, list(losses or []))


@dataclass
class BaselineCase:
    text: bytes
    #: evaluated spec -> baseline value (None: recorded as null); absent: missing from it
    values: dict[str, float | None]
    tolerance: str | None
    tol: tuple[float, bool]  # (amount, relative)
    verdict: str  # "ok", "bad", "either"
    why: str = ""


#: spellings of a spec that stand for the same loss
SPELLINGS: dict[str, list[str]] = {
    "mse": ["mse", "MSE", " mse", "1*mse"],
    "mae": ["mae"],
    "huber:delta=2": ["huber:delta=2", "huber:delta=2.0", "Huber: delta = 2"],
}


@st.composite
def baseline_cases(draw: st.DrawFn, reference: dict[str, float]) -> BaselineCase:
    """A baseline report for the losses in ``reference`` (spec -> the value on the data)."""
    entries: list[Any] = []
    values: dict[str, float | None] = {}
    for spec in draw(st.lists(st.sampled_from(list(SPELLINGS)), unique=True, max_size=3)):
        factor = draw(st.sampled_from([0.5, 0.99, 1.0, 1.01, 2.0]))
        value: Any = reference[spec] * factor
        if draw(st.integers(0, 5)) == 0:
            value = None
        entries.append({"spec": draw(st.sampled_from(SPELLINGS[spec])), "value": value,
                        "name": spec.split(":")[0]})
        values[spec] = value
    if draw(st.booleans()):  # a loss not evaluated now: ignored
        entries.append({"spec": "huber:delta=7", "value": 0.1})
    doc: Any = {"schema": "losscli.eval/1", "version": "0.1.0", "losses": entries}
    tolerance, tol = draw(st.sampled_from([(None, (0.0, False)), ("2%", (0.02, True)),
                                           ("0.01", (0.01, False)), ("0", (0.0, False)),
                                           ("-1", None), ("abc", None), ("nan", None),
                                           ("inf%", None)]))
    verdict, why = "ok", ""
    if tol is None:
        verdict, why, tol = "bad", "tolerance", (0.0, False)
    mutation = draw(st.sampled_from(["none"] * 8 + [
        "schema", "top", "losses", "entry", "spec", "value", "huge", "nest", "utf8", "bom",
        "truncate", "empty", "nonfinite"]))
    if mutation == "schema":
        doc["schema"] = draw(st.sampled_from([None, 1, "losscli.recommend/1", ""]))
        verdict, why = "bad", "schema"
    elif mutation == "top":
        doc = draw(st.sampled_from([[doc], "report", 3, None]))
        verdict, why = "bad", "not an object"
    elif mutation == "losses":
        doc["losses"] = draw(st.sampled_from([5, None, "mse", {"spec": "mse"}]))
        verdict, why = "bad", "losses not a list"
    elif mutation == "entry":
        doc["losses"] = [*entries, draw(st.sampled_from([5, "mse", None, [], {"spec": "mse"},
                                                         {"value": 1.0}]))]
        verdict, why = "bad", "malformed entry"
    elif mutation == "spec":
        doc["losses"] = [*entries, {"spec": draw(st.sampled_from(["nope", "", 5, "mse:x=1"])),
                                    "value": 1.0}]
        verdict, why = "bad", "bad spec"
    elif mutation == "value" and entries:
        entries[0]["value"] = draw(st.sampled_from(["0.5", True, [1.0], {"v": 1}]))
        verdict, why = "bad", "value not a number"
    elif mutation == "huge" and entries:
        entries[0]["value"] = "HUGE"  # written below: Python will not print 5000 digits
        verdict, why = "bad", "huge integer"
    elif mutation == "nonfinite" and entries:
        entries[0]["value"] = draw(st.sampled_from([math.inf, -math.inf, math.nan]))
        verdict, why = "either", "non-finite value"
    text = json.dumps(doc).encode()
    if mutation == "huge":
        text = text.replace(b'"HUGE"', b"9" * draw(st.sampled_from([400, 5000])), 1)
    if mutation == "nest":
        text = text[:-1] + b', "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
        verdict, why = ("bad", "nested too deeply") if isinstance(doc, dict) else (verdict, why)
    elif mutation == "utf8":
        text = text.replace(b'"losses"', b'"loss\xffes"', 1)
        verdict, why = "bad", "invalid UTF-8"
    elif mutation == "bom":
        text = b"\xef\xbb\xbf" + text
        verdict, why = "either", "byte-order mark"
    elif mutation == "truncate":
        text = text[:draw(st.integers(0, len(text) - 1))]
        verdict, why = "bad", "truncated"
    elif mutation == "empty":
        text = b""
        verdict, why = "bad", "empty file"
    return BaselineCase(text, values, tolerance, tol, verdict, why)
