"""Constants several test folders share (import as ``tests.shared``; pytest puts the project root on sys.path)."""
from __future__ import annotations

# A synthetic world just big enough for one P×K batch (8 identities × 4 images) and a meaningful evaluation,
# as Hydra overrides of dataset=synthetic.
TINY_WORLD = (
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
