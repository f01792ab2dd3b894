"""`YouforceClient`: uploads, ticket status and the HR readers of the Youforce Learning API.

The client knows HTTP and nothing else. Every call: a token from the shared cache, the three
mandatory headers, one governor slot, a (connect, read) timeout, no redirects. The only retry
inside the client is the one the API contract asks for: on a 401 the token is dropped, a new
one fetched, and the call sent once more (with a fresh upload body). Everything else is
raised as an exception from `api_client.errors`, whose `retryable` and `retry_after` let the
worker decide.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin, urlsplit

import requests

from .documents import DocumentType, UploadPdf, UploadReceipt, form_data_body, related_body
from .endpoints import check_endpoint_url
from .errors import (
    CredentialsRejectedError,
    InvalidRequestError,
    ResponseFormatError,
    error_for_response,
)
from .governor import RateGovernor, UnlimitedGovernor
from .hrdata import HrRecord, page_from_payload, record_from_payload
from .multipart import MultipartBody
from .tickets import TicketStatus, parse_status_number_map, ticket_status_from_payload
from .tokens import AccessToken, InMemoryTokenCache, TokenCache, TokenProvider, utc_now
from .transport import Timeouts, new_session, send
from .validation import (
    quote_segment,
    validate_changed_range,
    validate_filename,
    validate_person_code,
    validate_query_text,
    validate_record_id,
    validate_take,
    validate_tenant_id,
    validate_ticket_id,
    validate_valid_from,
)

__all__ = ["DEFAULT_USER_AGENT", "YouforceClient"]


def _version() -> str:
    try:
        return metadata.version("yfdocs")
    except metadata.PackageNotFoundError:
        return "0"


DEFAULT_USER_AGENT = f"yfdocs/{_version()}"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

PdfSource = os.PathLike[str] | str | BinaryIO


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class YouforceClient:
    """One client per process (or per worker thread pool): one pooled `requests.Session`."""

    def __init__(
        self,
        *,
        api_url: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        token_cache: TokenCache | None = None,
        governor: RateGovernor | None = None,
        timeouts: Timeouts = Timeouts(),  # noqa: B008 - frozen, so a shared default is safe
        status_number_map: Mapping[int, str] | str | None = None,
        token_refresh_margin: float = 300.0,
        credentials_retry: float = 900.0,
        session: requests.Session | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        clock: Callable[[], datetime] = utc_now,
        plain_http_hosts: Collection[str] = (),
    ) -> None:
        # The token and the secret go to both URLs: plain HTTP or unchecked certificates
        # only towards loopback, or a host named in `plain_http_hosts` (a sandbox on a
        # private network; see api_client.endpoints).
        verify = session.verify if session is not None else True
        check_endpoint_url(api_url, verify=verify, plain_http_hosts=plain_http_hosts)
        check_endpoint_url(token_url, verify=verify, plain_http_hosts=plain_http_hosts)
        self.api_url = api_url.rstrip("/")
        self.timeouts = timeouts
        self.user_agent = user_agent
        self.governor: RateGovernor = governor if governor is not None else UnlimitedGovernor()
        self._owns_session = session is None
        self._session = session if session is not None else new_session(user_agent)
        self._number_map = parse_status_number_map(status_number_map)
        self.tokens = TokenProvider(
            token_url,
            client_id,
            client_secret,
            cache=token_cache if token_cache is not None else InMemoryTokenCache(clock),
            session=self._session,
            timeouts=timeouts,
            governor=self.governor,
            margin_seconds=token_refresh_margin,
            clock=clock,
            user_agent=user_agent,
            refusal_wait=credentials_retry,
            refusal_wait_cap=max(credentials_retry, 86400.0),
        )

    def __repr__(self) -> str:
        return f"YouforceClient(api_url={self.api_url!r}, client_id={self.tokens.client_id!r})"

    def __enter__(self) -> YouforceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool, if the client created it."""
        if self._owns_session:
            self._session.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _headers(self, tenant_id: str, token: AccessToken) -> dict[str, str]:
        return {
            "Authorization": token.authorization,
            "Accept": "application/json",
            "X-Raet-Tenant-Id": tenant_id,
            "User-Agent": self.user_agent,
        }

    def _call(
        self,
        kind: str,
        tenant_id: str,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Callable[[], MultipartBody] | None = None,
    ) -> requests.Response:
        """One API call with the single 401 refresh; any non-2xx answer is raised."""
        token = self.tokens.token(tenant_id)
        refreshed = False
        while True:
            headers = self._headers(tenant_id, token)
            data: MultipartBody | None = None
            if body is not None:
                data = body()
                headers["Content-Type"] = data.content_type
            response = send(
                self._session,
                self.governor,
                kind=kind,
                tenant_id=tenant_id,
                method=method,
                url=url,
                timeouts=self.timeouts,
                headers=headers,
                params=params,
                data=data,
            )
            if response.status_code == 401 and not refreshed:
                response.close()
                refreshed = True
                self.tokens.invalidate(tenant_id, token)
                token = self.tokens.token(tenant_id)
                continue
            if response.status_code == 401:
                raise self._fresh_token_refused(response, method, tenant_id)
            if not 200 <= response.status_code <= 299:
                raise error_for_response(response, method)
            return response

    def _fresh_token_refused(
        self, response: requests.Response, method: str, tenant_id: str
    ) -> CredentialsRejectedError:
        """A 401 for a token just issued: the API does not take this app's tokens for the
        tenant, and every further token would only spend the monthly budget. Remembered
        like a refusal at the token endpoint, so the fleet stops asking for a while."""
        error = error_for_response(response, method)
        answer = error.api_message or "HTTP 401"
        retry_at = self.tokens.remember_refusal(
            tenant_id, f"the API refused a token just issued: {answer}"
        )
        return CredentialsRejectedError.from_answer(error, retry_at=retry_at)

    @staticmethod
    def _json(response: requests.Response, method: str) -> Any:
        text = response.text
        try:
            return json.loads(text)
        except ValueError:
            raise ResponseFormatError(
                f"{method} {response.url} -> {response.status_code}: the answer is not JSON",
                method=method,
                url=response.url,
                status_code=response.status_code,
                body=text,
                correlation_id=response.headers.get("X-Correlation-Id"),
            ) from None

    @staticmethod
    def _format_error(
        response: requests.Response, method: str, problem: str
    ) -> ResponseFormatError:
        return ResponseFormatError(
            f"{method} {response.url} -> {response.status_code}: {problem}",
            method=method,
            url=response.url,
            status_code=response.status_code,
            body=response.text,
            correlation_id=response.headers.get("X-Correlation-Id"),
        )

    # -- documents --------------------------------------------------------------------------

    @staticmethod
    def _upload_args(
        pdf: PdfSource,
        size: int | None,
        description: object,
        valid_from: object,
        filename: object,
    ) -> tuple[UploadPdf, str, date | None]:
        if not isinstance(description, str) or not description.strip():
            raise InvalidRequestError("description is required (a proper text, not blank)")
        if _CONTROL.search(description):
            raise InvalidRequestError("description must not contain control characters")
        valid = validate_valid_from(valid_from)
        if isinstance(pdf, str | os.PathLike):
            path = Path(pdf)
            try:
                stat = path.stat()
            except OSError as exc:
                raise InvalidRequestError(f"cannot read {path}: {exc.strerror}") from None
            if not path.is_file():
                raise InvalidRequestError(f"{path} is not a regular file")
            name = validate_filename(path.name if filename is None else filename)
            return UploadPdf(path, stat.st_size, name), description, valid
        if filename is None:
            raise InvalidRequestError("filename is required for an upload from a stream")
        if not pdf.seekable():
            # A fresh body per attempt (the 401 retry) must send the document again.
            raise InvalidRequestError("an upload stream must be seekable")
        start = pdf.tell()
        held = pdf.seek(0, os.SEEK_END) - start
        pdf.seek(start)
        if size is not None and size != held:
            # The announced Content-Length must be what is sent: a stored document of
            # another length than its job records is refused before any call.
            raise InvalidRequestError(f"the stream holds {held} bytes, not the {size} expected")
        return UploadPdf(pdf, held, validate_filename(filename), start), description, valid

    def _upload(self, tenant_id: str, url: str, body: Callable[[], MultipartBody]) -> UploadReceipt:
        response = self._call("upload", tenant_id, "POST", url, body=body)
        payload = self._json(response, "POST")
        correlation_id = response.headers.get("X-Correlation-Id")
        if correlation_id is None and isinstance(payload, dict):
            found = payload.get("correlationId")
            correlation_id = found if isinstance(found, str) else None
        try:
            return UploadReceipt.from_payload(payload, correlation_id, self._number_map)
        except ValueError as exc:
            raise self._format_error(response, "POST", str(exc)) from None

    def upload_document(
        self,
        tenant_id: str,
        person_code: str,
        document_type: DocumentType | str,
        pdf: PdfSource,
        *,
        description: str,
        valid_from: date | None = None,
        filename: str | None = None,
        size: int | None = None,
    ) -> UploadReceipt:
        """Upload a PDF (v1.1, multipart/form-data) into the person's file; returns the ticket.

        `pdf` is a path, or an open seekable binary stream sent from where it stands to its
        end; `size`, when given, must be that length (it is checked before any call).
        `filename` defaults to the file's own name (a stream needs one); `valid_from` None
        sends ValidFrom empty (the API then uses its system date). Either way the PDF is
        streamed in chunks, never held whole.
        """
        tenant = validate_tenant_id(tenant_id)
        code = validate_person_code(person_code)
        try:
            kind = DocumentType.parse(document_type)
        except ValueError as exc:
            raise InvalidRequestError(str(exc)) from None
        document, text, valid = self._upload_args(pdf, size, description, valid_from, filename)
        url = f"{self.api_url}/learning/v1.1/employees/{quote_segment(code)}/documents/{kind.value}"
        return self._upload(tenant, url, lambda: form_data_body(text, valid, document))

    def upload_certificate_v10(
        self,
        tenant_id: str,
        person_code: str,
        pdf: PdfSource,
        *,
        description: str,
        valid_from: date | None = None,
        filename: str | None = None,
        size: int | None = None,
    ) -> UploadReceipt:
        """Upload a certificate through the legacy v1.0 endpoint (multipart/related); `pdf`
        as for `upload_document`."""
        tenant = validate_tenant_id(tenant_id)
        code = validate_person_code(person_code)
        document, text, valid = self._upload_args(pdf, size, description, valid_from, filename)
        url = f"{self.api_url}/learning/v1.0/employees/{quote_segment(code)}/documents/certificate"
        return self._upload(tenant, url, lambda: related_body(text, valid, document))

    def ticket_status(self, tenant_id: str, ticket_id: str) -> TicketStatus:
        """The current status of an upload ticket."""
        tenant = validate_tenant_id(tenant_id)
        ticket = validate_ticket_id(ticket_id)
        url = f"{self.api_url}/learning/v1.0/employees/documents/{quote_segment(ticket)}/status"
        response = self._call("status", tenant, "GET", url)
        payload = self._json(response, "GET")
        try:
            return ticket_status_from_payload(payload, self._number_map)
        except ValueError as exc:
            raise self._format_error(response, "GET", str(exc)) from None

    # -- HR data ----------------------------------------------------------------------------

    def _records(
        self, tenant_id: str, path: str, params: dict[str, str | int]
    ) -> Iterator[HrRecord]:
        url = self.api_url + path
        query: dict[str, str | int] | None = params or None
        seen: set[str] = set()
        origin = _origin(self.api_url)
        while True:
            response = self._call("read", tenant_id, "GET", url, params=query)
            payload = self._json(response, "GET")
            try:
                page = page_from_payload(payload)
            except ValueError as exc:
                raise self._format_error(response, "GET", str(exc)) from None
            yield from page.records
            if page.next_link is None:
                return
            link = page.next_link
            next_url = link if urlsplit(link).scheme else urljoin(response.url, link)
            if _origin(next_url) != origin:
                # Following it would send the bearer token to another host.
                raise self._format_error(response, "GET", f"nextLink {link!r} leaves the API host")
            if next_url in seen or next_url == response.url:
                raise self._format_error(response, "GET", f"nextLink {link!r} loops")
            seen.add(next_url)
            url, query = next_url, None

    @staticmethod
    def _filters(
        changed_after: datetime | None, changed_until: datetime | None, take: int | None
    ) -> dict[str, str | int]:
        params: dict[str, str | int] = dict(validate_changed_range(changed_after, changed_until))
        if take is not None:
            params["take"] = validate_take(take)
        return params

    def persons(
        self,
        tenant_id: str,
        *,
        changed_after: datetime | None = None,
        changed_until: datetime | None = None,
        take: int | None = None,
    ) -> Iterator[HrRecord]:
        """Persons, page after page (arguments are checked now, pages fetched as consumed)."""
        return self._listing(tenant_id, "persons", {}, changed_after, changed_until, take)

    def employments(
        self,
        tenant_id: str,
        *,
        person_code: str | None = None,
        person_id: str | None = None,
        changed_after: datetime | None = None,
        changed_until: datetime | None = None,
        take: int | None = None,
    ) -> Iterator[HrRecord]:
        """Employments, optionally of one person (by personCode or personId)."""
        if person_code is not None:
            person_code = validate_person_code(person_code)
        filters = {"personCode": person_code, "personId": person_id}
        return self._listing(tenant_id, "employments", filters, changed_after, changed_until, take)

    def cost_allocation(self, tenant_id: str, cost_allocation_id: str) -> HrRecord:
        """One cost allocation by id."""
        tenant = validate_tenant_id(tenant_id)
        record_id = validate_record_id(cost_allocation_id, "cost allocation id")
        url = f"{self.api_url}/learning/v1.0/costAllocations/{quote_segment(record_id)}"
        response = self._call("read", tenant, "GET", url)
        payload = self._json(response, "GET")
        try:
            if isinstance(payload, dict) and isinstance(
                payload.get("value", payload.get("values")), list
            ):
                records = page_from_payload(payload).records
                if len(records) != 1:
                    raise ValueError(f"expected one cost allocation, got {len(records)}")
                return records[0]
            return record_from_payload(payload)
        except ValueError as exc:
            raise self._format_error(response, "GET", str(exc)) from None

    def organization_units(
        self,
        tenant_id: str,
        *,
        short_name: str | None = None,
        changed_after: datetime | None = None,
        changed_until: datetime | None = None,
        take: int | None = None,
    ) -> Iterator[HrRecord]:
        """Organization units, optionally filtered by shortName."""
        filters = {"shortName": short_name}
        return self._listing(
            tenant_id, "organizationUnits", filters, changed_after, changed_until, take
        )

    def role_assignments(
        self,
        tenant_id: str,
        *,
        person_id: str | None = None,
        short_name: str | None = None,
        changed_after: datetime | None = None,
        changed_until: datetime | None = None,
        take: int | None = None,
    ) -> Iterator[HrRecord]:
        """Role assignments, optionally of one person or one role (shortName)."""
        filters = {"personId": person_id, "shortName": short_name}
        return self._listing(
            tenant_id, "roleAssignments", filters, changed_after, changed_until, take
        )

    def job_profiles(
        self,
        tenant_id: str,
        *,
        short_name: str | None = None,
        changed_after: datetime | None = None,
        changed_until: datetime | None = None,
        take: int | None = None,
    ) -> Iterator[HrRecord]:
        """Job profiles, optionally filtered by shortName."""
        filters = {"shortName": short_name}
        return self._listing(tenant_id, "jobProfiles", filters, changed_after, changed_until, take)

    def _listing(
        self,
        tenant_id: str,
        resource: str,
        text_filters: Mapping[str, str | None],
        changed_after: datetime | None,
        changed_until: datetime | None,
        take: int | None,
    ) -> Iterator[HrRecord]:
        """One HR-data collection: filters checked now, pages fetched as they are consumed."""
        tenant = validate_tenant_id(tenant_id)
        params: dict[str, str | int] = {
            name: validate_query_text(value, name)
            for name, value in text_filters.items()
            if value is not None
        }
        params.update(self._filters(changed_after, changed_until, take))
        return self._records(tenant, f"/learning/v1.0/{resource}", params)
