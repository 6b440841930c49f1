"""Word tokenizer and vocabulary built from training text (Dodds et al. §2: LSTM over words)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from tgir import TgirError

# words of any script (letters / digits, inner hyphens and apostrophes kept) or a single
# pictographic symbol; punctuation separates
_WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*|[\u2600-\u27bf\U0001f000-\U0001faff]")
PAD, UNK = "<pad>", "<unk>"


def tokenize(text: str) -> list[str]:
    """Lower-case words of any script; hyphenated position words such as ``top-left`` stay one
    token; an emoji is a token of its own. Words not in a vocabulary map to ``<unk>``."""
    return _WORD.findall(text.lower())


class Vocabulary:
    """Word <-> id map; id 0 is padding, id 1 is the unknown word."""

    def __init__(self, words: Iterable[str]):
        self.itos = [PAD, UNK] + [w for w in words if w not in (PAD, UNK)]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> Vocabulary:
        counts = Counter(w for t in texts for w in tokenize(t))
        return cls(sorted(w for w, c in counts.items() if c >= min_count))

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(w, 1) for w in tokenize(text)]

    def encode_batch(self, texts: list[str], max_len: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Padded id matrix (B, L) and lengths (B,). An empty text has length 0."""
        ids = [self.encode(t)[:max_len] for t in texts]
        width = max([len(x) for x in ids] + [1])
        out = np.zeros((len(ids), width), dtype=np.int64)
        for i, x in enumerate(ids):
            out[i, : len(x)] = x
        return out, np.array([len(x) for x in ids], dtype=np.int64)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"words": self.itos}, indent=0))

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        p = Path(path)
        if not p.is_file():
            raise TgirError(f"vocabulary file not found: {p}")
        try:
            words = json.loads(p.read_text())["words"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise TgirError(f"vocabulary file {p} is corrupt: {e}") from e
        return cls(words)
