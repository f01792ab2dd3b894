"""Which endpoint URLs the client may talk to: TLS, with verified certificates, off loopback.

The API answers plain HTTP with a 404 anyway, but the bearer token and the client secret
would already have crossed the network in clear; certificate verification switched off
lets anyone on the path read them. Both are allowed only towards this machine (a sandbox,
a test server), where nothing crosses a network. The settings layer calls
`check_endpoint_url` at start, so a bad URL stops the service with one line, not the
first upload.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from urllib.parse import urlsplit

__all__ = ["check_endpoint_url", "is_loopback_host"]

_LOOPBACK_NAMES = {"localhost", "localhost."}


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 and the name localhost; nothing that needs a resolver to decide."""
    name = host.strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _shown(url: str) -> str:
    """The URL as an error may name it: any user:password part is left out."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return parts._replace(netloc=netloc).geturl()


# The vendor's own domains: plain HTTP is never allowed towards them, whatever is configured.
_VENDOR_DOMAINS = ("youforce.com", "visma.com", "raet.com")


def check_endpoint_url(
    url: str, *, verify: bool | str | None = True, plain_http_hosts: Collection[str] = ()
) -> str:
    """`url` if the client may send credentials to it; ValueError, one line naming it, if not.

    Refused: anything but http(s) with a host; `http://` to a host that is not loopback;
    `verify=False` (certificate checks off) for a host that is not loopback. `verify` may
    also be a CA bundle path, as requests takes it (None means its default, on).
    `plain_http_hosts` names hosts that may be reached over plain http as if they were
    loopback: a sandbox on a private container network. The vendor's hosts never are.
    """
    if not isinstance(url, str):
        raise ValueError(f"endpoint URL {url!r} is not a string")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        host = parts.hostname
    except ValueError:
        host = None
    if scheme not in ("http", "https") or not host:
        raise ValueError(f"endpoint URL {_shown(url)!r} is not an http(s) URL with a host")
    if is_loopback_host(host):
        return url
    allowed = {name.strip().lower() for name in plain_http_hosts if name.strip()}
    vendor = any(host == domain or host.endswith("." + domain) for domain in _VENDOR_DOMAINS)
    if host.lower() in allowed and not vendor:
        return url
    if scheme == "http":
        raise ValueError(
            f"endpoint URL {_shown(url)!r} uses plain http:// to a host that is not loopback;"
            " use https://"
        )
    if verify is False:
        raise ValueError(
            f"endpoint URL {_shown(url)!r}: certificate verification may be off only for a"
            " loopback host"
        )
    return url
