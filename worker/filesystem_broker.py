"""kombu's `filesystem://` transport, with messages that appear in the queue whole.

The stock transport creates a file and then writes it, twice over: a message file in the
queue folder, which a consumer polling the folder can take in between and read empty
(`JSONDecodeError` in the worker's consumer loop: "Unrecoverable error", the worker stops),
and an exchange's binding table, which a publisher can read empty while a new queue is
bound. Here both are written beside their place and renamed into it, which is atomic: a
reader sees the old file or the whole new one, never a part.

Importing this module registers the transport under the `filesystem` alias, so every
process that loads the yfdocs Celery app (producer, worker, beat, Flower) uses it.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.json import dumps

__all__ = ["AtomicFilesystemTransport", "register"]

STAGING_FOLDER_NAME = "staging"


class AtomicFilesystemChannel(filesystem.Channel):
    """A filesystem channel whose `_put` is write-then-rename."""

    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        queue_folder = Path(self.data_folder_out)
        staging = queue_folder.parent / STAGING_FOLDER_NAME
        staged = staging / name
        try:
            staging.mkdir(parents=True, exist_ok=True)
            with staged.open("wb") as handle:
                handle.write(dumps(payload).encode("utf-8"))  # type: ignore[no-untyped-call]
            os.replace(staged, queue_folder / name)
        except OSError as exc:
            raise ChannelError(f"Cannot add message {name!r} to {queue_folder}") from exc

    def _queue_bind(self, exchange: Any, routing_key: Any, pattern: Any, queue: Any) -> None:
        table_file = self._exchange_file(exchange)  # type: ignore[no-untyped-call]
        self.control_folder.mkdir(parents=True, exist_ok=True)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        lock_path = table_file.with_name(table_file.name + ".lock")
        try:
            with lock_path.open("a+b") as lock_file:
                filesystem.lock(lock_file, filesystem.LOCK_EX)  # type: ignore[no-untyped-call]
                try:
                    bindings = self.get_table(exchange)  # type: ignore[no-untyped-call]
                    if binding not in bindings:
                        bindings.insert(0, binding)
                        staged = table_file.with_name(f"{table_file.name}.{uuid.uuid4()}.tmp")
                        staged.write_bytes(dumps(bindings).encode("utf-8"))  # type: ignore[no-untyped-call]
                        os.replace(staged, table_file)
                finally:
                    filesystem.unlock(lock_file)  # type: ignore[no-untyped-call]
        except OSError as exc:
            raise ChannelError(f"Cannot bind {queue!r} to {table_file}") from exc


class AtomicFilesystemTransport(filesystem.Transport):
    """The `filesystem://` transport with atomic message files."""

    Channel = AtomicFilesystemChannel


def register() -> None:
    """Make `filesystem://` URLs use the atomic transport in this process."""
    TRANSPORT_ALIASES["filesystem"] = f"{__name__}:AtomicFilesystemTransport"


register()
