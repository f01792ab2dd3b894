"""One small adapter per LMS format, each mapping what its source sends to the one
internal `intake.events.CompletionEvent`. No web framework here: the HTTP routes
(`intake.http`) hand these the raw body and headers.
"""

from __future__ import annotations
