"""reid: CLIP-based image re-identification experiment suite."""

__version__ = "0.1.0"
