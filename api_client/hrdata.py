"""HR records from the Get_Basic readers, and the pages they come in.

A page holds its records in `value` (some Youforce APIs say `values`) and, when more follow,
a `nextLink` that the client follows exactly as given. A record deleted in the HR system
comes back as `{"id", "isDeleted": true, "shortName"}` and is surfaced as such, so a sync can
remove it instead of mistaking it for a person with no name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["HrPage", "HrRecord", "page_from_payload", "record_from_payload"]


@dataclass(frozen=True)
class HrRecord:
    """One record (person, employment, organization unit, ...) with its raw fields in `data`."""

    id: str | None
    is_deleted: bool
    data: Mapping[str, Any] = field(repr=False)

    def get(self, key: str, default: Any = None) -> Any:
        """A field of the record, like `dict.get`."""
        return self.data.get(key, default)


@dataclass(frozen=True)
class HrPage:
    """One page of records and the link to the next page, if any."""

    records: tuple[HrRecord, ...]
    next_link: str | None


def record_from_payload(item: Any) -> HrRecord:
    """An `HrRecord` from one JSON object; ValueError for anything else."""
    if not isinstance(item, dict):
        raise ValueError(f"a record is not a JSON object: {item!r:.80}")
    raw_id = item.get("id")
    record_id = None if raw_id is None else str(raw_id)
    return HrRecord(
        id=record_id, is_deleted=item.get("isDeleted") is True, data=MappingProxyType(item)
    )


def page_from_payload(payload: Any) -> HrPage:
    """A page from a reader's answer; ValueError when it is not the documented shape."""
    if not isinstance(payload, dict):
        raise ValueError("the page is not a JSON object")
    items = payload.get("value")
    if items is None:
        items = payload.get("values")
    if not isinstance(items, list):
        raise ValueError("the page has no 'value' (or 'values') list")
    next_link = payload.get("nextLink")
    if next_link is None:
        next_link = payload.get("@odata.nextLink")
    if next_link is not None and not isinstance(next_link, str):
        raise ValueError(f"nextLink {next_link!r} is not a string")
    return HrPage(
        records=tuple(record_from_payload(item) for item in items),
        next_link=next_link or None,
    )
