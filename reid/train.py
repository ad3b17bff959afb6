"""`python -m reid.train`: the Hydra entry point. Returns the final mAP so a sweeper can maximise it."""
from __future__ import annotations

import hydra
from omegaconf import DictConfig


@hydra.main(config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    from reid.pipeline import train

    return train(cfg)


if __name__ == "__main__":
    main()
