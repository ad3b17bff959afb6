"""reid.data.images.list_images: the one rule for which files in a folder are images (formats, prepare, search)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from reid.data.images import list_images


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_direct_children_only_by_default(tmp_path):
    _touch(tmp_path, "b.jpg", "a.PNG", "c.jpeg", "notes.txt", "Thumbs.db", "sub/d.jpg")
    (tmp_path / "e.jpg").mkdir()  # a folder named like an image is not one
    assert [p.name for p in list_images(tmp_path)] == ["a.PNG", "b.jpg", "c.jpeg"]


def test_recursive_sorted_by_path(tmp_path):
    _touch(tmp_path, "z.jpg", "0002/b.jpg", "0001/a.jpg", "0001/deep/c.png")
    found = list_images(tmp_path, recursive=True)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "0001/a.jpg",
        "0001/deep/c.png",
        "0002/b.jpg",
        "z.jpg",
    ]
    assert all(isinstance(p, Path) and p.is_file() for p in found)


def test_hidden_entries_are_skipped(tmp_path):
    # macOS resource forks (._name.jpg) look like images by suffix; hidden folders are never entered
    _touch(tmp_path, "0002_c1s1_000451_03.jpg", "._0002_c1s1_000451_03.jpg", ".cache/x.jpg", "id/.y.jpg", "id/ok.jpg")
    assert [p.name for p in list_images(tmp_path)] == ["0002_c1s1_000451_03.jpg"]
    assert [p.name for p in list_images(tmp_path, recursive=True)] == ["0002_c1s1_000451_03.jpg", "ok.jpg"]


def test_file_symlinks_count_folder_symlinks_are_not_followed(tmp_path):
    _touch(tmp_path, "real/a.jpg")
    os.symlink(tmp_path / "real" / "a.jpg", tmp_path / "real" / "link.jpg")
    os.symlink(tmp_path / "real", tmp_path / "real" / "loop")  # would recurse forever if followed
    assert [p.name for p in list_images(tmp_path / "real", recursive=True)] == ["a.jpg", "link.jpg"]


def test_a_missing_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        list_images(tmp_path / "nowhere")
