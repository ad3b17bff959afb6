"""Writing a world to disk in Market-1501 layout, and reusing it: the cache check, the lock, the atomic replace.

``world.json`` (spec, counts, cameras) is written last and marks a finished world; ``captions.json`` and
``attributes.json`` hold each identity's caption and attribute values.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm import tqdm

from reid.data.synthetic.camera import background_plate, shared_scene_plates
from reid.data.synthetic.captions import describe
from reid.data.synthetic.layout import (
    ATTRIBUTES_JSON,
    CAPTIONS_JSON,
    FORMAT_VERSION,
    GALLERY_DIRNAME,
    MARKET_DIRNAME,
    QUERY_DIRNAME,
    SPLIT_DIRNAMES,
    TRAIN_DIRNAME,
    WORLD_DIRNAME,
    WORLD_JSON,
)
from reid.data.synthetic.plan import camera_rng, image_rng, plan_world, shared_scene
from reid.data.synthetic.render import render_image
from reid.data.synthetic.spec import WorldSpec, make_spec

try:  # POSIX only; elsewhere concurrent first runs are simply not serialised.
    import fcntl
except ImportError:  # pragma: no cover - exercised on Windows only
    fcntl = None  # type: ignore[assignment]

_PARTIAL_DIRNAME = ".synthetic.partial"
_LOCK_NAME = ".synthetic.lock"
_OWN_ENTRIES = frozenset({MARKET_DIRNAME, WORLD_JSON, CAPTIONS_JSON, ATTRIBUTES_JSON})


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def generate_world(out_dir: Path, spec: WorldSpec, *, progress: bool = True) -> None:
    """Render ``spec`` into ``out_dir`` (which must not already hold a world).

    ``world.json`` is written last, so its presence marks a finished generation.
    """
    out_dir = Path(out_dir)
    market = out_dir / MARKET_DIRNAME
    if market.exists() or (out_dir / WORLD_JSON).exists():
        raise FileExistsError(f"{out_dir} already holds a synthetic world; generate into an empty folder")
    for split in SPLIT_DIRNAMES:
        (market / split).mkdir(parents=True, exist_ok=True)
    jobs, identities, cameras = plan_world(spec)
    plates = [background_plate(cam, spec, camera_rng(spec.seed, c + 1000))
              for c, cam in enumerate(cameras)]
    if spec.scene_sharing > 0:
        plates = shared_scene_plates(plates, shared_scene(spec), spec.scene_sharing)
    counts = {split: 0 for split in SPLIT_DIRNAMES}
    for index, job in enumerate(tqdm(jobs, desc="synthetic world", unit="img", disable=not progress)):
        img = render_image(job, spec, cameras[job.cam], plates[job.cam], image_rng(spec.seed, index))
        img.save(market / job.split / job.name, format="JPEG", quality=spec.jpeg_quality)
        counts[job.split] += 1
    _write_json(out_dir / CAPTIONS_JSON, {str(pid): describe(info) for pid, info in sorted(identities.items())})
    _write_json(out_dir / ATTRIBUTES_JSON, {str(pid): info for pid, info in sorted(identities.items())})
    summary = {
        "train_images": counts[TRAIN_DIRNAME],
        "query_images": counts[QUERY_DIRNAME],
        "gallery_images": counts[GALLERY_DIRNAME],
        "train_ids": spec.num_train_ids,
        "test_ids": spec.num_test_ids,
        "distractors": spec.num_distractors,
        "junk": spec.num_junk,
    }
    _write_json(out_dir / WORLD_JSON, {
        "format_version": FORMAT_VERSION,
        "spec": spec.to_dict(),
        "counts": summary,
        "cameras": cameras,
        "layout": MARKET_DIRNAME,
    })


def _is_complete(world_dir: Path, spec: WorldSpec) -> bool:
    """True when ``world_dir`` holds a finished world of exactly ``spec`` and this format."""
    try:
        meta = json.loads((world_dir / WORLD_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if meta.get("format_version") != FORMAT_VERSION or meta.get("spec") != spec.to_dict():
        return False
    if not (world_dir / CAPTIONS_JSON).is_file():
        return False
    counts = meta.get("counts", {})
    expected = {TRAIN_DIRNAME: counts.get("train_images"), QUERY_DIRNAME: counts.get("query_images"),
                GALLERY_DIRNAME: counts.get("gallery_images")}
    for split, n in expected.items():
        folder = world_dir / MARKET_DIRNAME / split
        if not folder.is_dir() or sum(1 for p in folder.iterdir() if p.suffix == ".jpg") != n:
            return False
    return True


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Serialise generation across processes (e.g. DDP ranks) sharing ``root``."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(root / _LOCK_NAME, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _remove_world(world_dir: Path) -> None:
    """Delete an old world, refusing folders this module did not write."""
    if not world_dir.exists():
        return
    entries = sorted(p.name for p in world_dir.iterdir())
    if entries and _OWN_ENTRIES.isdisjoint(entries):
        foreign = entries
        raise FileExistsError(
            f"{world_dir} exists but is not a synthetic world (contains {foreign[:5]}); "
            "move it away or choose another root"
        )
    shutil.rmtree(world_dir)


def ensure_world(root: str | os.PathLike[str], *, progress: bool = True, **spec_fields: Any) -> Path:
    """Write the world under ``<root>/synthetic/`` unless an identical spec is already there.

    Returns ``<root>/synthetic``, the folder that contains ``Market-1501-v15.09.15``.
    A different spec (or an unfinished world) is replaced; generation happens in
    a temporary sibling folder that is renamed into place once complete, so an
    interrupted run never leaves a folder that looks finished.
    """
    spec = make_spec(**spec_fields)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    world_dir = root / WORLD_DIRNAME
    with _locked(root):
        if _is_complete(world_dir, spec):
            return world_dir
        partial = root / _PARTIAL_DIRNAME
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir()
        generate_world(partial, spec, progress=progress)
        _remove_world(world_dir)
        os.replace(partial, world_dir)
    return world_dir


def load_attributes(world_dir: Path) -> dict[int, dict[str, Any]]:
    """Original pid → split, family, cameras and attribute values (for analysis and prompts)."""
    raw = json.loads((Path(world_dir) / ATTRIBUTES_JSON).read_text(encoding="utf-8"))
    return {int(pid): info for pid, info in raw.items()}
