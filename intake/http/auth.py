"""Who is calling: the intake key as `Authorization: Bearer <key>`, or, for xAPI clients
that only know an LRS's Basic auth, as the Basic password (the user name is not read).

Routes whose senders cannot set an Authorization header name their key in the path and
prove it otherwise (a Standard Webhooks signature, a signed Canvas event, Moodle's static
secret header); those checks live with their routes. The key checks run in a worker
thread (they read the database), never on the event loop.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)

from intake.callers import IntakeCaller, authenticate_key
from intake.events import IntakeServices

__all__ = ["bearer_caller", "services_of", "xapi_caller"]

_bearer = HTTPBearer(auto_error=False, description="an intake key (`yfdocs intake keys add`)")
_basic = HTTPBasic(auto_error=False, description="xAPI style: the intake key as the password")


def services_of(request: Request) -> IntakeServices:
    services: IntakeServices = request.app.state.services
    return services


Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
Basic = Annotated[HTTPBasicCredentials | None, Depends(_basic)]


def bearer_caller(request: Request, credentials: Bearer) -> IntakeCaller:
    """The caller of a route that takes only `Authorization: Bearer <key>`."""
    return authenticate_key(
        services_of(request).engine, credentials.credentials if credentials else None
    )


def xapi_caller(request: Request, bearer: Bearer, basic: Basic) -> IntakeCaller:
    """The caller of the xAPI route: Bearer, or Basic with the key as the password."""
    presented = bearer.credentials if bearer else (basic.password if basic else None)
    return authenticate_key(services_of(request).engine, presented)
