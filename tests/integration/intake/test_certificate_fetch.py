"""Certificate downloads against a real HTTPS server with a test CA: the allow-list, the
address checks, redirects (each one checked), size caps, the deadline, server errors."""

from __future__ import annotations

import pytest

from intake.certificate_fetch import (
    CertificateFetcher,
    CertificateUnavailable,
    CertificateUrlRefused,
)
from tests.plugins.https_fixtures import CertificateServer, Reply

ALLOW = ("localhost", "127.0.0.1")
MAX = 200_000


def fetcher(server: CertificateServer, timeout: float = 5.0) -> CertificateFetcher:
    return CertificateFetcher(timeout=timeout, ca_bundle=server.ca_bundle)


def test_a_certificate_on_an_allowed_host_is_fetched(certificate_server: CertificateServer) -> None:
    body = fetcher(certificate_server).fetch(certificate_server.url("/cert.pdf"), ALLOW, MAX)
    assert body == certificate_server.pdf
    assert certificate_server.requests[-1] == ("/cert.pdf", f"localhost:{certificate_server.port}")


def test_redirects_are_followed_and_each_is_checked(certificate_server: CertificateServer) -> None:
    server = certificate_server
    server.routes["/hop"] = Reply(status=302, headers={"Location": "/cert.pdf"})
    assert fetcher(server).fetch(server.url("/hop"), ALLOW, MAX) == server.pdf

    # To a host the allow-list does not name: refused before any connection to it.
    server.routes["/away"] = Reply(status=302, headers={"Location": server.url("/x", "127.0.0.2")})
    with pytest.raises(CertificateUrlRefused, match=r"'127\.0\.0\.2' is not on this key's"):
        fetcher(server).fetch(server.url("/away"), ALLOW, MAX)
    # To plain http on the same host: refused too.
    server.routes["/plain"] = Reply(
        status=301, headers={"Location": f"http://localhost:{server.port}/cert.pdf"}
    )
    with pytest.raises(CertificateUrlRefused, match="only https"):
        fetcher(server).fetch(server.url("/plain"), ALLOW, MAX)
    assert [path for path, _host in server.requests].count("/x") == 0


def test_more_than_three_redirects_are_refused(certificate_server: CertificateServer) -> None:
    server = certificate_server
    for hop in range(4):
        server.routes[f"/r{hop}"] = Reply(status=307, headers={"Location": f"/r{hop + 1}"})
    server.routes["/r4"] = Reply(body=server.pdf)
    with pytest.raises(CertificateUrlRefused, match="more than 3 times"):
        fetcher(server).fetch(server.url("/r0"), ALLOW, MAX)
    assert fetcher(server).fetch(server.url("/r1"), ALLOW, MAX) == server.pdf  # three hops


def test_a_host_not_on_the_list_and_a_loopback_address_not_named_are_refused(
    certificate_server: CertificateServer,
) -> None:
    url = certificate_server.url("/cert.pdf")
    with pytest.raises(CertificateUrlRefused, match="not on this key's fetch allow-list"):
        fetcher(certificate_server).fetch(url, ("lms.example.nl",), MAX)
    # localhost is named, but the address it resolves to is not: refused.
    with pytest.raises(CertificateUrlRefused, match="non-public address"):
        fetcher(certificate_server).fetch(url, ("localhost",), MAX)
    assert certificate_server.requests == []


def test_a_public_name_that_resolves_to_a_private_address_is_refused() -> None:
    rebinding = CertificateFetcher(
        timeout=2, resolve=lambda host, port: ["93.184.215.14", "10.0.0.7"]
    )
    with pytest.raises(CertificateUrlRefused, match=r"resolves to 10\.0\.0\.7"):
        rebinding.fetch("https://lms.example.nl/cert.pdf", ("lms.example.nl",), MAX)
    mapped = CertificateFetcher(timeout=2, resolve=lambda host, port: ["::ffff:127.0.0.1"])
    with pytest.raises(CertificateUrlRefused, match="non-public"):
        mapped.fetch("https://lms.example.nl/cert.pdf", ("lms.example.nl",), MAX)


def test_a_certificate_over_the_cap_is_refused_by_length_or_while_streaming(
    certificate_server: CertificateServer,
) -> None:
    server = certificate_server
    server.routes["/big"] = Reply(body=b"%PDF-" + b"0" * MAX)
    with pytest.raises(CertificateUrlRefused, match="the largest accepted is 200,000"):
        fetcher(server).fetch(server.url("/big"), ALLOW, MAX)
    server.routes["/stream"] = Reply(body=b"%PDF-" + b"0" * (3 * MAX), chunked=True)
    with pytest.raises(CertificateUrlRefused, match="over 200,000 bytes"):
        fetcher(server).fetch(server.url("/stream"), ALLOW, MAX)


def test_tls_with_a_certificate_from_another_ca_is_refused(
    certificate_server: CertificateServer,
) -> None:
    with pytest.raises(CertificateUrlRefused, match="TLS failed"):
        CertificateFetcher(timeout=3).fetch(certificate_server.url("/cert.pdf"), ALLOW, MAX)


def test_slow_servers_and_server_errors_are_transient_and_a_404_is_not(
    certificate_server: CertificateServer,
) -> None:
    server = certificate_server
    server.routes["/slow"] = Reply(body=server.pdf, delay=3.0)
    with pytest.raises(CertificateUnavailable, match="could not be fetched"):
        fetcher(server, timeout=1.0).fetch(server.url("/slow"), ALLOW, MAX)
    server.routes["/busy"] = Reply(status=503, body=b"busy")
    with pytest.raises(CertificateUnavailable, match="answered 503"):
        fetcher(server).fetch(server.url("/busy"), ALLOW, MAX)
    with pytest.raises(CertificateUrlRefused, match="answered 404"):
        fetcher(server).fetch(server.url("/missing.pdf"), ALLOW, MAX)
    with pytest.raises(CertificateUnavailable):
        fetcher(server).fetch("https://127.0.0.1:1/cert.pdf", ALLOW, MAX)  # nothing listens
