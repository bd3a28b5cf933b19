"""A tenant as the files that make it: `tenant.toml`, `prompts/*` and `input_files/**`.

A folder on disk and a version stored in the database are the same thing: a mapping from a path
inside the tenant (POSIX, relative) to the file's bytes. The loader (loading.py) checks a bundle
and builds the Tenant from it whichever way it came, so a folder and a stored version can never
be judged differently.

Reading a folder is bounded where the bytes enter: a file over `MAX_FILE_BYTES` is not read at
all (it is noted in `unreadable`, and the loader reports it), nor is anything outside the three
places above, a hidden file or an editor's backup.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = [
    "ANALYZER_PROMPT",
    "ASSISTANT_PROMPT",
    "CONFIG_FILE",
    "INPUT_DIR",
    "MAX_FILE_BYTES",
    "MAX_INPUT_BYTES_TOTAL",
    "BadBundlePath",
    "TenantBundle",
    "folder_files",
    "read_folder",
    "write_folder",
]

CONFIG_FILE = "tenant.toml"
PROMPTS_DIR = "prompts"
ASSISTANT_PROMPT = "prompts/assistant.txt"
ANALYZER_PROMPT = "prompts/analyzer.txt"
INPUT_DIR = "input_files"

# Everything in input_files/ goes into every call's system instruction: keep it phone-sized.
MAX_FILE_BYTES = 256 * 1024
MAX_INPUT_BYTES_TOTAL = 512 * 1024


class BadBundlePath(ValueError):
    """A path that cannot be part of a tenant (absolute, `..`, hidden, or outside its places)."""


def _visible(parts: tuple[str, ...]) -> bool:
    return not any(p.startswith(".") for p in parts) and not parts[-1].endswith("~")


def check_path(path: str) -> str:
    """`path` if it may name a file of a tenant, else BadBundlePath saying why."""
    pure = PurePosixPath(path)
    parts = pure.parts
    if not path or pure.is_absolute() or "\\" in path or ".." in parts or str(pure) != path:
        raise BadBundlePath(f"{path!r} is not a plain relative path")
    if not _visible(parts):
        raise BadBundlePath(f"{path!r} is hidden or a backup file")
    if path == CONFIG_FILE:
        return path
    if parts[0] == PROMPTS_DIR and len(parts) == 2:
        return path
    if parts[0] == INPUT_DIR and len(parts) >= 2:
        return path
    raise BadBundlePath(
        f"{path!r} is not {CONFIG_FILE}, a file in {PROMPTS_DIR}/ or a file under {INPUT_DIR}/"
    )


@dataclass(frozen=True, slots=True)
class TenantBundle:
    #: path inside the tenant -> content
    files: Mapping[str, bytes]
    #: path -> why it was not read (a folder only: too large, a folder where a file should be)
    unreadable: Mapping[str, str] = field(default_factory=dict)

    def get(self, path: str) -> bytes | None:
        return self.files.get(path)

    def under(self, folder: str) -> list[str]:
        """Paths of the files (read or not) below `folder`, sorted."""
        prefix = folder.rstrip("/") + "/"
        return sorted(p for p in {*self.files, *self.unreadable} if p.startswith(prefix))

    def content_hash(self) -> str:
        """Changes exactly when a file is added, removed or changed (what a new version needs)."""
        digest = hashlib.sha256()
        for path in sorted(self.files):
            data = self.files[path]
            digest.update(f"{path}\x00{len(data)}\x00".encode())
            digest.update(data)
        return digest.hexdigest()

    def as_text(self) -> dict[str, str]:
        """path -> text, for storing: only a bundle that loaded (so every file is UTF-8)."""
        if self.unreadable:
            raise ValueError(f"a bundle with unreadable files cannot be stored: {self.unreadable}")
        return {path: self.files[path].decode("utf-8") for path in sorted(self.files)}

    @classmethod
    def from_text(cls, files: Mapping[str, str]) -> TenantBundle:
        """A bundle from stored or submitted text (every path checked)."""
        return cls({check_path(p): text.encode("utf-8") for p, text in files.items()})


def folder_files(tenant_dir: Path) -> list[Path]:
    """Every file that makes up the folder's tenant, read or not (`tenant.toml` even when it is
    missing: its appearance changes the tenant)."""
    found = [tenant_dir / CONFIG_FILE]
    prompts = tenant_dir / PROMPTS_DIR
    if prompts.is_dir():
        found.extend(sorted(p for p in prompts.iterdir() if _visible((p.name,))))
    base = tenant_dir / INPUT_DIR
    if base.is_dir():
        inputs = [p for p in base.rglob("*") if _visible(p.relative_to(base).parts) and p.is_file()]
        found.extend(sorted(inputs, key=lambda p: p.relative_to(base).as_posix()))
    return found


def read_folder(tenant_dir: Path) -> TenantBundle:
    """The tenant folder's files, each at most MAX_FILE_BYTES (larger ones are not read)."""
    files: dict[str, bytes] = {}
    unreadable: dict[str, str] = {}
    for path in folder_files(tenant_dir):
        rel = path.relative_to(tenant_dir).as_posix()
        try:
            size = path.stat().st_size
            if path.is_dir():
                unreadable[rel] = "is a folder, expected a file"
            elif size > MAX_FILE_BYTES:
                unreadable[rel] = (
                    f"is too large ({size} bytes; at most {MAX_FILE_BYTES}): everything in a "
                    "tenant is read to the AI on every call, keep it short"
                )
            else:
                files[rel] = path.read_bytes()
        except FileNotFoundError:
            continue  # missing: the loader says so for the files it needs
        except OSError as exc:
            unreadable[rel] = f"cannot be read: {exc.strerror or exc}"
    return TenantBundle(files, unreadable)


def write_folder(bundle: TenantBundle, tenant_dir: Path) -> list[Path]:
    """Write the bundle's files under `tenant_dir` (created); returns the paths written. Files
    of the folder that the bundle does not have are left alone."""
    written: list[Path] = []
    for rel, data in sorted(bundle.files.items()):
        target = tenant_dir / check_path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(target)
    return written
