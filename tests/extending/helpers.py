"""What the two worked examples of docs/extending.md share: where a name is mentioned, and a smoke-run."""
from __future__ import annotations

import re
from pathlib import Path

from tests.shared import TINY_WORLD

ROOT = Path(__file__).resolve().parents[2]


def files_mentioning(word: str) -> set[str]:
    """Source and config files of the package that mention ``word`` (as a whole word)."""
    pattern = re.compile(rf"\b{re.escape(word)}\b")
    found = set()
    for folder in ("reid", "conf"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".yaml") and pattern.search(path.read_text(encoding="utf-8")):
                found.add(str(path.relative_to(ROOT)))
    return found


def train_smoke(tmp_path: Path, *overrides: str) -> float:
    """``python -m reid.train experiment=demo debug=fast ...`` in process, on the tiny world, tiny random CLIP."""
    from hydra import compose, initialize_config_dir

    from reid.pipeline import train

    with initialize_config_dir(str(ROOT / "conf")):
        cfg = compose("train", overrides=[
            "experiment=demo", "debug=fast", "backbone=clip_tiny", "eval.plots=false", "method.stage2.batch_size=16",
            *TINY_WORLD, f"paths.data_dir={tmp_path / 'data'}", f"paths.model_dir={tmp_path / 'models'}",
            f"paths.root_dir={ROOT}", f"paths.output_dir={tmp_path / 'run'}", *overrides,
        ])
    return train(cfg)
