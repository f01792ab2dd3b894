"""How a yfdocs process is configured: the one settings class, read at the entry points.

May import: pydantic and the standard library only; every other room builds on this.
"""

from __future__ import annotations

from config.settings import Settings

__all__ = ["Settings"]
