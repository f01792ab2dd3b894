"""kombu's `filesystem://` transport, with messages that appear in the queue whole.

The stock transport creates a file and then writes it, twice over: a message file in the
queue folder, which a consumer polling the folder can take in between and read empty
(`JSONDecodeError` in the worker's consumer loop: "Unrecoverable error", the worker stops),
and an exchange's binding table, which a publisher can read empty while a new queue is
bound. Here both are written beside their place and renamed into it, which is atomic: a
reader sees the old file or the whole new one, never a part.

A message file is named `{monotonic ms}_{nonce}_{task id}.{queue}.msg`. kombu's reader
takes the names in sorted order, so the leading timestamp keeps the order of publishing, and
it picks a queue's files by what follows the first dot, so the task id is written without
dots (see `encode_task_id`). A worker takes a message off the folder when it receives it,
and one killed before running it takes it along; with the task id in the name, the sweeper
tells a lost message from a waiting one by listing the folder (`task_ids_waiting`).

Importing this module registers the transport under the `filesystem` alias, so every
process that loads the yfdocs Celery app (producer, worker, beat, Flower) uses it.
"""

from __future__ import annotations

import os
import re
import string
import uuid
from collections.abc import Mapping
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.json import dumps

__all__ = [
    "AtomicFilesystemTransport",
    "decode_task_id",
    "encode_task_id",
    "message_file_name",
    "register",
    "task_ids_waiting",
]

STAGING_FOLDER_NAME = "staging"
# Longer task ids are left out of the name, which must stay within 255 bytes with the
# queue name (event queues are `celeryev.<uuid>`) beside it.
MAX_ENCODED_TASK_ID_LENGTH = 120
_PLAIN_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-")
_ESCAPED_RUN = re.compile(r"(?:~[0-9a-f]{2})+")


def encode_task_id(task_id: str) -> str:
    """`task_id` as a name part without dots or underscores, and reversible.

    Letters, digits and hyphens stay; every other byte becomes `~xx`, so a Celery uuid
    stays readable in a listing and `{job id}.{suffix}` becomes `{job id}~2e{suffix}`.
    """
    return "".join(
        char if char in _PLAIN_CHARACTERS else "".join(f"~{byte:02x}" for byte in char.encode())
        for char in task_id
    )


def decode_task_id(encoded: str) -> str:
    """The task id that `encode_task_id` turned into `encoded`."""
    return _ESCAPED_RUN.sub(
        lambda run: bytes.fromhex(run.group().replace("~", "")).decode("utf-8", "replace"),
        encoded,
    )


def message_file_name(queue: str, payload: Any, *, now_ms: int) -> str:
    """The file name of a message: publish time first, a nonce, then its task id if any."""
    name = f"{now_ms}_{uuid.uuid4().hex[:12]}"
    task_id = _task_id_of(payload)
    if task_id:
        encoded = encode_task_id(task_id)
        if len(encoded) <= MAX_ENCODED_TASK_ID_LENGTH:
            name = f"{name}_{encoded}"
    return f"{name}.{queue}.msg"


def task_ids_waiting(queue_folder: Path, queue: str) -> set[str]:
    """Task ids of the messages for `queue` that lie in the folder: one listing, no reads.

    Raises `OSError` (such as `FileNotFoundError`) when the folder cannot be listed.
    """
    wanted = f"{queue}.msg"
    found: set[str] = set()
    with os.scandir(queue_folder) as entries:
        for entry in entries:
            stem, _, rest = entry.name.partition(".")
            if rest != wanted:
                continue
            parts = stem.split("_", 2)
            if len(parts) == 3 and parts[2]:
                found.add(decode_task_id(parts[2]))
    return found


def _task_id_of(payload: Any) -> str | None:
    """Celery puts the task id in the headers (protocol 2) and in the correlation id."""
    if not isinstance(payload, Mapping):
        return None
    for section, key in (("headers", "id"), ("properties", "correlation_id")):
        values = payload.get(section)
        if isinstance(values, Mapping):
            value = values.get(key)
            if isinstance(value, str) and value:
                return value
    return None


class AtomicFilesystemChannel(filesystem.Channel):
    """A filesystem channel whose `_put` is write-then-rename, naming the task in the file."""

    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = message_file_name(queue, payload, now_ms=round(monotonic() * 1000))
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
