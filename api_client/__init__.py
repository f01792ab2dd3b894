"""api_client."""

from __future__ import annotations
