import pytest
import torch

from reid.models.clip_loader import load_clip
from tests.shared import TINY_CLIP


@pytest.fixture
def tiny_clip():
    torch.manual_seed(0)
    return load_clip(None, TINY_CLIP, attn_implementation="eager").eval()
