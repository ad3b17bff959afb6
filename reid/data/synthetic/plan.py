"""Who is seen where: identities in splits, the cameras each passes, their tracklets, distractors and junk.

The plan is drawn from the seed alone, before any pixel, so the list of images (and their Market names) does not
depend on how they are rendered. Every random stream of the world is keyed here by the seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from reid.data.synthetic.attributes import ATTRIBUTE_GROUPS, Attributes, sample_attributes, sample_families, signature
from reid.data.synthetic.camera import background_plate, make_camera
from reid.data.synthetic.layout import (
    DISTRACTOR_PID,
    GALLERY_DIRNAME,
    JUNK_PID,
    QUERY_DIRNAME,
    TRAIN_DIRNAME,
    NameAllocator,
)
from reid.data.synthetic.spec import WorldSpec


@dataclass(frozen=True)
class Job:
    """One image to render: which content, for which camera, written where."""

    kind: str  # "person", "background" or "junk"
    pid: int
    cam: int  # 0-based
    split: str
    name: str
    attrs: Attributes | None


# The world's random streams, one per purpose: stream 0 is the plan, 1 the cameras (a camera's look is
# camera_rng(seed, c), its background scene camera_rng(seed, c + 1000), the scene all cameras blend toward with
# scene_sharing camera_rng(seed, 2000) and camera_rng(seed, 3000)), 2 the images (one stream per image index,
# so rendering one image never shifts another).
def camera_rng(seed: int, cam: int) -> np.random.Generator:
    return np.random.default_rng([seed, 1, cam])


def shared_scene(spec: WorldSpec) -> np.ndarray:
    """The one background scene that ``scene_sharing`` blends every camera's toward, from its own streams."""
    return background_plate(make_camera(camera_rng(spec.seed, 2000), spec), spec, camera_rng(spec.seed, 3000))


def image_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, 2, index])


def plan_world(spec: WorldSpec) -> tuple[list[Job], dict[int, dict[str, Any]], list[dict[str, Any]]]:
    """Every image to write plus identity and camera metadata, from the seed alone."""
    rng = np.random.default_rng([spec.seed, 0])
    cameras = [make_camera(camera_rng(spec.seed, c), spec) for c in range(spec.num_cameras)]
    taken: set[str] = set()
    train = sample_families(rng, spec.num_train_ids, spec.family_size, spec.family_differences, taken)
    test = sample_families(rng, spec.num_test_ids, spec.family_size, spec.family_differences, taken)
    # Shuffle the pids so neither split nor family can be read off the number.
    pids = [int(p) for p in rng.permutation(spec.num_train_ids + spec.num_test_ids) + 1]
    identities: dict[int, dict[str, Any]] = {}
    jobs: list[Job] = []
    names = NameAllocator()
    for split, members, offset in (("train", train, 0), ("test", test, spec.num_train_ids)):
        for i, (family, rank, attrs) in enumerate(members):
            pid = pids[offset + i]
            ncam = int(rng.integers(spec.min_cameras_per_id, spec.max_cameras_per_id + 1))
            cams = sorted(int(c) for c in rng.choice(spec.num_cameras, size=ncam, replace=False))
            identities[pid] = {"split": split, "family": f"{split}-{family}", "family_rank": rank,
                               "cameras": [c + 1 for c in cams], **attrs}
            for cam in cams:
                n = int(rng.integers(spec.min_images_per_camera, spec.max_images_per_camera + 1))
                tracklet = names.tracklet(rng, pid, cam, n)
                query = int(rng.integers(n)) if split == "test" else -1
                for k, name in enumerate(tracklet):
                    folder = TRAIN_DIRNAME if split == "train" else (
                        QUERY_DIRNAME if k == query else GALLERY_DIRNAME)
                    jobs.append(Job("person", pid, cam, folder, name, attrs))
    for _ in range(spec.num_distractors):
        cam = int(rng.integers(spec.num_cameras))
        if rng.random() < spec.distractor_person_prob:
            attrs = sample_attributes(rng)
            while signature(attrs) in taken:  # an unknown person, never a known identity
                attrs = sample_attributes(rng)
            kind: str = "person"
        else:
            attrs, kind = None, "background"
        name = names.tracklet(rng, DISTRACTOR_PID, cam, 1)[0]
        jobs.append(Job(kind, DISTRACTOR_PID, cam, GALLERY_DIRNAME, name, attrs))
    test_pids = [pid for pid, info in identities.items() if info["split"] == "test"]
    for _ in range(spec.num_junk):
        cam = int(rng.integers(spec.num_cameras))
        source = identities[test_pids[int(rng.integers(len(test_pids)))]]
        attrs = {k: source[k] for group in ATTRIBUTE_GROUPS.values() for k in group}
        name = names.tracklet(rng, JUNK_PID, cam, 1)[0]
        jobs.append(Job("junk", JUNK_PID, cam, GALLERY_DIRNAME, name, attrs))
    return jobs, identities, cameras
