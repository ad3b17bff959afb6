"""Constants several test folders share (import as ``tests.shared``; pytest puts the project root on sys.path)."""
from __future__ import annotations

import subprocess
from pathlib import Path

# A synthetic world just big enough for one P×K batch (8 identities × 4 images) and a meaningful evaluation,
# as Hydra overrides of dataset=synthetic. No validation split (experiment=demo holds out a fifth of the training
# identities): a batch needs all 8 training identities, and the test split is evaluated every eval_period epochs.
TINY_WORLD = (
    "dataset.options.val_fraction=0.0",
    "dataset.options.num_train_ids=8",
    "dataset.options.num_test_ids=8",
    "dataset.options.num_distractors=8",
    "dataset.options.num_junk=8",
)

# A CLIPConfig small enough that building and running it takes milliseconds (load_clip(None, TINY_CLIP)).
TINY_CLIP = {
    "projection_dim": 32,
    "vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 2,
               "image_size": 32, "patch_size": 8},
    "text": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
             "max_position_embeddings": 77, "vocab_size": 49408},
}


class HoldBarrier:
    """The test side of the run's hold hook (reid.engine.faults.hold_point): catch a run mid-flight without racing it.

    ``env(at)`` holds the run before step ``at`` = "<stage>:<epoch>:<step>" (of Optuna trial ``trial`` only, if
    given); :meth:`wait_held` returns once the run is parked there (it writes ``held``), so a kill or a signal lands at
    a known point; :meth:`release` lets it go on. The deadline is a safety net for a hung run, not the synchronisation.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def env(self, at: str, trial: int | None = None) -> dict[str, str]:
        from reid.engine.faults import HOLD_AT_ENV, HOLD_DIR_ENV, HOLD_TRIAL_ENV

        env = {HOLD_AT_ENV: at, HOLD_DIR_ENV: str(self.folder)}
        if trial is not None:
            env[HOLD_TRIAL_ENV] = str(trial)
        return env

    def wait_held(self, proc: subprocess.Popen, log: Path, timeout_s: float = 900) -> dict:
        """Block until the run is held; fail (with the log's tail) if it exits first."""
        import json
        import time

        import pytest

        from reid.engine.faults import HELD_FILE

        held = self.folder / HELD_FILE
        deadline = time.monotonic() + timeout_s
        while not held.exists():
            if proc.poll() is not None:
                pytest.fail(
                    f"the run exited ({proc.returncode}) before reaching its hold point:\n{log.read_text()[-6000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the run did not reach its hold point within {timeout_s:.0f} s:\n{log.read_text()[-6000:]}"
                )
            time.sleep(0.02)
        return json.loads(held.read_text())

    def release(self) -> None:
        from reid.engine.faults import RELEASE_FILE

        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / RELEASE_FILE).touch()
