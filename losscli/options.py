"""Defaults of the engine's read and gradient options, shared by the library and the CLI.

The engine imports these without reaching the CLI's settings (and their TOML reading);
``settings.py`` imports them, never the reverse.
"""

from __future__ import annotations

#: Rows per chunk: 2**17 float64 rows (1 MiB a column) keep a chunk's temporaries in cache.
DEFAULT_CHUNK_ROWS = 1 << 17
#: |g| at or below this counts as vanishing; at or above EXPLODE_TOL as exploding.
VANISH_TOL = 1e-6
EXPLODE_TOL = 1e3

__all__ = ["DEFAULT_CHUNK_ROWS", "EXPLODE_TOL", "VANISH_TOL"]
