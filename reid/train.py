"""`python -m reid.train`: the Hydra entry point. Returns the final mAP so a sweeper can maximise it."""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

# conf/ sits beside the package in the project root; an absolute path works from any working directory.
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")

# Exit status after a SIGTERM (checkpoint written, run resumable): 128 + SIGTERM, as a shell reports a terminated job.
PREEMPTED_EXIT_CODE = 143


@hydra.main(config_path=CONFIG_DIR, config_name="train", execution_whitelist=["reid.tracking.*"])
def main(cfg: DictConfig) -> float:
    from reid.config import validate_config

    validate_config(cfg)  # before the training stack (torch, transformers) is even imported: a typo fails in seconds

    from reid.engine.faults import Preempted
    from reid.pipeline import train

    try:
        return train(cfg)
    except Preempted as stop:
        # Not a failure of the job: say so without a traceback, and end the whole process (in a multirun too, so a
        # preempted sweep stops instead of starting its next job). Running the same command again resumes.
        print(f"[preempted] {stop}. Run the same command again to resume.", file=sys.stderr, flush=True)
        sys.exit(PREEMPTED_EXIT_CODE)


if __name__ == "__main__":
    main()
