"""`yfdocs documents move --to STORE`: take every stored PDF a job needs to another store,
verify it there, and switch the running fleet over, safe to interrupt and to run again.

The switch persists in the database (`document_store_state`), which every process reads
at each put and read (`intake.stores.active`), so no process has to restart at the moment
of the switch. The steps, each recorded before the next begins:

1. announce: the state names both stores. New PDFs still go to the source; readers that
   miss a document in one look in the other; retention deletes from both, so no copy
   outlives its retention;
2. copy: every key a job points at whose PDF retention has not deleted, under that key's
   lock (retention waits, so it never deletes a key while it is copied), verified by
   reading the copy back and hashing it: the key names the SHA-256 of its bytes;
3. switch: the target becomes active; new PDFs go there, readers fall back to the source;
4. catch up: the same copy again, for what producers stored in the source before they saw
   the switch (their check after commit stores it in the target too, see
   `intake.producer`, so this pass finds what was committed before the switch);
5. finish: the state names the target alone. The source keeps its copies; nothing reads
   them any more.

Interrupted anywhere, the state says which step is next and a new run continues there;
copying is idempotent by content hash (a copy already in the target is verified, not
written again). Run again once finished, it only counts what the store holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from config import Settings, StoreLocation
from intake.storage import (
    DocumentMissing,
    DocumentStore,
    sha256_of_key,
    storage_key,
)
from intake.stores.active import StoreBuilder
from intake.stores.s3 import S3DocumentStore
from intake.stores.streams import SLICE_BYTES
from models import document_store as choice
from models import jobs as job_table
from models import utcnow
from models.errors import Decision, YfdocsError

__all__ = ["MoveFailed", "MoveRefused", "MoveReport", "move_documents"]


class MoveRefused(YfdocsError):
    """The move cannot start: a target this deployment cannot use, or another unfinished move."""

    decision = Decision.REFUSE


class MoveFailed(YfdocsError):
    """A copy could not be made or verified; the state stays where it was (run it again)."""

    decision = Decision.FAIL


@dataclass
class MoveReport:
    """What a run did: documents copied, found in the target already (verified), no longer
    needed by the time their turn came, and gone from both stores (their jobs will fail)."""

    source: str
    target: str
    copied: int = 0
    present: int = 0
    released: int = 0
    missing: list[str] = field(default_factory=list)
    already_there: bool = False


def _holds_its_bytes(store: DocumentStore, key: str) -> bool:
    """Whether the store's copy of `key` is the bytes the key names (read in slices)."""
    digest = hashlib.sha256()
    try:
        with store.open(key) as stream:
            while chunk := stream.read(SLICE_BYTES):
                digest.update(chunk)
    except DocumentMissing:
        return False
    return digest.hexdigest() == sha256_of_key(key)


@dataclass
class _Copier:
    """One pass over the keys jobs still point at, copying from `source` (None: only count
    what `target` holds)."""

    engine: Engine
    source: DocumentStore | None
    target: DocumentStore
    report: MoveReport
    after_failure: str
    verified: set[str] = field(default_factory=set)
    batch: int = 200

    def run(self, progress: Callable[[str], None]) -> None:
        after: str | None = None
        done = 0
        while keys := job_table.stored_document_keys(self.engine, after=after, limit=self.batch):
            for key in keys:
                self.copy(key)
            done += len(keys)
            after = keys[-1]
            progress(f"  {done} documents looked at")

    def copy(self, key: str) -> None:
        if key in self.verified:
            return
        try:
            with job_table.stored_document_in_use(self.engine, key) as in_use:
                if not in_use:
                    self.report.released += 1  # retention deleted it since the listing
                    return
                self._copy_held(key)
        except YfdocsError:
            raise
        except Exception as exc:
            raise MoveFailed(f"copying {key} failed ({exc}); {self.after_failure}") from exc

    def _copy_held(self, key: str) -> None:
        if self.source is None:
            if self.target.exists(key):
                self.report.present += 1
            else:
                self.report.missing.append(key)
            return
        if self.target.exists(key):
            if _holds_its_bytes(self.target, key):
                self.verified.add(key)
                self.report.present += 1
                return
            self.target.delete(key)  # a damaged copy: write it again
        try:
            with self.source.open(key) as stream:
                content = stream.read()
        except DocumentMissing:
            self.report.missing.append(key)
            return
        if hashlib.sha256(content).hexdigest() != sha256_of_key(key):
            raise MoveFailed(
                f"{key} in {self.report.source} does not hold the bytes its key names; "
                f"{self.after_failure}"
            )
        self.target.put(content)
        if not _holds_its_bytes(self.target, key):
            raise MoveFailed(
                f"the copy of {key} in {self.report.target} does not hold the bytes its key "
                f"names; {self.after_failure}"
            )
        self.verified.add(key)
        self.report.copied += 1


def move_documents(
    settings: Settings,
    engine: Engine,
    target: StoreLocation,
    *,
    builder: StoreBuilder | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> MoveReport:
    """Move the fleet's stored PDFs to `target` (the steps are in the module docstring).

    Raises `MoveRefused` before anything changed, `MoveFailed` when a copy could not be
    made or verified (the state stays at its step: run it again).
    """
    if target.kind == "postgres" and not settings.uses_postgres_database:
        raise MoveRefused("the postgres document store needs the database on PostgreSQL")
    builder = builder or StoreBuilder(settings, engine)
    now = utcnow()
    state = choice.claim_store_state(
        engine,
        str(settings.document_store_location),
        now=now,
        reason="yfdocs documents move: YFDOCS_DOCUMENT_STORE of the process moving",
    )
    wanted = str(target)
    if state.move_target is not None and state.move_target != wanted:
        raise MoveRefused(
            f"the move from {state.move_source} to {state.move_target} is unfinished: run "
            f"`yfdocs documents move --to {state.move_target}` first"
        )
    target_store = builder.store(target)
    try:
        target_store.exists(storage_key("0" * 64))
        if isinstance(target_store, S3DocumentStore):
            target_store.check_bucket()
    except Exception as exc:
        raise MoveRefused(f"cannot reach the document store {wanted}: {exc}") from exc

    if state.move_target is None and state.active == wanted:
        report = MoveReport(source=wanted, target=wanted, already_there=True)
        progress(f"the fleet's documents are in {wanted} already; counting what it holds")
        _Copier(engine, None, target_store, report, "run it again").run(progress)
        return report

    source_name = state.move_source or state.active
    report = MoveReport(source=source_name, target=wanted)
    source = builder.store(StoreLocation.parse(source_name))
    if state.move_target is None:
        if not choice.begin_move(engine, source=source_name, target=wanted, now=now):
            raise MoveRefused("the fleet's document store changed meanwhile: run it again")
        state = choice.read_store_state(engine) or state
    copier = _Copier(
        engine,
        source,
        target_store,
        report,
        f"the fleet still uses {source_name}: run the move again",
    )
    if state.active == source_name:
        progress(f"copying the documents jobs need from {source_name} to {wanted}")
        copier.run(progress)
        if not choice.switch_to_move_target(
            engine, source=source_name, target=wanted, now=utcnow()
        ):
            raise MoveRefused("the fleet's document store changed meanwhile: run it again")
        progress(f"{wanted} is the active store now; copying what arrived meanwhile")
    copier.after_failure = f"the move stays unfinished ({wanted} active, {source_name} read too)"
    copier.run(progress)
    if not choice.finish_move(engine, source=source_name, target=wanted, now=utcnow()):
        raise MoveRefused("the fleet's document store changed meanwhile: run it again")
    return report
