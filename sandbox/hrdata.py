"""Seeded, deterministic HR data per tenant, and the readers' filters and paging.

Records carry a `lastModified` change timestamp (the real field name is not published;
an assumption). `changedAfter` is exclusive and `changedUntil` inclusive. A few records of
each kind are deleted and come back as `{"id", "isDeleted": true, "shortName"}`.

Tests add, change and delete persons at chosen change times through `seed_persons`
(`POST /_sandbox/persons`), so a delta sync by `changedAfter` can be checked against
known changes.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox.clock import format_utc_millis
from sandbox.config import DEFAULT_TENANT_ID

__all__ = [
    "FILTERS",
    "PERSON_FIELDS",
    "HrData",
    "HrRecord",
    "PersonSeedError",
    "TenantData",
    "build_tenant",
    "parse_filter_timestamp",
    "person_from_seed",
]

Record = dict[str, Any]

SPECIAL_PERSON_CODES = ("191166", "900001", "900002")

#: Query filters each list endpoint accepts (besides changedAfter/changedUntil and paging).
FILTERS: dict[str, tuple[str, ...]] = {
    "persons": (),
    "employments": ("personCode", "personId"),
    "organizationUnits": ("shortName",),
    "roleAssignments": ("personId", "shortName"),
    "jobProfiles": ("shortName",),
}

_TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_CHANGES_FROM = datetime(2021, 1, 1, tzinfo=UTC).timestamp()
_CHANGES_UNTIL = datetime(2024, 6, 30, tzinfo=UTC).timestamp()

_FIRST_NAMES = [
    ("Jan", "Male"), ("Pieter", "Male"), ("Sanne", "Female"), ("Eva", "Female"),
    ("Daan", "Male"), ("Fleur", "Female"), ("Lucas", "Male"), ("Noor", "Female"),
    ("Milan", "Male"), ("Julia", "Female"), ("Sem", "Male"), ("Lotte", "Female"),
    ("Alex", "Not Known"),
]  # fmt: skip
_LAST_NAMES = [
    ("", "Jansen"), ("de", "Vries"), ("van den", "Berg"), ("", "Bakker"), ("van", "Dijk"),
    ("", "Visser"), ("", "Smit"), ("de", "Boer"), ("", "Mulder"), ("van", "Leeuwen"),
    ("", "Meijer"), ("de", "Groot"), ("", "Bos"), ("van der", "Linden"),
]  # fmt: skip
_CITIES = ["Amsterdam", "Utrecht", "Rotterdam", "Den Haag", "Eindhoven", "Zwolle", "Groningen"]
_STREETS = ["Dorpsstraat", "Kerkweg", "Stationsplein", "Molenlaan", "Schoolstraat", "Parkweg"]
_ORG_UNITS = [
    ("1000", "Holding", None), ("1010A", "Finance", "1000"), ("1020A", "Human Resources", "1000"),
    ("1030A", "IT Services", "1000"), ("1040A", "Sales", "1000"), ("1041A", "Sales North", "1040A"),
    ("1042A", "Sales South", "1040A"), ("1050A", "Production", "1000"),
    ("1051A", "Assembly", "1050A"), ("1060A", "Learning & Development", "1020A"),
    ("1099X", "Dissolved unit", "1000"),
]  # fmt: skip
_JOB_PROFILES = [
    ("ACC01", "Accountant", "FIN"), ("CTRL1", "Controller", "FIN"), ("HRA01", "HR Advisor", "HR"),
    ("DEV01", "Software Developer", "IT"), ("OPS01", "Operations Engineer", "IT"),
    ("SAL01", "Account Manager", "SAL"), ("PRD01", "Production Worker", "PRD"),
    ("TRN01", "Trainer", "HR"), ("MGR01", "Manager", "MGT"), ("OLD01", "Retired profile", "MGT"),
]  # fmt: skip
_ROLES = [("MGR", "Manager"), ("HRM", "HR manager"), ("BUD", "Budget holder")]


def parse_filter_timestamp(value: str) -> float | None:
    """Epoch seconds for a strict `YYYY-MM-DDTHH:MM:SS.sssZ` value, None if malformed."""
    if not _TIMESTAMP_RE.fullmatch(value):
        return None
    try:
        moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return moment.timestamp()


@dataclass
class HrRecord:
    """A record, when it last changed, and whether it has been deleted."""

    key: str
    changed_at: float
    body: Record
    deleted: bool = False

    def render(self, transform: Callable[[Record], Record] | None = None) -> Record:
        if self.deleted:
            return {"id": self.key, "isDeleted": True, "shortName": self.key}
        body = transform(self.body) if transform else dict(self.body)
        body["lastModified"] = format_utc_millis(self.changed_at)
        return body


@dataclass
class TenantData:
    """Everything one tenant holds, each list ordered by id (the paging order)."""

    tenant_id: str
    resources: dict[str, list[HrRecord]] = field(default_factory=dict)
    cost_allocations: dict[str, HrRecord] = field(default_factory=dict)
    live_person_codes: set[str] = field(default_factory=set)


def _stamp(rng: random.Random) -> float:
    return round(rng.uniform(_CHANGES_FROM, _CHANGES_UNTIL), 3)


def _day(rng: random.Random, start: date, span_days: int) -> str:
    return (start + timedelta(days=rng.randrange(span_days))).isoformat()


def _person_codes(tenant_id: str, count: int, rng: random.Random) -> list[str]:
    codes: list[str] = list(SPECIAL_PERSON_CODES) if tenant_id == DEFAULT_TENANT_ID else []
    pool = rng.sample(range(100_000, 899_999), count + len(codes))
    codes.extend(str(number) for number in pool if str(number) not in codes)
    return sorted(codes[:count])


def _person(code: str, rng: random.Random) -> Record:
    first, gender = rng.choice(_FIRST_NAMES)
    second, _gender = rng.choice(_FIRST_NAMES)
    prefix, last = rng.choice(_LAST_NAMES)
    mail_name = f"{first}.{prefix.replace(' ', '')}{last}".lower()
    city = rng.choice(_CITIES)
    return {
        "id": code,
        "personCode": code,
        "initials": f"{first[0]}.{second[0]}.",
        "firstNames": f"{first} {second}",
        "knownAs": first,
        "lastName": last,
        "lastNamePrefix": prefix,
        "birthDate": _day(rng, date(1960, 1, 1), 40 * 365),
        "gender": gender,
        "emailAddresses": [
            {"type": "Business", "address": f"{mail_name}.{code}@example.com"},
            {"type": "Private", "address": f"{mail_name}@example.net"},
        ],
        "phoneNumbers": [
            {"type": "Business", "number": f"+31 20 {rng.randrange(1_000_000, 9_999_999)}"},
            {"type": "Mobile", "number": f"+31 6 {rng.randrange(10_000_000, 99_999_999)}"},
            {"type": "Home", "number": f"+31 30 {rng.randrange(1_000_000, 9_999_999)}"},
        ],
        "addresses": [
            {
                "type": "Home",
                "street": rng.choice(_STREETS),
                "houseNumber": str(rng.randrange(1, 200)),
                "houseNumberAdditional": rng.choice(["", "A", "bis"]),
                "locationDesignation": "",
                "postalCode": f"{rng.randrange(1000, 9999)} {rng.choice(['AB', 'KL', 'XZ'])}",
                "city": city,
                "region": "",
                "country": "NL",
                "effectiveDate": _day(rng, date(2010, 1, 1), 12 * 365),
            }
        ],
    }


_PRIVATE_EMAIL_TYPES = {"Private"}
_PRIVATE_PHONE_TYPES = {"Home", "Mobile"}


def strip_private_contact(person: Record) -> Record:
    """A person as seen without the GetPrivateContactDetails scope."""
    visible = dict(person)
    visible["emailAddresses"] = [
        item for item in person["emailAddresses"] if item["type"] not in _PRIVATE_EMAIL_TYPES
    ]
    visible["phoneNumbers"] = [
        item for item in person["phoneNumbers"] if item["type"] not in _PRIVATE_PHONE_TYPES
    ]
    visible["addresses"] = []
    return visible


def build_tenant(tenant_id: str, person_count: int, seed: int) -> TenantData:
    """Deterministic data for one tenant: same seed and tenant, same records."""
    rng = random.Random(f"hr:{seed}:{tenant_id}")
    data = TenantData(tenant_id)
    units = [
        HrRecord(
            short,
            _stamp(rng),
            {
                "id": short,
                "shortName": short,
                "fullName": name,
                "parentOrgUnit": parent,
                "organizationUnitType": "AFD" if parent else "HLD",
                "isBlocked": False,
                "costCenterCode": f"KP{short[:4]}",
            },
            deleted=short.endswith("X"),
        )
        for short, name, parent in _ORG_UNITS
    ]
    profiles = [
        HrRecord(
            short,
            _stamp(rng),
            {"id": short, "shortName": short, "fullName": name, "jobFamily": family},
            deleted=short.startswith("OLD"),
        )
        for short, name, family in _JOB_PROFILES
    ]
    live_units = [unit.key for unit in units if not unit.deleted]
    live_profiles = [profile.key for profile in profiles if not profile.deleted]
    persons: list[HrRecord] = []
    employments: list[HrRecord] = []
    roles: list[HrRecord] = []
    for index, code in enumerate(_person_codes(tenant_id, person_count, rng)):
        deleted = index % 60 == 59 and code not in SPECIAL_PERSON_CODES
        persons.append(HrRecord(code, _stamp(rng), _person(code, rng), deleted=deleted))
        if not deleted:
            data.live_person_codes.add(code)
        for number in range(1, 3 if rng.random() < 0.1 else 2):
            employment_id = f"{code}-{number}"
            hire = _day(rng, date(2000, 1, 1), 23 * 365)
            employments.append(
                HrRecord(
                    employment_id,
                    _stamp(rng),
                    {
                        "id": employment_id,
                        "personId": code,
                        "personCode": code,
                        "employmentCode": str(number),
                        "hireDate": hire,
                        "originalHireDate": hire,
                        "dischargeDate": None if number == 1 else _day(rng, date(2024, 1, 1), 700),
                        "employmentType": rng.choice(["Internal employee", "Contractor"]),
                        "organizationUnit": rng.choice(live_units),
                        "jobProfile": rng.choice(live_profiles),
                        "workingAmount": {
                            "amountOfWork": rng.choice([16.0, 24.0, 32.0, 36.0, 40.0]),
                            "unitOfWork": "hours",
                            "periodOfWork": "week",
                        },
                        "contractType": rng.choice(["Permanent", "Temporary"]),
                        "classification": rng.choice(["A", "B", "C"]),
                        "payrollClientCode": "1001",
                        "payrollInstitutionCode": "01",
                    },
                    deleted=deleted,
                )
            )
            for sequence in range(2 if rng.random() < 0.2 else 1):
                allocation_id = f"{code} {number} {sequence}"
                data.cost_allocations[allocation_id] = HrRecord(
                    allocation_id,
                    _stamp(rng),
                    {
                        "id": allocation_id,
                        "personCode": code,
                        "employmentCode": str(number),
                        "sequenceNumber": sequence,
                        "costTypeCode": "LOON",
                        "costTypeName": "Salary",
                        "costCenterCode": f"KP{rng.randrange(100, 999)}",
                        "costCenterName": "Cost centre",
                        "costUnitCode": "",
                        "costUnitName": "",
                        "percentage": 100.0 if sequence == 0 else 50.0,
                    },
                    deleted=deleted,
                )
        if index % 20 == 0 and not deleted:
            role_code, role_name = rng.choice(_ROLES)
            role_id = f"RA{code}"
            roles.append(
                HrRecord(
                    role_id,
                    _stamp(rng),
                    {
                        "id": role_id,
                        "organizationUnitCode": rng.choice(live_units),
                        "shortName": role_code,
                        "roleName": role_name,
                        "personCode": code,
                        "personId": code,
                        "startDate": _day(rng, date(2015, 1, 1), 3000),
                        "endDate": None,
                    },
                )
            )
    data.resources = {
        "persons": persons,
        "employments": employments,
        "organizationUnits": units,
        "roleAssignments": roles,
        "jobProfiles": profiles,
    }
    return data


#: The fields of a person record, in the order the readers give them.
PERSON_FIELDS = (
    "id",
    "personCode",
    "initials",
    "firstNames",
    "knownAs",
    "lastName",
    "lastNamePrefix",
    "birthDate",
    "gender",
    "emailAddresses",
    "phoneNumbers",
    "addresses",
)
_LIST_FIELDS = ("emailAddresses", "phoneNumbers", "addresses")
_CODE_RE = re.compile(r"[A-Za-z0-9._-]{1,32}")


class PersonSeedError(ValueError):
    """A seeded person is not of the shape the readers serve."""


def person_from_seed(item: object) -> Record:
    """A person record from a test's seed: its fields kept, the missing ones empty."""
    if not isinstance(item, dict):
        raise PersonSeedError("each person must be a JSON object")
    code = item.get("personCode")
    if not isinstance(code, str) or not _CODE_RE.fullmatch(code):
        raise PersonSeedError(f"personCode {code!r} must be 1-32 letters, digits, '.', '_', '-'")
    record_id = item.get("id", code)
    if not isinstance(record_id, str) or not _CODE_RE.fullmatch(record_id):
        raise PersonSeedError(f"id {record_id!r} must be 1-32 letters, digits, '.', '_', '-'")
    person: Record = {name: None for name in PERSON_FIELDS}
    for name in _LIST_FIELDS:
        person[name] = []
    person.update(item)
    person["id"] = record_id
    for name in _LIST_FIELDS:
        entries = person[name]
        if not isinstance(entries, list) or not all(
            isinstance(entry, dict) and isinstance(entry.get("type"), str) for entry in entries
        ):
            raise PersonSeedError(f"{name} must be a list of objects with a 'type'")
    for email in person["emailAddresses"]:
        if not isinstance(email.get("address"), str):
            raise PersonSeedError("each of emailAddresses needs an 'address'")
    return person


class HrData:
    """All tenants' data: seeded at start, changed only through `seed_persons`."""

    def __init__(self, tenants: dict[str, int], seed: int) -> None:
        self._lock = threading.Lock()
        self._tenants = {code: build_tenant(code, count, seed) for code, count in tenants.items()}

    def tenant(self, tenant_id: str) -> TenantData | None:
        return self._tenants.get(tenant_id)

    def person_exists(self, tenant_id: str, person_code: str) -> bool:
        data = self._tenants.get(tenant_id)
        with self._lock:
            return data is not None and person_code in data.live_person_codes

    def seed_persons(
        self,
        tenant_id: str,
        *,
        persons: list[Record],
        deleted: list[str],
        changed_at: float,
    ) -> None:
        """Add or replace `persons` and delete the ids in `deleted`, all changed at `changed_at`.

        A deleted person reads as `{"id", "isDeleted": true, "shortName"}` from then on and
        takes no uploads; an id never seen before can be deleted too (the HR system removed
        it before the reader saw it). Seeding a deleted person again brings it back.
        """
        data = self._tenants.get(tenant_id)
        if data is None:
            raise PersonSeedError(f"unknown tenant {tenant_id!r}")
        with self._lock:
            by_id = {record.key: record for record in data.resources["persons"]}
            for person in persons:
                old = by_id.get(person["id"])
                if old is not None and not old.deleted:
                    data.live_person_codes.discard(old.body.get("personCode"))
                by_id[person["id"]] = HrRecord(person["id"], changed_at, person)
                data.live_person_codes.add(person["personCode"])
            for record_id in deleted:
                old = by_id.get(record_id)
                body = old.body if old is not None else {"id": record_id}
                if old is not None and not old.deleted:
                    data.live_person_codes.discard(old.body.get("personCode"))
                by_id[record_id] = HrRecord(record_id, changed_at, body, deleted=True)
            data.resources["persons"] = [by_id[key] for key in sorted(by_id)]

    def select(
        self,
        tenant_id: str,
        resource: str,
        *,
        filters: dict[str, str],
        changed_after: float | None,
        changed_until: float | None,
    ) -> list[HrRecord]:
        """Records of one resource matching the filters, in paging order."""
        data = self._tenants.get(tenant_id)
        if data is None:
            return []
        with self._lock:
            records = list(data.resources[resource])
        selected = []
        for record in records:
            if changed_after is not None and record.changed_at <= changed_after:
                continue
            if changed_until is not None and record.changed_at > changed_until:
                continue
            if any(record.body.get(name) != value for name, value in filters.items()):
                continue
            selected.append(record)
        return selected
