import pytest
import torch

from reid.models.clip_loader import load_clip

TINY = {
    "projection_dim": 32,
    "vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 2,
               "image_size": 32, "patch_size": 8},
    "text": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
             "max_position_embeddings": 77, "vocab_size": 49408},
}


@pytest.fixture
def tiny_clip():
    torch.manual_seed(0)
    return load_clip(None, TINY, attn_implementation="eager").eval()
