"""The real CLIP BPE tokenizer, offline.

No model hub here, but open-clip-torch ships OpenAI's BPE merges
(``open_clip/bpe_simple_vocab_16e6.txt.gz``). From it we derive exactly the
vocabulary and merges of HF's ``CLIPTokenizer`` for the OpenAI checkpoints
(docs/method.md §2.5: the template tokenises to 49406 320 1125 539 320 343 343 343 343 2533 269 49407),
and hand them to HF's own tokenizer class. A pretrained folder that carries
tokenizer files (``save_pretrained``) is used as is.
"""
from __future__ import annotations

import gzip
import importlib.util
import json
import os
from functools import lru_cache
from pathlib import Path

from transformers import CLIPTokenizer

try:  # transformers 5.x
    from transformers.convert_slow_tokenizer import bytes_to_unicode
except ImportError:  # transformers 4.x
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
# OpenAI's tokenizer uses the first 49152 - 256 - 2 merges of the file (after its header line).
NUM_MERGES = 49152 - 256 - 2
CONTEXT_LENGTH = 77


def bpe_vocab_path() -> Path:
    """Locate the BPE file inside the installed open_clip package without importing it (it needs torchvision)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the CLIP BPE vocabulary comes from the open-clip-torch package, which is not installed; "
            "run `pip install --no-deps open-clip-torch` (make setup does this)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / VOCAB_FILE
    if not path.is_file():
        raise FileNotFoundError(f"CLIP BPE vocabulary not found at {path}")
    return path


@lru_cache(maxsize=1)
def _vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    lines = gzip.open(bpe_vocab_path()).read().decode("utf-8").split("\n")
    merges = lines[1 : NUM_MERGES + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab.extend("".join(m.split()) for m in merges)
    vocab.extend(["<|startoftext|>", "<|endoftext|>"])
    return {tok: i for i, tok in enumerate(vocab)}, merges


def tokenizer_files(folder: Path) -> Path:
    """Write HF-format ``vocab.json`` / ``merges.txt`` derived from the BPE file into ``folder`` (once)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "vocab.json").is_file():
        vocab, merges = _vocab_and_merges()
        tmp = folder / f".merges.{os.getpid()}.tmp"
        tmp.write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
        os.replace(tmp, folder / "merges.txt")
        tmp = folder / f".vocab.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, folder / "vocab.json")
    return folder


def default_cache() -> Path:
    return Path(os.environ.get("REID_CACHE", Path.home() / ".cache" / "reid"))


def clip_tokenizer(pretrained: str | None = None) -> CLIPTokenizer:
    """HF ``CLIPTokenizer``: from a pretrained folder when it has tokenizer files, else from open_clip's BPE file."""
    folder = Path(pretrained) if pretrained else None
    if folder is not None and folder.is_dir() and any((folder / f).is_file() for f in ("vocab.json", "tokenizer.json")):
        return CLIPTokenizer.from_pretrained(pretrained, local_files_only=True)
    folder = tokenizer_files(default_cache() / "clip_tokenizer")
    return CLIPTokenizer.from_pretrained(str(folder), local_files_only=True, model_max_length=CONTEXT_LENGTH)


def tokenize(tokenizer: CLIPTokenizer, texts: list[str]) -> torch.Tensor:  # noqa: F821
    """(len(texts), 77) token ids as OpenAI's ``clip.tokenize`` makes them: SOT ... EOT, then zeros.

    Truncated to CLIP's context (the last kept token stays EOT, as ``truncate=True`` there). The padding value cannot
    change a feature (the causal mask hides every position after EOT); it is 0 so that prompt embeddings and their
    ids match CLIP-ReID's and open_clip's exactly, whatever pad token a tokenizer folder names.
    """
    import torch

    out = torch.zeros(len(texts), CONTEXT_LENGTH, dtype=torch.long)
    for row, text in enumerate(texts):
        ids = tokenizer(text, truncation=False)["input_ids"]
        if len(ids) > CONTEXT_LENGTH:
            ids = ids[: CONTEXT_LENGTH - 1] + [ids[-1]]
        out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out
