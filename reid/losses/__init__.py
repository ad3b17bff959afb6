"""Losses, one small module each."""
from reid.losses.id_loss import id_loss
from reid.losses.supcon import supervised_contrastive
from reid.losses.triplet import batch_hard_triplet

__all__ = ["id_loss", "batch_hard_triplet", "supervised_contrastive"]
