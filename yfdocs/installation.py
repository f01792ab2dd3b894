"""The installation a command works on: its database, found and checked before any use.

The embedded SQLite database migrates itself (one machine, nobody to run a migration); a
fleet's database is migrated by `yfdocs migrate` alone, so a command that meets an empty
or older schema there refuses in one line naming it instead of failing on a missing table.
A command that only reads never creates an installation: a mistyped YFDOCS_DATA_DIR is
named, not filled with a new database and broker folders.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine, make_url

from config import Settings
from models import make_engine, migrate
from models.db import require_schema
from models.errors import Decision, YfdocsError

__all__ = ["NoInstallation", "open_database"]


class NoInstallation(YfdocsError):
    """The settings point at an embedded database that does not exist."""

    decision = Decision.REFUSE


def _sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for any other database or in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def open_database(settings: Settings, *, create: bool) -> Engine:
    """An engine on a database whose schema is at this version's head.

    SQLite is migrated here; with `create` False (a command that only reads or changes
    what exists) a missing file is `NoInstallation` and nothing is created. Any other
    database is checked, never migrated: `SchemaNotReady` names `yfdocs migrate`.
    """
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        database_file = _sqlite_file(url)
        if not create and database_file is not None and not database_file.is_file():
            if settings.database_url:
                raise NoInstallation(
                    f"no yfdocs database at {database_file}: check YFDOCS_DATABASE_URL"
                )
            raise NoInstallation(
                f"found no yfdocs installation in {settings.data_dir} (no database there): "
                "check YFDOCS_DATA_DIR"
            )
    engine = make_engine(url)
    try:
        if url.startswith("sqlite"):
            migrate(engine)
        else:
            require_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine
