"""Flower with its basic auth on every route, `/metrics` and `/healthcheck` included.

Flower checks `--basic-auth` only in the handlers it decorates with `@web.authenticated`.
In the installed Flower (2.2) its `Metrics` and `Healthcheck` handlers, the static files
and the catch-all 404 answer anyone (flower#1129 took the check off `/metrics` on purpose;
flower#1342 asks for it back): `/metrics` tells a stranger the workers' names, the task
names and how many ran. So before
Flower builds its application, `guard_every_route` swaps each handler in `flower.urls`
for a subclass that refuses a request without the configured credentials, with the same
401 and `WWW-Authenticate` challenge as Flower's own pages. A monitor that scrapes
Flower's `/metrics`, and a health check, send the credentials like a browser does.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable
from typing import Any

from tornado.routing import URLSpec
from tornado.web import HTTPError, RequestHandler, StaticFileHandler

__all__ = ["CredentialsRequired", "credentials_accepted", "guard_every_route"]

REALM = 'Basic realm="flower"'


def credentials_accepted(authorization: str | None, accepted: Iterable[str]) -> bool:
    """Whether an `Authorization` header carries one of the `user:password` pairs.

    No pair configured accepts nothing: a Flower without credentials serves no one.
    """
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme != "Basic" or not encoded:
        return False
    try:
        offered = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    # Compare every pair, so the time taken does not say which one came close.
    matches = [hmac.compare_digest(offered, pair.encode()) for pair in accepted if pair]
    return any(matches)


class CredentialsRequired(RequestHandler):
    """Refuses, before any handler runs, a request without Flower's basic-auth credentials."""

    def prepare(self) -> Any:
        options = getattr(self.application, "options", None)
        pairs = getattr(options, "basic_auth", None) or ()
        if not credentials_accepted(self.request.headers.get("Authorization"), pairs):
            raise HTTPError(401)
        return super().prepare()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 401:
            self.set_header("WWW-Authenticate", REALM)
            self.finish("Access denied")
            return
        super().write_error(status_code, **kwargs)


def _guarded(handler: type[RequestHandler]) -> type[RequestHandler]:
    if issubclass(handler, CredentialsRequired):
        return handler
    namespace: dict[str, Any] = {"__module__": __name__}
    if handler.__new__ is not object.__new__:
        # A factory class (Flower's LoginHandler picks an OAuth handler in `__new__`) would
        # hand back an instance without the guard; basic auth has no login page, so the
        # guarded class is built as it stands.
        namespace["__new__"] = lambda cls, *args, **kwargs: object.__new__(cls)
    return type(handler.__name__, (CredentialsRequired, handler), namespace)


def _guard_spec(spec: Any) -> Any:
    if isinstance(spec, URLSpec):
        return URLSpec(spec.regex.pattern, _guarded(spec.handler_class), spec.kwargs, spec.name)
    pattern, handler, *rest = spec
    return (pattern, _guarded(handler), *rest)


def guard_every_route() -> None:
    """Put every route of Flower's application behind its basic auth; idempotent.

    Must run in the Flower process before Flower builds its application (it reads the
    handler list of `flower.urls`, which this changes in place).
    """
    from flower import urls

    urls.handlers[:] = [_guard_spec(spec) for spec in urls.handlers]
    # Tornado serves `static_path` through a route of its own, built from this class.
    static = urls.settings.get("static_handler_class", StaticFileHandler)
    urls.settings["static_handler_class"] = _guarded(static)
