"""The Youforce Learning API client: tokens, document uploads, ticket status, HR readers.

It knows HTTP (requests) and nothing of Celery or the database. Errors form one tree,
drawn in `api_client.errors`; pacing is delegated to a `RateGovernor`; tokens are shared
through a `TokenCache`.
"""

from __future__ import annotations

from .client import DEFAULT_USER_AGENT, YouforceClient
from .documents import DocumentType, UploadReceipt
from .endpoints import check_endpoint_url, is_loopback_host
from .errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ConnectError,
    ConnectionDropped,
    ConnectTimeout,
    CredentialsRejectedError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RateLimitKind,
    ReadTimeout,
    ResponseFormatError,
    ServerError,
    TransportError,
    UnexpectedStatusError,
    YouforceError,
    error_for_response,
    parse_retry_after,
    rate_limit_kind,
)
from .governor import CallSlot, RateGovernor, UnlimitedGovernor
from .hrdata import HrRecord
from .tickets import DEFAULT_STATUS_NUMBER_MAP, TicketState, TicketStatus, parse_status_number_map
from .tokens import (
    AccessToken,
    InMemoryTokenCache,
    TokenCache,
    TokenProvider,
    TokenRefusal,
    credentials_fingerprint,
)
from .transport import Timeouts

__all__ = [
    "DEFAULT_STATUS_NUMBER_MAP",
    "DEFAULT_USER_AGENT",
    "APIStatusError",
    "AccessToken",
    "AuthenticationError",
    "BadRequestError",
    "CallSlot",
    "ConflictError",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionDropped",
    "CredentialsRejectedError",
    "DocumentType",
    "HrRecord",
    "InMemoryTokenCache",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateGovernor",
    "RateLimitError",
    "RateLimitKind",
    "ReadTimeout",
    "ResponseFormatError",
    "ServerError",
    "TicketState",
    "TicketStatus",
    "Timeouts",
    "TokenCache",
    "TokenProvider",
    "TokenRefusal",
    "TransportError",
    "UnexpectedStatusError",
    "UnlimitedGovernor",
    "UploadReceipt",
    "YouforceClient",
    "YouforceError",
    "check_endpoint_url",
    "credentials_fingerprint",
    "error_for_response",
    "is_loopback_host",
    "parse_retry_after",
    "parse_status_number_map",
    "rate_limit_kind",
]
