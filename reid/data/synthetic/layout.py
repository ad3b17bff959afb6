"""The Market-1501 layout the world is written in: folder and file names, pid conventions, image names.

Kept apart so that the rest of the package (and its readers) agree on one spelling of every name.
"""
from __future__ import annotations

import numpy as np

# Bump when the rendering or the layout changes, so stale worlds are regenerated.
FORMAT_VERSION = 1

WORLD_DIRNAME = "synthetic"
MARKET_DIRNAME = "Market-1501-v15.09.15"
TRAIN_DIRNAME = "bounding_box_train"
QUERY_DIRNAME = "query"
GALLERY_DIRNAME = "bounding_box_test"
SPLIT_DIRNAMES = (TRAIN_DIRNAME, QUERY_DIRNAME, GALLERY_DIRNAME)
WORLD_JSON = "world.json"
CAPTIONS_JSON = "captions.json"
ATTRIBUTES_JSON = "attributes.json"

JUNK_PID = -1
DISTRACTOR_PID = 0
MAX_PID = 9999  # Market names carry the pid in four digits.
MAX_CAMERAS = 9  # ... and the camera in one digit (regex ``([-\d]+)_c(\d)``).
NUM_SEQUENCES = 6  # Market-1501 uses sequences s1..s6 per camera.
MAX_BOX = 8  # detection index within a frame, written as two digits


def _pid_field(pid: int) -> str:
    return "-1" if pid == JUNK_PID else f"{pid:04d}"


class NameAllocator:
    """Market-style names, unique across the world: pid_cCsS_FFFFFF_BB.jpg."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def tracklet(self, rng: np.random.Generator, pid: int, cam: int, n: int) -> list[str]:
        """``n`` names for one identity passing one camera: one sequence, rising frames."""
        seq = int(rng.integers(1, NUM_SEQUENCES + 1))
        frame = int(rng.integers(1, 150_000))
        names = []
        for _ in range(n):
            box = int(rng.integers(1, MAX_BOX + 1))
            while True:
                name = f"{_pid_field(pid)}_c{cam + 1}s{seq}_{frame:06d}_{box:02d}.jpg"
                if name not in self.used:
                    break
                box += 1
                if box > 99:
                    box, frame = 1, frame + 1
            self.used.add(name)
            names.append(name)
            frame += int(rng.integers(4, 40))
        return names
