"""`python -m reid.train`: the Hydra entry point. Returns the final mAP so a sweeper can maximise it."""
from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

# conf/ sits beside the package in the project root; an absolute path works from any working directory.
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(config_path=CONFIG_DIR, config_name="train", execution_whitelist=["reid.tracking.*"])
def main(cfg: DictConfig) -> float:
    from reid.pipeline import train

    return train(cfg)


if __name__ == "__main__":
    main()
