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
tells a lost message from a waiting one by listing the folder (`list_queue_folder`,
`task_ids_in`).

A queue bound to an exchange gets a file for every message routed to it, read or not. An
event consumer (Flower, `celery events`) binds a queue of its own, which AMQP deletes with
its last consumer and kombu's virtual transport never does. Here an auto-delete queue goes
when this process stops consuming it, also at exit; for a consumer that was killed, the
sweeper finds the queue whose oldest message has waited longer than any live consumer lets
one wait (`abandoned_queues`) and unbinds and empties it (`remove_queues`). The publish time
that leads a file name comes from the machine's monotonic clock, which its processes share.

Importing this module registers the transport under the `filesystem` alias, so every
process that loads the yfdocs Celery app (producer, worker, beat, Flower) uses it.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import string
import uuid
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.json import dumps, loads

__all__ = [
    "AtomicFilesystemTransport",
    "abandoned_queues",
    "decode_task_id",
    "encode_task_id",
    "list_queue_folder",
    "message_file_name",
    "register",
    "remove_queues",
    "task_ids_in",
]

log = logging.getLogger(__name__)

STAGING_FOLDER_NAME = "staging"
MESSAGE_SUFFIX = ".msg"
EXCHANGE_SUFFIX = ".exchange"
LOCK_SUFFIX = ".lock"
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


def list_queue_folder(queue_folder: Path) -> dict[str, list[str]]:
    """The message file names in the folder by queue: one listing, no reads.

    Raises `OSError` (such as `FileNotFoundError`) when the folder cannot be listed.
    """
    by_queue: dict[str, list[str]] = {}
    for name in os.listdir(queue_folder):
        # kombu's reader takes what follows the first dot as `{queue}.msg`.
        rest = name.partition(".")[2]
        if rest.endswith(MESSAGE_SUFFIX) and len(rest) > len(MESSAGE_SUFFIX):
            by_queue.setdefault(rest.removesuffix(MESSAGE_SUFFIX), []).append(name)
    return by_queue


def task_ids_in(file_names: Iterable[str]) -> set[str]:
    """The task ids that these message file names carry (a name without one adds none)."""
    found: set[str] = set()
    for name in file_names:
        parts = name.partition(".")[0].split("_", 2)
        if len(parts) == 3 and parts[2]:
            found.add(decode_task_id(parts[2]))
    return found


def abandoned_queues(
    files_by_queue: Mapping[str, Collection[str]], *, keep: Collection[str], older_than: float
) -> dict[str, Collection[str]]:
    """The queues, other than `keep`, whose oldest message has waited over `older_than` s.

    A live consumer takes its messages as they come, so such a queue has none: the event
    queue of a killed Flower, or the control queue of a killed worker. `files_by_queue` is
    a listing made just before (`list_queue_folder`); the result maps each queue to its files.
    """
    now_ms = round(monotonic() * 1000)
    return {
        queue: names
        for queue, names in files_by_queue.items()
        if queue not in keep and _waited_longer_than(names, now_ms, older_than * 1000)
    }


def remove_queues(
    queue_folder: Path, control_folder: Path, files_by_queue: Mapping[str, Collection[str]]
) -> int:
    """Unbind these queues from every exchange, then delete the listed files; how many went.

    Left bound, a queue nobody reads gets a file for every event of every worker, for ever.
    Raises `OSError` when a binding table cannot be rewritten.
    """

    def unbind(
        bindings: list[filesystem.exchange_queue_t],
    ) -> list[filesystem.exchange_queue_t] | None:
        kept = [binding for binding in bindings if binding.queue not in files_by_queue]
        return kept if len(kept) < len(bindings) else None

    # Unbound first, so that no new message follows the files about to be deleted.
    for table_file in sorted(control_folder.glob(f"*{EXCHANGE_SUFFIX}")):
        _change_bindings(table_file, unbind)
    removed = 0
    for names in files_by_queue.values():
        for name in names:
            try:
                (queue_folder / name).unlink()
            except FileNotFoundError:
                continue  # taken by a consumer after all
            removed += 1
    return removed


def _waited_longer_than(file_names: Iterable[str], now_ms: int, limit_ms: float) -> bool:
    """Whether the oldest of these messages was published more than `limit_ms` ago.

    A publish time further ahead of now than the limit was taken before the machine's
    monotonic clock started again (a restart): nobody alive is waiting for that message.
    """
    stamps = [int(stamp) for name in file_names if (stamp := name.partition("_")[0]).isdigit()]
    return bool(stamps) and abs(now_ms - min(stamps)) > limit_ms


def _change_bindings(
    table_file: Path,
    change: Callable[[list[filesystem.exchange_queue_t]], list[filesystem.exchange_queue_t] | None],
) -> None:
    """Apply `change` to an exchange's binding table (None from it: leave the table as it is).

    Every writer holds the table's lock file from reading to renaming, so a bind and a
    removal never lose each other; the new table is written beside the old and renamed
    over it, so a publisher reads the old table or the new one, never a part. Raises
    `OSError`.
    """
    lock_path = table_file.with_name(table_file.name + LOCK_SUFFIX)
    with lock_path.open("a+b") as lock_file:
        filesystem.lock(lock_file, filesystem.LOCK_EX)  # type: ignore[no-untyped-call]
        try:
            try:
                rows = loads(table_file.read_bytes())  # type: ignore[no-untyped-call]
            except FileNotFoundError:
                rows = []
            changed = change([filesystem.exchange_queue_t(*row) for row in rows])
            if changed is None:
                return
            staged = table_file.with_name(f"{table_file.name}.{uuid.uuid4()}.tmp")
            staged.write_bytes(dumps(changed).encode("utf-8"))  # type: ignore[no-untyped-call]
            os.replace(staged, table_file)
        finally:
            filesystem.unlock(lock_file)  # type: ignore[no-untyped-call]


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


# The channels this process opened, for deleting their auto-delete queues at exit.
_open_channels: weakref.WeakSet[AtomicFilesystemChannel] = weakref.WeakSet()


class AtomicFilesystemChannel(filesystem.Channel):
    """A filesystem channel with atomic writes whose auto-delete queues go with their consumer.

    `_put` is write-then-rename and names the task in the file; binding tables change under
    one lock, write-then-rename (`_change_bindings`).
    """

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)  # type: ignore[no-untyped-call]
        self._auto_delete_queues: set[str] = set()
        # A forked child inherits its parent's channels: those consumers are not its own.
        self._opened_by_pid = os.getpid()
        _open_channels.add(self)

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
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")

        def bind(
            bindings: list[filesystem.exchange_queue_t],
        ) -> list[filesystem.exchange_queue_t] | None:
            return None if binding in bindings else [binding, *bindings]

        try:
            self.control_folder.mkdir(parents=True, exist_ok=True)
            _change_bindings(table_file, bind)
        except OSError as exc:
            raise ChannelError(f"Cannot bind {queue!r} to {table_file}") from exc

    def _delete(
        self, queue: Any, exchange: Any, routing_key: Any, pattern: Any, *args: Any, **kwargs: Any
    ) -> None:
        """Empty the queue and unbind it, under the table's lock and write-then-rename.

        kombu's own rewrites the table in place under a lock that `_queue_bind` here does not
        take: a bind and a delete at the same moment could lose one of the two.
        """
        self._purge(queue)  # type: ignore[no-untyped-call]
        table_file = self._exchange_file(exchange)  # type: ignore[no-untyped-call]
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")

        def unbind(
            bindings: list[filesystem.exchange_queue_t],
        ) -> list[filesystem.exchange_queue_t] | None:
            return [kept for kept in bindings if kept != binding] if binding in bindings else None

        if not table_file.exists():
            return
        try:
            _change_bindings(table_file, unbind)
        except OSError as exc:
            raise ChannelError(f"Cannot unbind {queue!r} from {table_file}") from exc

    def _new_queue(self, queue: Any, auto_delete: bool = False, **kwargs: Any) -> None:
        if auto_delete:
            self._auto_delete_queues.add(queue)
        super()._new_queue(queue, **kwargs)  # type: ignore[no-untyped-call]

    def basic_cancel(self, consumer_tag: Any) -> None:
        """Cancel the consumer; an auto-delete queue nobody here consumes now goes, as on AMQP."""
        queue = self._tag_to_queue.get(consumer_tag)
        super().basic_cancel(consumer_tag)  # type: ignore[no-untyped-call]
        if queue is not None and not any(
            queue in channel._active_queues for channel in _channels_of_this_process()
        ):
            self._delete_auto_delete_queue(queue)

    def _delete_auto_delete_queue(self, queue: str) -> None:
        """Delete `queue` if it was declared auto-delete here, by this process."""
        if queue not in self._auto_delete_queues or os.getpid() != self._opened_by_pid:
            return
        self._auto_delete_queues.discard(queue)
        try:
            self.queue_delete(queue)  # type: ignore[no-untyped-call]
        except (ChannelError, OSError) as exc:
            log.warning("cannot delete the queue %s; the sweeper will: %s", queue, exc)


def _channels_of_this_process() -> list[AtomicFilesystemChannel]:
    pid = os.getpid()
    return [
        channel
        for channel in list(_open_channels)
        if channel._opened_by_pid == pid and not channel.closed
    ]


@atexit.register
def _delete_consumed_auto_delete_queues() -> None:
    """A consumer that exits without cancelling (Flower's event thread on SIGTERM) leaves no
    queue bound behind to collect messages nobody reads."""
    for channel in _channels_of_this_process():
        for queue in list(channel._active_queues):
            channel._delete_auto_delete_queue(queue)


class AtomicFilesystemTransport(filesystem.Transport):
    """The `filesystem://` transport with atomic message files."""

    Channel = AtomicFilesystemChannel


def register() -> None:
    """Make `filesystem://` URLs use the atomic transport in this process."""
    TRANSPORT_ALIASES["filesystem"] = f"{__name__}:AtomicFilesystemTransport"


register()
