"""Credentials go over TLS with verified certificates, except towards this machine."""

from __future__ import annotations

import pytest
import requests

from api_client import YouforceClient, check_endpoint_url, is_loopback_host


@pytest.mark.parametrize(
    "url",
    [
        "https://api.youforce.com",
        "https://connect.visma.com/connect/token",
        "http://127.0.0.1:8765",
        "http://127.8.9.10/connect/token",
        "http://localhost:8000",
        "http://LOCALHOST",
        "http://[::1]:9000/learning",
    ],
)
def test_allowed_urls(url: str) -> None:
    assert check_endpoint_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://api.youforce.com",
        "http://connect.visma.com/connect/token",
        "http://10.0.0.5:8080",
        "http://0.0.0.0:8765",
        "http://128.0.0.1",
        "http://localhost.example.com",
        "http://[::2]/",
        "HTTP://api.youforce.com",
    ],
)
def test_plain_http_off_loopback_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="plain http://") as caught:
        check_endpoint_url(url)
    message = str(caught.value)
    assert url in message
    assert "\n" not in message


def test_certificate_checks_off_only_for_loopback() -> None:
    with pytest.raises(ValueError, match="certificate verification") as caught:
        check_endpoint_url("https://api.youforce.com", verify=False)
    assert "https://api.youforce.com" in str(caught.value)
    assert check_endpoint_url("https://127.0.0.1:8443", verify=False)
    assert check_endpoint_url("https://api.youforce.com", verify="/etc/ssl/ca.pem")
    assert check_endpoint_url("https://api.youforce.com", verify=None)


@pytest.mark.parametrize("url", ["ftp://api.youforce.com", "api.youforce.com", "https://", ""])
def test_what_is_not_an_http_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        check_endpoint_url(url)


def test_a_password_in_the_url_is_not_repeated() -> None:
    with pytest.raises(ValueError, match="plain http://") as caught:
        check_endpoint_url("http://user:hunter2@api.youforce.com/x")
    assert "hunter2" not in str(caught.value)
    assert "api.youforce.com/x" in str(caught.value)


def test_loopback_hosts() -> None:
    assert is_loopback_host("127.0.0.1")
    assert is_loopback_host("::1")
    assert not is_loopback_host("api.youforce.com")
    assert not is_loopback_host("::ffff:10.0.0.1")


@pytest.mark.parametrize(
    ("api_url", "token_url"),
    [
        ("http://api.youforce.com", "https://connect.visma.com/connect/token"),
        ("https://api.youforce.com", "http://connect.visma.com/connect/token"),
    ],
)
def test_the_client_refuses_plain_http_off_loopback(api_url: str, token_url: str) -> None:
    with pytest.raises(ValueError, match="plain http://"):
        YouforceClient(api_url=api_url, token_url=token_url, client_id="c", client_secret="s")


def test_the_client_refuses_a_session_without_certificate_checks() -> None:
    with requests.Session() as session:
        session.verify = False
        with pytest.raises(ValueError, match="certificate verification"):
            YouforceClient(
                api_url="https://api.youforce.com",
                token_url="https://connect.visma.com/connect/token",
                client_id="c",
                client_secret="s",
                session=session,
            )
        loopback = YouforceClient(
            api_url="http://127.0.0.1:8765",
            token_url="http://127.0.0.1:8765/connect/token",
            client_id="c",
            client_secret="s",
            session=session,
        )
        loopback.close()
