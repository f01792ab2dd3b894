"""The service's one error tree, and what each branch means for a job.

Every exception yfdocs raises on purpose derives from `YfdocsError` and carries the
`Decision` the service takes when it meets it: the step runner (`worker.step_runner`) turns
it into a change of the job, the CLI into an exit status, the HTTP intake into a status
code (`intake.http.errors.status_for`: refuse is a 4xx, anything else a 503). The classes
live in the room that raises them; the whole tree is drawn here.

    YfdocsError                       decision   where
    ├── EnqueueRejected               refuse     intake.validation (field, message)
    │   ├── ValidationError                      (InvalidPdf, FileTooLarge, InvalidPersonCode,
    │   │   │                                     InvalidEmail, NoLearner, ...)
    │   │   ├── NoCertificate                    intake.events (no PDF, no certificate_url)
    │   │   └── CertificateUrlRefused            intake.certificate_fetch (host, address,
    │   │                                        redirects, size, the server's 4xx)
    │   ├── IdempotencyConflict                  intake.producer
    │   ├── CallerNotAuthenticated               intake.callers (key, signature, secret: 401)
    │   ├── TenantNotPermitted                   intake.callers (a tenant not the key's: 403)
    │   └── MalformedDelivery                    intake.events (a body not in its format: 400)
    ├── JobNotRetryable               refuse     intake.producer (`yfdocs retry` of a live job)
    ├── SchemaNotReady                refuse     models.db (run `yfdocs migrate`)
    ├── NoInstallation                refuse     yfdocs.installation (no database where told)
    ├── MissingCredentials            refuse     worker.runtime (no client id or secret)
    ├── InvalidKeyOption              refuse     intake.callers (`yfdocs intake keys add`)
    ├── IntakeKeyExists               refuse     models.intake_keys (a name in use)
    ├── CallDeferred                  defer      scheduling.governor (.until: no attempt spent)
    │   ├── QuotaExhausted                       the day's API calls are spent
    │   ├── TokenBudgetExhausted                 the month's token requests are spent
    │   ├── SlotWaitTimeout                      no call slot within the wait budget
    │   └── TokenWaitTimeout                     scheduling.token_cache: another process fetches
    ├── CertificateUnavailable        retry      intake.certificate_fetch (timeout, 5xx: 503)
    ├── CanvasKeysUnavailable         retry      intake.sources.canvas (JWKS unreachable: 503)
    ├── DocumentUnavailable           fail       intake.storage (the stored PDF cannot be read)
    │   ├── StorageKeyError                      a key the store never handed out
    │   └── DocumentMissing                      gone from its store (any backend)
    └── PublishError                  release    messaging (the broker refused: the job stays
                                                 in the database for the dispatcher's next pass)

Exceptions from outside the tree get their decision from the step runner's table:

    api_client.YouforceError          retry when `.retryable` (honouring Retry-After), else fail
    api_client.CredentialsRejectedError
                                      defer until the fleet may ask the token endpoint again
    anything else                     release: the lease goes back at once with the true
                                      reason (a database error, a time limit, a bug)

Decisions, as data (`Decision`):
- refuse: the caller's input is refused; nothing was stored (exit 2, an HTTP 4xx);
- retry: a transient failure; the job tries again after a backoff, and it counts as an attempt;
- defer: not the job's turn (a budget, a limit, a refusal of the app's credentials); it waits
  until a given time and no attempt is spent;
- fail: permanent; the job ends `failed` with the reason;
- release: the step stopped for a reason of the service's own; the job's lease is given back
  at once, so that nothing waits for the lease to run out.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

__all__ = ["Decision", "YfdocsError"]


class Decision(StrEnum):
    """What the service does with a job, or a caller, when it meets an error."""

    REFUSE = "refuse"
    RETRY = "retry"
    DEFER = "defer"
    FAIL = "fail"
    RELEASE = "release"


class YfdocsError(Exception):
    """The root of every error yfdocs raises on purpose; `decision` says what follows."""

    decision: ClassVar[Decision] = Decision.RELEASE
