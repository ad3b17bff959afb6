"""Models: CLIP backbones (HF transformers), ReID heads, prompt learner and text encoder."""
