"""Fetching a certificate that an event names by URL instead of sending it, within limits.

An LMS event without a PDF (Canvas, Moodle, a webhook) names a `certificate_url`. The
intake downloads it as the caller's agent, so the download must not become a way into the
intake's own network or a way to exhaust it:

- https only, with the certificate checked (CA bundle: a setting, else certifi's);
- the host must be on the caller's allow-list (`--fetch-host`), by name or as an address;
- every address the name resolves to is checked, and the connection goes to a checked
  address: a private, loopback, link-local or otherwise non-public address is refused
  unless the allow-list names it (an address or a network such as `10.0.0.0/8`);
- at most `MAX_REDIRECTS` redirects, each checked as the first URL was;
- the size is capped before the download (Content-Length) and during it (a streaming cap);
- one deadline for the whole download, redirects included.

What is refused is the caller's to fix (`CertificateUrlRefused`, a 4xx); what fails on the
way (a timeout, a refused connection, a 5xx) may pass (`CertificateUnavailable`, a 503 the
sender retries).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import certifi
import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import SSLError as Urllib3SSLError

from intake.validation import ValidationError
from models.errors import Decision, YfdocsError

__all__ = [
    "MAX_REDIRECTS",
    "CertificateDownload",
    "CertificateFetcher",
    "CertificateUnavailable",
    "CertificateUrlRefused",
    "FetchAllowList",
]

MAX_REDIRECTS = 3
CHUNK_BYTES = 64 * 1024
_REDIRECTS = {301, 302, 303, 307, 308}
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]


class CertificateUrlRefused(ValidationError):
    """The certificate URL breaks a rule, or its server refused it: the caller must fix it."""

    def __init__(self, message: str) -> None:
        super().__init__("certificate_url", message)


class CertificateUnavailable(YfdocsError):
    """The certificate could not be fetched just now (timeout, connection, a 5xx): the
    sender should try again later, so the intake answers 503."""

    decision = Decision.RETRY


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CertificateUnavailable(f"certificate_url: {host} does not resolve ({exc})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _address(text: str) -> IpAddress | None:
    try:
        address = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _public(address: IpAddress) -> bool:
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class FetchAllowList:
    """A caller's fetch hosts: names, and addresses or networks that may be non-public."""

    names: frozenset[str]
    networks: tuple[IpNetwork, ...]

    @classmethod
    def from_entries(cls, entries: Sequence[str]) -> FetchAllowList:
        names: set[str] = set()
        networks: list[IpNetwork] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.add(entry.lower().rstrip("."))
        return cls(frozenset(names), tuple(networks))

    def _named(self, address: IpAddress) -> bool:
        return any(address in network for network in self.networks)

    def allows_host(self, host: str) -> bool:
        """The URL's host is on the list: by name, or an address the list covers."""
        address = _address(host)
        if address is not None:
            return self._named(address)
        return host.lower().rstrip(".") in self.names

    def allows_address(self, address: IpAddress) -> bool:
        """A resolved address may be connected to: public, or named by the list."""
        return _public(address) or self._named(address)


def _shown(url: str) -> str:
    """A URL as a message may show it: no user or password, the query cut short."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    shown = parts._replace(netloc=netloc, query="…" if parts.query else "").geturl()
    return shown[:200]


@dataclass(frozen=True)
class _Target:
    url: str
    host: str
    port: int
    request_path: str
    host_header: str


def _target(url: str, allow: FetchAllowList) -> _Target:
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise CertificateUrlRefused(f"certificate_url {_shown(url)!r} is not a URL") from None
    if parts.scheme.lower() != "https" or not host:
        raise CertificateUrlRefused(f"certificate_url {_shown(url)!r}: only https:// is fetched")
    if parts.username is not None or parts.password is not None:
        raise CertificateUrlRefused("certificate_url must not carry a user name or password")
    if not allow.allows_host(host):
        raise CertificateUrlRefused(
            f"certificate_url host {host!r} is not on this key's fetch allow-list"
        )
    port = port or 443
    path = parts.path or "/"
    request_path = f"{path}?{parts.query}" if parts.query else path
    host_text = f"[{host}]" if ":" in host else host
    host_header = host_text if port == 443 else f"{host_text}:{port}"
    return _Target(url, host, port, request_path, host_header)


class CertificateFetcher:
    """Downloads certificates under the rules above; one instance serves every request."""

    def __init__(
        self,
        *,
        timeout: float,
        ca_bundle: Path | str | None = None,
        resolve: Resolver = _resolve,
        user_agent: str = "yfdocs-intake",
    ) -> None:
        self.timeout = timeout
        self._context = ssl.create_default_context(cafile=str(ca_bundle or certifi.where()))
        self._resolve = resolve
        self._user_agent = user_agent

    def fetch(self, url: str, allowed_hosts: Sequence[str], max_bytes: int) -> bytes:
        """The bytes at `url`, or `CertificateUrlRefused` / `CertificateUnavailable`."""
        allow = FetchAllowList.from_entries(allowed_hosts)
        deadline = time.monotonic() + self.timeout
        for _hop in range(MAX_REDIRECTS + 1):
            target = _target(url, allow)
            status, location, body = self._get(target, allow, max_bytes, deadline)
            if status in _REDIRECTS:
                if not location:
                    raise CertificateUrlRefused(
                        f"certificate_url {_shown(url)!r} redirects without a Location"
                    )
                url = urljoin(url, location)
                continue
            assert body is not None
            return body
        raise CertificateUrlRefused(
            f"certificate_url redirects more than {MAX_REDIRECTS} times; last {_shown(url)!r}"
        )

    def _addresses(self, target: _Target, allow: FetchAllowList) -> list[str]:
        literal = _address(target.host)
        texts = [str(literal)] if literal is not None else self._resolve(target.host, target.port)
        if not texts:
            raise CertificateUnavailable(f"certificate_url: {target.host} has no address")
        for text in texts:
            address = _address(text)
            if address is None or not allow.allows_address(address):
                raise CertificateUrlRefused(
                    f"certificate_url host {target.host!r} resolves to {text}, a non-public "
                    "address this key's fetch allow-list does not name"
                )
        return texts

    def _get(
        self, target: _Target, allow: FetchAllowList, max_bytes: int, deadline: float
    ) -> tuple[int, str | None, bytes | None]:
        """(status, Location, body): the body only for a 200 within the size cap."""
        addresses = self._addresses(target, allow)
        last_error: Exception | None = None
        for address in addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            pool = urllib3.HTTPSConnectionPool(
                address,
                target.port,
                timeout=urllib3.Timeout(connect=remaining, read=remaining),
                retries=False,
                maxsize=1,
                ssl_context=self._context,
                server_hostname=target.host,
                assert_hostname=target.host,
            )
            try:
                return self._exchange(pool, target, max_bytes, deadline)
            except Urllib3SSLError as exc:
                raise CertificateUrlRefused(
                    f"certificate_url {target.host}: TLS failed ({_reason(exc)})"
                ) from None
            except (Urllib3Error, OSError) as exc:
                last_error = exc
            finally:
                pool.close()
        raise CertificateUnavailable(
            f"certificate_url {target.host} could not be fetched: "
            f"{_reason(last_error) if last_error else 'timed out'}"
        )

    def _exchange(
        self,
        pool: urllib3.HTTPSConnectionPool,
        target: _Target,
        max_bytes: int,
        deadline: float,
    ) -> tuple[int, str | None, bytes | None]:
        response: Any = pool.urlopen(
            "GET",
            target.request_path,
            headers={
                "Host": target.host_header,
                "Accept": "application/pdf",
                "User-Agent": self._user_agent,
            },
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            status = int(response.status)
            if status in _REDIRECTS:
                return status, response.headers.get("Location"), None
            if status == 429 or status >= 500:
                raise CertificateUnavailable(
                    f"certificate_url {target.host} answered {status}; try again later"
                )
            if status != 200:
                raise CertificateUrlRefused(
                    f"certificate_url {_shown(target.url)!r} answered {status}"
                )
            return status, None, _read_capped(response, max_bytes, deadline)
        finally:
            response.release_conn()


def _read_capped(response: Any, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise CertificateUrlRefused(
            f"the certificate is {int(declared):,} bytes; the largest accepted is {max_bytes:,}"
        )
    chunks: list[bytes] = []
    size = 0
    # read1: at most one receive per chunk, so a server that trickles bytes meets the
    # deadline below instead of holding a read open.
    while chunk := response.read1(CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise CertificateUrlRefused(
                f"the certificate is over {max_bytes:,} bytes, the largest accepted"
            )
        if time.monotonic() > deadline:
            raise CertificateUnavailable("certificate_url: the download took too long")
        chunks.append(chunk)
    return b"".join(chunks)


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "reason", None) or exc)
    return text[:200]


@dataclass(frozen=True)
class CertificateDownload:
    """A certificate to fetch, as a producer's `DocumentSource`: downloaded only when
    validation reaches the document, after every cheaper check passed."""

    url: str
    allowed_hosts: tuple[str, ...]
    fetcher: CertificateFetcher

    @property
    def file_name(self) -> str:
        name = PurePosixPath(unquote(urlsplit(self.url).path)).name
        return name if name.lower().endswith(".pdf") else "certificate.pdf"

    def read(self, max_bytes: int) -> bytes:
        return self.fetcher.fetch(self.url, self.allowed_hosts, max_bytes)
