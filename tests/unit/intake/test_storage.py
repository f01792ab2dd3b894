"""The document store: content-addressed, one copy, atomic, safe keys only."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from intake.storage import DocumentMissing, FilesystemDocumentStore, StorageKeyError


def test_put_bytes_is_content_addressed(tmp_path: Path) -> None:
    store = FilesystemDocumentStore(tmp_path / "docs")
    data = b"%PDF-1.7 content"
    digest = hashlib.sha256(data).hexdigest()
    key = store.put(data)
    assert key == f"{digest[:2]}/{digest[2:4]}/{digest}.pdf"
    assert store.exists(key)
    with store.open(key) as handle:
        assert handle.read() == data
    assert store.path(key) == tmp_path / "docs" / key


def test_same_bytes_twice_is_one_copy(tmp_path: Path) -> None:
    store = FilesystemDocumentStore(tmp_path)
    first = store.put(b"same")
    source = tmp_path / "in.pdf"
    source.write_bytes(b"same")
    second = store.put(source)
    assert first == second
    pdfs = [p for p in tmp_path.rglob("*.pdf") if p != source]
    assert pdfs == [tmp_path / first]
    assert list((tmp_path / ".staging").iterdir()) == []


def test_put_path_streams_big_files(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    data = os.urandom(3 * (1 << 20) + 17)
    source.write_bytes(data)
    store = FilesystemDocumentStore(tmp_path / "docs")
    key = store.put(source)
    assert key.endswith(hashlib.sha256(data).hexdigest() + ".pdf")
    assert store.path(key).read_bytes() == data


def test_a_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FilesystemDocumentStore(tmp_path / "docs")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.put(b"never lands")
    files = [p for p in (tmp_path / "docs").rglob("*") if p.is_file()]
    assert files == []


def test_delete_and_exists(tmp_path: Path) -> None:
    store = FilesystemDocumentStore(tmp_path)
    key = store.put(b"bye")
    assert store.delete(key)
    assert not store.exists(key)
    assert not store.delete(key)  # gone already: fine
    with pytest.raises(DocumentMissing, match=f"stored document {key} is missing"):
        store.open(key)


@pytest.mark.parametrize(
    "key",
    [
        "../../etc/passwd",
        "ab/cd/" + "0" * 64 + ".pdf",  # prefix does not match the hash
        "/abs/path.pdf",
        "ab/cd/ABCD" + "0" * 60 + ".pdf",
    ],
)
def test_foreign_keys_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(StorageKeyError):
        FilesystemDocumentStore(tmp_path).path(key)
