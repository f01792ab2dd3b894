"""Every test leaves the main thread without an event loop of its own making.

Code that asks for the current loop outside a running one (tornado's `IOLoop.current()`,
`asyncio.get_event_loop()`) makes and sets a new loop for the thread, which nothing closes.
Its sockets then warn when the garbage collector finds them, during whichever later test
it runs in, and `filterwarnings = error` fails that unrelated test. This guard fails the
test that left the loop, at its teardown, and closes the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest


def _main_thread_loop() -> asyncio.AbstractEventLoop | None:
    """The loop set for this thread, without making one (the policy's own record)."""
    local = getattr(asyncio.get_event_loop_policy(), "_local", None)
    loop: asyncio.AbstractEventLoop | None = getattr(local, "_loop", None)
    return loop


@pytest.fixture(autouse=True)
def no_event_loop_left_behind() -> Iterator[None]:
    before = _main_thread_loop()
    yield
    left = _main_thread_loop()
    if left is None or left is before or left.is_closed():
        return
    asyncio.set_event_loop(None)
    left.close()
    pytest.fail(
        "the test left an unclosed event loop set for the main thread: something asked "
        "for the current loop outside a running one",
        pytrace=False,
    )
