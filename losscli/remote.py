"""Inputs named by a URI (``s3://bucket/prefix/``, ``gs://``, ``abfs://``, ``hdfs://``,
``file://``), read through :mod:`pyarrow.fs`.

The filesystem is built from the URI where a file is read (:func:`open_file`), on a cluster's
worker as well as here: only the URI travels with a work unit, and credentials come from the
reading machine's environment (AWS_* variables, profiles, instance roles). ``FileSystem.from_uri``
honours AWS_ENDPOINT_URL and the URI's query (``?endpoint_override=...&region=...``), which a
bare ``S3FileSystem()`` does not. Messages name the URI with any credential in its query masked,
and scrub the credential variables' values from pyarrow's text.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from losscli.errors import InputError

if TYPE_CHECKING:
    import pyarrow.fs as pafs

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
#: query keys and environment variables whose values are never printed
_SECRET = re.compile(r"key|secret|token|password|credential|sas|signature", re.IGNORECASE)
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def is_uri(path: str) -> bool:
    """``scheme://...`` (two letters at least, so a Windows drive ``C:/`` is a path)."""
    return bool(_URI.match(path))


def shown(uri: str) -> str:
    """The URI as messages print it: query values that look like credentials masked."""
    if not is_uri(uri):
        return uri
    parts = urlsplit(uri)
    if not parts.query and "@" not in parts.netloc:
        return uri
    query = [(k, "***" if _SECRET.search(k) else v) for k, v in parse_qsl(parts.query)]
    netloc = parts.netloc.rpartition("@")[2]  # user:password@host
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe=":/*"),
                       parts.fragment))


def _scrub(text: str) -> str:
    """pyarrow's message on one line, without the value of any credential variable."""
    text = " ".join(text.split())
    for name, value in os.environ.items():
        if _SECRET.search(name) and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def error(exc: Exception, uri: str, doing: str = "") -> InputError:
    """A pyarrow error about ``uri`` as one line naming it (exit code 2)."""
    what = f"cannot {doing}" if doing else "cannot read"
    return InputError(f"{shown(uri)}: {what} ({_scrub(str(exc))})")


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem of ``uri`` and the path in it, built here from the environment."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise error(exc, uri, "open the filesystem") from None


def open_file(path: str) -> Any:
    """What pyarrow's readers take for ``path``: a local path as is, a URI's file opened for
    random access through its filesystem."""
    if not is_uri(path):
        return path
    import pyarrow as pa

    fs, inner = filesystem(path)
    try:
        return fs.open_input_file(inner)
    except (OSError, pa.ArrowException) as exc:
        raise error(exc, path) from None


def _with_path(uri: str, root: str, path: str) -> str:
    """The URI of ``path`` (a path in the filesystem of ``uri``, whose own path is ``root``):
    ``uri`` with ``root`` replaced, its query kept."""
    parts = urlsplit(uri)
    rest = path[len(root.rstrip("/")):].lstrip("/")
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return f"{base}/{rest}" + (f"?{parts.query}" if parts.query else "")


def listing(uri: str) -> tuple[bool, list[str], list[int]]:
    """(is a directory, the Parquet files' URIs in name order, their sizes in bytes) of a URI:
    a file, or a directory / prefix whose Parquet files (not hidden: no leading '.' or '_')
    are listed recursively."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    fs, root = filesystem(uri)
    try:
        info = fs.get_file_info(root)
        if info.type == pafs.FileType.File:
            return False, [uri], [int(info.size or 0)]
        if info.type == pafs.FileType.NotFound:
            raise InputError(f"{shown(uri)}: no such file, directory or bucket")
        found = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    except (OSError, pa.ArrowException) as exc:
        raise error(exc, uri, "list") from None
    files = sorted((f for f in found if f.type == pafs.FileType.File
                    and f.base_name.lower().endswith(PARQUET_SUFFIXES)
                    and not f.base_name.startswith((".", "_"))), key=lambda f: f.path)
    return (True, [_with_path(uri, root, f.path) for f in files],
            [int(f.size or 0) for f in files])
