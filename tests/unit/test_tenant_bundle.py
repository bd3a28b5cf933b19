"""A tenant's files as a bundle: read from a folder (bounded), stored as text, checked paths, the
same loader for both, written back out."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from receptionist.tenants.bundle import (
    MAX_FILE_BYTES,
    BadBundlePath,
    TenantBundle,
    read_folder,
    write_folder,
)
from receptionist.tenants.loading import load_bundle, load_tenant

EXAMPLES = Path(__file__).resolve().parents[2] / "tenants"


@pytest.fixture
def bakery(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES / "bakery", tmp_path / "bakery")
    return tmp_path / "bakery"


def test_a_folder_and_its_stored_text_load_the_same_tenant(bakery: Path) -> None:
    from_folder, problems = load_tenant(bakery.parent, "bakery")
    assert problems == [] and from_folder is not None
    stored = TenantBundle.from_text(read_folder(bakery).as_text())
    from_text, problems = load_bundle("bakery", stored)
    assert problems == [] and from_text == from_folder
    assert stored.content_hash() == read_folder(bakery).content_hash()


def test_the_hash_changes_with_any_file(bakery: Path) -> None:
    before = read_folder(bakery).content_hash()
    (bakery / "input_files" / "notes.txt").write_text("Closed on Diwali.\n")
    added = read_folder(bakery).content_hash()
    (bakery / "input_files" / "notes.txt").write_text("Closed on Holi.\n")
    changed = read_folder(bakery).content_hash()
    assert len({before, added, changed}) == 3


def test_a_file_too_large_is_not_read_and_is_reported(bakery: Path) -> None:
    big = bakery / "input_files" / "huge.txt"
    big.write_bytes(b"x" * (MAX_FILE_BYTES + 1))
    bundle = read_folder(bakery)
    assert "input_files/huge.txt" not in bundle.files
    tenant, problems = load_bundle("bakery", bundle)
    assert tenant is None
    assert [p.file for p in problems] == ["bakery/input_files/huge.txt"]
    assert "too large" in problems[0].message


def test_a_stored_input_too_large_is_reported_too(bakery: Path) -> None:
    files = read_folder(bakery).as_text()
    files["input_files/huge.txt"] = "x" * (MAX_FILE_BYTES + 1)
    tenant, problems = load_bundle("bakery", TenantBundle.from_text(files))
    assert tenant is None and "too large" in problems[0].message


def test_a_folder_where_the_config_should_be(bakery: Path) -> None:
    (bakery / "tenant.toml").unlink()
    (bakery / "tenant.toml").mkdir()
    tenant, problems = load_tenant(bakery.parent, "bakery")
    assert tenant is None
    assert any(p.message == "is a folder, expected a file" for p in problems)


def test_no_such_folder(tmp_path: Path) -> None:
    tenant, problems = load_tenant(tmp_path, "ghost")
    assert tenant is None and [p.message for p in problems] == ["no such tenant folder"]


def test_hidden_and_backup_files_are_not_part_of_it(bakery: Path) -> None:
    (bakery / "input_files" / ".draft.txt").write_text("secret")
    (bakery / "input_files" / "menu.md~").write_text("old")
    (bakery / "stray.txt").write_text("not a tenant file")
    paths = set(read_folder(bakery).files)
    assert not {"input_files/.draft.txt", "input_files/menu.md~", "stray.txt"} & paths


@pytest.mark.parametrize(
    "path",
    [
        "../tenant.toml",
        "/etc/passwd",
        "input_files/../../x.txt",
        "prompts/.hidden.txt",
        "prompts/sub/deep.txt",
        "notes.txt",
        "input_files\\menu.md",
        "",
        "input_files//menu.md",
    ],
)
def test_paths_from_outside_are_checked(path: str) -> None:
    with pytest.raises(BadBundlePath):
        TenantBundle.from_text({path: "x"})


def test_written_back_out_it_is_the_same_tenant(bakery: Path, tmp_path: Path) -> None:
    bundle = read_folder(bakery)
    out = tmp_path / "export" / "bakery"
    written = write_folder(bundle, out)
    assert len(written) == len(bundle.files)
    assert read_folder(out).content_hash() == bundle.content_hash()


def test_a_bundle_that_did_not_read_cleanly_cannot_be_stored(bakery: Path) -> None:
    (bakery / "input_files" / "huge.txt").write_bytes(b"x" * (MAX_FILE_BYTES + 1))
    with pytest.raises(ValueError, match="unreadable"):
        read_folder(bakery).as_text()
