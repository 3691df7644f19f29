"""Settings from ``[tool.losscli]`` (pyproject.toml), ``losscli.toml`` or ``--config``, under flags.

Precedence: a flag given on the command line, then the configuration file, then the default.
Each resolved setting remembers where it came from, for ``--show-config``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from losscli.detect import TASKS
from losscli.errors import ConfigError


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


#: key -> (check, expected type for messages)
KEYS: dict[str, tuple[Any, str]] = {
    "pred": (_is_str, "a string"),
    "target": (_is_str, "a string"),
    "weight": (_is_str, "a string"),
    "losses": (lambda v: isinstance(v, list) and all(_is_str(x) for x in v),
               "a list of loss specs (strings)"),
    "max": (lambda v: isinstance(v, dict) and all(_is_number(x) for x in v.values()),
            "a table of loss = number"),
    "baseline": (_is_str, "a path (string)"),
    "tolerance": (lambda v: _is_str(v) or _is_number(v), "a number or a percentage string"),
    "logits": (lambda v: isinstance(v, bool), "true or false"),
    "positive": (lambda v: _is_str(v) or _is_number(v), "a label (string or number)"),
    "nan": (lambda v: v in ("error", "drop"), "'error' or 'drop'"),
    "chunk_rows": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
                   "a positive integer"),
    "threads": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                "an integer >= 0"),
    "scheduler": (_is_str, "a Dask scheduler: 'local:N', 'tcp://HOST:PORT' or 'dask'"),
    "task": (lambda v: v in TASKS, "'regression', 'counts', 'binary' or 'multiclass'"),
    "format": (_is_str, "a string"),
    "vanish_tol": (_is_number, "a number"),
    "explode_tol": (_is_number, "a number"),
    "grad_clip": (_is_number, "a number"),
    "ci": (lambda v: v in ("johnson", "t", "bootstrap", "percentile", "none"),
           "'johnson', 't', 'bootstrap', 'percentile' or 'none'"),
    "confidence": (lambda v: _is_number(v) and 0 < v < 1, "a number between 0 and 1"),
    "bootstrap_samples": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
                          "a positive integer"),
    "seed": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "alpha": (lambda v: _is_number(v) and 0 < v < 0.5, "a number between 0 and 0.5"),
    "primary": (_is_str, "a loss spec (string)"),
    "by": (lambda v: _is_str(v) or (isinstance(v, list) and all(_is_str(x) for x in v)),
           "a --by text or a list of them (strings)"),
    "min_rows": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 2,
                 "an integer >= 2"),
    "max_slices": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                   "a positive integer"),
    "top": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
            "an integer >= 0"),
    "max_slice": (lambda v: isinstance(v, dict) and all(_is_number(x) for x in v.values()),
                  "a table of loss = number"),
    "plugins": (lambda v: isinstance(v, list) and all(_is_str(x) for x in v),
                "a list of plugin files (.py) or module names (strings)"),
}


@dataclass(frozen=True)
class Setting:
    value: Any
    origin: str  # "flag", the config file's label, or "default"


@dataclass(frozen=True)
class ConfigFile:
    path: Path | None
    label: str
    values: dict[str, Any]


def find_config(explicit: Path | None, cwd: Path | None = None,
                use: bool = True) -> ConfigFile:
    """The configuration in force: ``--config``, else ./losscli.toml, else ./pyproject.toml;
    none at all with ``use=False`` (``--no-config``)."""
    if not use:
        if explicit is not None:
            raise ConfigError("--config and --no-config contradict each other: pass one")
        return ConfigFile(None, "default", {})
    cwd = cwd or Path.cwd()
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"--config {explicit}: no such file")
        return _read(explicit, explicit.name == "pyproject.toml")
    own = cwd / "losscli.toml"
    if own.is_file():
        return _read(own, False)
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        return _read(pyproject, True)
    return ConfigFile(None, "default", {})


def _read(path: Path, pyproject: bool) -> ConfigFile:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib

    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}), so not "
                          "valid TOML") from None
    except RecursionError:  # tomllib recurses once per level of nested arrays and tables
        raise ConfigError(f"{path}: not valid TOML (nested too deeply)") from None
    if pyproject or "tool" in doc:
        tool = doc.get("tool", {})
        if not isinstance(tool, dict):
            raise ConfigError(f"{path}: 'tool' must be a table")
        table = tool.get("losscli")
        label = f"{path.name} [tool.losscli]"
        if table is None:
            if pyproject:
                return ConfigFile(path, "default", {})
            table = {}
    else:
        table, label = doc, path.name
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.losscli] must be a table")
    for key, value in table.items():
        if key not in KEYS:
            raise ConfigError(f"{label}: unknown key '{key}' (known: {', '.join(KEYS)})")
        check, expected = KEYS[key]
        if not check(value):
            raise ConfigError(f"{label}: key '{key}' must be {expected}, got {value!r}")
    values = dict(table)
    if "baseline" in values:
        base = Path(values["baseline"])
        values["baseline"] = str(base if base.is_absolute() else path.parent / base)
    if "plugins" in values:  # plugin files are relative to the configuration file
        values["plugins"] = [str(path.parent / p) if p.endswith(".py") and
                             not Path(p).is_absolute() else p for p in values["plugins"]]
    return ConfigFile(path, label, values)


def resolve(flags: dict[str, Any], config: ConfigFile,
            defaults: dict[str, Any]) -> dict[str, Setting]:
    """Each setting from the flag when given (not None / not empty), else the file, else the
    default."""
    out: dict[str, Setting] = {}
    for key, default in defaults.items():
        flag = flags.get(key)
        if flag is not None and flag != [] and flag != {}:
            out[key] = Setting(flag, "flag")
        elif key in config.values:
            out[key] = Setting(config.values[key], config.label)
        else:
            out[key] = Setting(default, "default")
    return out
