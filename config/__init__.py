"""How a yfdocs process is configured: the one settings class, read at the entry points.

May import: pydantic, and `api_client` for its rule on which endpoint URLs are safe; every
room above builds on this.
"""

from __future__ import annotations

from config.document_store import POSTGRES_MAX_DOCUMENT_BYTES, StoreKind, StoreLocation
from config.settings import Settings

__all__ = ["POSTGRES_MAX_DOCUMENT_BYTES", "Settings", "StoreKind", "StoreLocation"]
