"""The settings of every command, typed: flags over the configuration file over defaults.

eval and recommend read the same keys (``config.KEYS``) from the same places; a key that a
command does not use (recommend has no gates) is accepted and left alone. Values are checked
once, here, so that every command says the same thing about the same bad value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from losscli.config import ConfigFile
from losscli.errors import UsageError
from losscli.options import DEFAULT_CHUNK_ROWS, EXPLODE_TOL, VANISH_TOL
from losscli.render.formats import formats
from losscli.uncertainty import DEFAULT_BOOTSTRAP_SAMPLES, DEFAULT_CONFIDENCE, check_ci_options

#: Output formats of each command, from the one registry of renderers.
FORMATS: dict[str, tuple[str, ...]] = {c: formats(c) for c in ("compare", "eval", "recommend")}
ALL_FORMATS = tuple(dict.fromkeys(f for fs in FORMATS.values() for f in fs))

#: Keys that only eval uses; every other key applies to every command that reads data.
EVAL_ONLY = ("losses", "max", "baseline", "tolerance", "vanish_tol", "explode_tol", "grad_clip",
             "ci", "confidence", "bootstrap_samples", "seed", "plugins", "alpha", "primary",
             "by", "max_slices", "min_rows", "top", "max_slice")
#: Of those, the keys compare uses too (losses, intervals, the gates' tolerance, slices).
COMPARE_TOO = ("losses", "tolerance", "ci", "confidence", "bootstrap_samples", "seed",
               "plugins", "alpha", "primary", "by", "max_slices", "min_rows", "top")
#: The keys that compare alone reads.
COMPARE_ONLY = ("primary",)


def _uses(command: str, key: str) -> bool:
    """Whether ``command`` reads setting ``key``."""
    return command == "eval" or key not in EVAL_ONLY or (command == "compare" and
                                                           key in COMPARE_TOO)


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one command run; ``origins`` says where each came from."""

    command: str = "eval"
    # input (every command)
    pred: str | None = None
    target: str | None = None
    weight: str | None = None
    task: str | None = None
    #: the label of a binary target of two labels that is 1 (scikit-learn's pos_label)
    positive: str | None = None
    logits: bool = False
    nan: str = "error"
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    threads: int | None = None
    #: a Dask scheduler to run on (losscli.run.dask); None: this machine
    scheduler: str | None = None
    format: str = "table"
    # eval: losses, gradients and gates
    losses: tuple[str, ...] = ()
    max: dict[str, Any] = field(default_factory=dict)
    baseline: str | None = None
    tolerance: str | float | None = None
    vanish_tol: float = VANISH_TOL
    explode_tol: float = EXPLODE_TOL
    grad_clip: float | None = None
    # eval: intervals
    ci: str = "johnson"
    confidence: float = DEFAULT_CONFIDENCE
    bootstrap_samples: int = DEFAULT_BOOTSTRAP_SAMPLES
    seed: int = 0
    #: compare: the significance level of the verdicts and gates; eval: the slices'
    #: false-discovery rate
    alpha: float = 0.05
    #: compare: the loss whose test is confirmatory (the others are secondary)
    primary: str | None = None
    #: slices: the groupings (--by), the (other) limit, the smallest slice tested and gated,
    #: the slices a table shows, and the per-slice limits (--max-slice)
    by: tuple[str, ...] = ()
    max_slices: int = 1000
    min_rows: int = 30
    top: int = 10
    max_slice: dict[str, Any] = field(default_factory=dict)
    #: custom-loss plugins (files or modules): the configuration file's, then the flags'
    plugins: tuple[str, ...] = ()
    origins: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        where = self._where
        if self.chunk_rows < 1:
            raise UsageError(f"--chunk-rows must be a positive number of rows, got "
                             f"{self.chunk_rows}{where('chunk_rows')}")
        if self.threads is not None and self.threads < 0:
            raise UsageError(f"--threads must be 0 or more, got {self.threads}"
                             f"{where('threads')}")
        if self.nan not in ("error", "drop"):
            raise UsageError(f"--nan must be 'error' or 'drop', got '{self.nan}'{where('nan')}")
        formats = FORMATS[self.command]
        if self.format not in formats:
            hint = ""
            if self.format in ALL_FORMATS:
                hint = f" ({self.format} is for eval and compare; pass --format table)"
            raise UsageError(f"--format must be one of {', '.join(formats)} for "
                             f"{self.command}, got '{self.format}'{where('format')}{hint}")
        for key in ("vanish_tol", "explode_tol", "grad_clip"):
            v = getattr(self, key)
            if v is not None and not (v >= 0 and math.isfinite(v)):
                raise UsageError(f"--{key.replace('_', '-')} must be a finite number >= 0, "
                                 f"got {v}{where(key)}")

        check_ci_options(self.ci, self.confidence, self.bootstrap_samples, where,
                         seed=self.seed)
        if self.command == "compare" and self.ci == "none":  # eval's 'none' in a shared file
            raise UsageError(f"compare needs an interval: --ci johnson, t or bootstrap, got "
                             f"'none'{where('ci')}")
        if not 0.0 < self.alpha < 0.5:
            raise UsageError(f"--alpha must be between 0 and 0.5, got {self.alpha:g}"
                             f"{where('alpha')}")
        for key, low in (("max_slices", 1), ("min_rows", 2), ("top", 0)):
            if getattr(self, key) < low:
                raise UsageError(f"--{key.replace('_', '-')} must be {low} or more, got "
                                 f"{getattr(self, key)}{where(key)}")

    def _where(self, key: str) -> str:
        origin = self.origins.get(key, "flag")
        return "" if origin in ("flag", "default") else f" (from {origin})"

    def keys(self) -> list[str]:
        """The setting names this command uses, in declaration order."""
        names = [f.name for f in fields(self) if f.name not in ("command", "origins")]
        return [n for n in names if _uses(self.command, n)
                and (n not in COMPARE_ONLY or self.command == "compare")
                and (n != "alpha" or self.command == "compare" or bool(self.by))]

    def shown(self) -> dict[str, dict[str, Any]]:
        """Each setting with its origin, for ``--show-config`` (JSON values)."""
        out: dict[str, dict[str, Any]] = {}
        for key in self.keys():
            value = getattr(self, key)
            out[key] = {"value": list(value) if isinstance(value, tuple) else value,
                        "source": self.origins.get(key, "default")}
        return out


def resolve(command: str, flags: dict[str, Any], config: ConfigFile) -> Settings:
    """Each setting from its flag when given (not None / not empty), else from the
    configuration file, else the default. Keys a command does not use keep their defaults."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for f in fields(Settings):
        key = f.name
        if key in ("command", "origins") or not _uses(command, key):
            continue
        flag = flags.get(key)
        if key == "plugins" and flag and key in config.values:  # plugins add up
            values[key] = [*config.values[key], *flag]
            origins[key] = f"{config.label} and flag"
        elif flag is not None and flag != [] and flag != {}:
            values[key], origins[key] = flag, "flag"
        elif key in config.values:
            values[key], origins[key] = config.values[key], config.label
        else:
            origins[key] = "default"
    if isinstance(values.get("by"), str):
        values["by"] = [values["by"]]
    for key in ("losses", "plugins", "by"):
        if key in values:
            values[key] = tuple(values[key])
    if "positive" in values and not isinstance(values["positive"], str):
        values["positive"] = str(values["positive"])  # positive = 1 in a file: the label 1
    return Settings(command=command, origins=origins, **values)


def plain(value: Any) -> str:
    """A setting as a person writes it on the command line: no quotes, no ``None``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(plain(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={plain(v)}" for k, v in value.items()) or "-"
    if isinstance(value, float):
        return f"{value:g}" if value == float(f"{value:g}") else repr(value)
    return str(value)
