"""The HTTP intake's callers: keys made, stored as digests, checked in constant time.

A key is `yfk_<key id>_<secret>`: the key id is public (it finds the row and `keys list`
shows it), the secret is 256 random bits. Only the SHA-256 of the whole key is stored, and
a presented key is compared with `hmac.compare_digest`, so neither the table nor the time
an answer takes gives a key away. A caller owns the tenants it was made for and nothing
else; it may also carry:

- a Standard Webhooks signing secret (`whsec_...`), kept as given since HMACs need it;
- a static secret for senders that can only add a fixed header (Moodle's tool_trigger),
  stored as a digest and compared in constant time;
- the hosts certificates may be fetched from (`intake.certificate_fetch`);
- the Canvas root accounts whose signed Live Events it takes: Canvas signs every
  institution's events with the same keys, so a signature alone says "from Canvas", not
  "from our Canvas".

Errors (all refusals, all `EnqueueRejected`, so an LMS gets one clear 4xx):

    EnqueueRejected
    ├── CallerNotAuthenticated    (no key, a wrong or revoked key, a bad signature: 401)
    └── TenantNotPermitted        (a tenant the key does not own: 403)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine

from intake.validation import EnqueueRejected, InvalidTenant, validate_tenant_id
from models import intake_keys as key_table
from models.errors import Decision, YfdocsError
from models.tables import IntakeKey

__all__ = [
    "KEY_PREFIX",
    "CallerNotAuthenticated",
    "IntakeCaller",
    "InvalidKeyOption",
    "NewIntakeKey",
    "TenantNotPermitted",
    "add_key",
    "authenticate_key",
    "caller_named",
    "check_static_secret",
    "key_tenants",
    "list_callers",
    "new_static_secret",
    "new_webhook_secret",
    "revoke_key",
]

KEY_PREFIX = "yfk"
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
_KEY = re.compile(r"yfk_([0-9a-f]{12})_([A-Za-z0-9_-]{40,64})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HOST_NAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)
_CANVAS_ACCOUNT = re.compile(r"[A-Za-z0-9]{8,64}")
_MIN_WEBHOOK_SECRET_BYTES = 16
# Compared against when no row has the key id, so a wrong id costs the time a wrong secret does.
_NO_SUCH_DIGEST = hashlib.sha256(b"no such key").hexdigest()


class CallerNotAuthenticated(EnqueueRejected):
    """The request carries no valid key (or signature) for the intake: answered 401."""

    def __init__(self, message: str, field: str = "Authorization") -> None:
        super().__init__(field, message)


class TenantNotPermitted(EnqueueRejected):
    """The key is valid but does not own the tenant the request names: answered 403."""


class InvalidKeyOption(YfdocsError):
    """`yfdocs intake keys add` was given a name, tenant, host or secret it cannot use."""

    decision = Decision.REFUSE


@dataclass(frozen=True)
class IntakeCaller:
    """A caller as the intake sees it once its key (or signature) was checked."""

    name: str
    key_id: str
    tenants: tuple[str, ...]
    fetch_hosts: tuple[str, ...]
    canvas_accounts: tuple[str, ...]
    created_at: datetime
    webhook_secret: str | None = field(default=None, repr=False)
    static_secret_sha256: str | None = field(default=None, repr=False)

    @property
    def has_webhook_secret(self) -> bool:
        return self.webhook_secret is not None

    @property
    def has_static_secret(self) -> bool:
        return self.static_secret_sha256 is not None

    def tenant_for(self, requested: str | None) -> str:
        """The tenant a request is for: the one it names, if this caller owns it, or the
        caller's only tenant when it names none."""
        if requested is None or (isinstance(requested, str) and not requested.strip()):
            if len(self.tenants) == 1:
                return self.tenants[0]
            raise InvalidTenant(
                "tenant_id", "this key serves several tenants: name one in tenant_id"
            )
        tenant_id = validate_tenant_id(requested)
        if tenant_id not in self.tenants:
            raise TenantNotPermitted("tenant_id", f"this key may not deliver to tenant {tenant_id}")
        return tenant_id


@dataclass(frozen=True)
class NewIntakeKey:
    """A caller just made, with the secrets that are shown this once and never again."""

    caller: IntakeCaller
    key: str = field(repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    static_secret: str | None = field(default=None, repr=False)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _caller(row: IntakeKey) -> IntakeCaller:
    return IntakeCaller(
        name=row.name,
        key_id=row.key_id,
        tenants=tuple(json.loads(row.tenants)),
        fetch_hosts=tuple(json.loads(row.fetch_hosts)),
        canvas_accounts=tuple(json.loads(row.canvas_accounts)),
        created_at=row.created_at,
        webhook_secret=row.webhook_secret,
        static_secret_sha256=row.static_secret_sha256,
    )


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def new_static_secret() -> str:
    """A secret for a fixed header: 256 random bits."""
    return secrets.token_urlsafe(32)


def _checked_webhook_secret(value: str) -> str:
    if not value.startswith(WEBHOOK_SECRET_PREFIX):
        raise InvalidKeyOption("a webhook secret starts with whsec_")
    try:
        raw = base64.b64decode(value[len(WEBHOOK_SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKeyOption("a webhook secret is whsec_ followed by base64") from None
    if len(raw) < _MIN_WEBHOOK_SECRET_BYTES:
        raise InvalidKeyOption(
            f"a webhook secret needs at least {_MIN_WEBHOOK_SECRET_BYTES} bytes of key"
        )
    return value


def _checked_fetch_host(value: str) -> str:
    """A host name, an IP address or a network (CIDR), lower-cased."""
    text = value.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        pass
    if not _HOST_NAME.fullmatch(text):
        raise InvalidKeyOption(f"{value!r} is not a host name, IP address or network")
    return text


def _checked_canvas_account(value: str) -> str:
    text = value.strip()
    if not _CANVAS_ACCOUNT.fullmatch(text):
        raise InvalidKeyOption(f"{value!r} is not a Canvas root account uuid")
    return text


def _checked_tenants(tenants: Iterable[str]) -> tuple[str, ...]:
    checked: list[str] = []
    for tenant in tenants:
        try:
            checked.append(validate_tenant_id(tenant))
        except InvalidTenant as exc:
            raise InvalidKeyOption(exc.message) from None
    if not checked:
        raise InvalidKeyOption("a key needs at least one --tenant")
    return tuple(dict.fromkeys(checked))


def add_key(
    engine: Engine,
    *,
    name: str,
    tenants: Sequence[str],
    fetch_hosts: Sequence[str] = (),
    canvas_accounts: Sequence[str] = (),
    webhook_secret: str | None = None,
    static_secret: str | None = None,
) -> NewIntakeKey:
    """Make and store a caller; the key (and the secrets given or made) come back once."""
    if not _NAME.fullmatch(name):
        raise InvalidKeyOption(f"invalid key name {name!r}: 1-64 letters, digits, '.', '_' or '-'")
    tenant_ids = _checked_tenants(tenants)
    hosts = tuple(dict.fromkeys(_checked_fetch_host(host) for host in fetch_hosts))
    accounts = tuple(dict.fromkeys(_checked_canvas_account(item) for item in canvas_accounts))
    if webhook_secret is not None:
        webhook_secret = _checked_webhook_secret(webhook_secret)
    if static_secret is not None and len(static_secret) < 16:
        raise InvalidKeyOption("a static secret needs at least 16 characters")
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    row = IntakeKey(
        name=name,
        key_id=key_id,
        key_sha256=_digest(key),
        tenants=json.dumps(list(tenant_ids)),
        fetch_hosts=json.dumps(list(hosts)),
        canvas_accounts=json.dumps(list(accounts)),
        webhook_secret=webhook_secret,
        static_secret_sha256=None if static_secret is None else _digest(static_secret),
    )
    key_table.insert_key(engine, row)
    return NewIntakeKey(
        caller=_caller(row), key=key, webhook_secret=webhook_secret, static_secret=static_secret
    )


def list_callers(engine: Engine) -> list[IntakeCaller]:
    """Every caller, by name (never a key: it is not stored)."""
    return [_caller(row) for row in key_table.list_keys(engine)]


def revoke_key(engine: Engine, name: str) -> bool:
    """Remove the caller; its key stops working at once. False if there was none."""
    return key_table.delete_key(engine, name)


def authenticate_key(engine: Engine, presented: str | None) -> IntakeCaller:
    """The caller this key belongs to; `CallerNotAuthenticated` for anything else."""
    if not presented:
        raise CallerNotAuthenticated("no intake key: send Authorization: Bearer <key>")
    match = _KEY.fullmatch(presented.strip())
    row = key_table.key_by_id(engine, match.group(1)) if match else None
    expected = row.key_sha256 if row is not None else _NO_SUCH_DIGEST
    if not hmac.compare_digest(_digest(presented.strip()), expected) or row is None:
        raise CallerNotAuthenticated("the intake key is not valid (wrong, or revoked)")
    return _caller(row)


def caller_named(engine: Engine, name: str) -> IntakeCaller:
    """The caller of this name, for routes that name their key in the path and prove it
    another way (a signature, a static secret); unknown names are refused like bad keys."""
    row = key_table.key_by_name(engine, name) if _NAME.fullmatch(name) else None
    if row is None:
        raise CallerNotAuthenticated(f"no intake key is named {name!r:.70}")
    return _caller(row)


def check_static_secret(caller: IntakeCaller, presented: str | None, header: str) -> None:
    """Accept the request only if `presented` is the caller's static secret."""
    if caller.static_secret_sha256 is None:
        raise CallerNotAuthenticated(f"the key {caller.name!r} has no static secret", header)
    if not presented or not hmac.compare_digest(_digest(presented), caller.static_secret_sha256):
        raise CallerNotAuthenticated(f"the {header} header does not match", header)


def key_tenants(engine: Engine) -> set[str]:
    """Every tenant some caller may deliver to."""
    return {tenant for caller in list_callers(engine) for tenant in caller.tenants}
