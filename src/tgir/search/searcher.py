"""One query API for every query kind, over a trained run and a persistent index.

``Searcher(run_dir, index_dir).search(Query(...), k)``. A query may be

- composed: a reference image (path, bytes or catalog ``item_id``) + modification text
  (Zhang et al., Dodds et al.);
- refinement words: desired ``plus`` / undesired ``minus`` words (Sadeh et al.'s w+ / w-), combined
  by the model's own method when it has one (``model.refine``); a composed model folds ``plus``
  words into the modification text and has no meaning for ``minus`` words;
- text only (``model.embed_text_query``) or attributes only (``model.embed_attributes``) for
  the text->image and attribute->image models that define them.

A model that cannot answer a kind of query says so in a clear error naming the kinds it does
answer (``query_kinds``). Without ``index_dir`` the run's own evaluation split is the catalog,
indexed once into ``RUN_DIR/index``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from tgir import TgirError
from tgir.data.catalog import catalog_split
from tgir.data.images import MAX_PIXELS, decode_image, to_tensor_batch
from tgir.data.text import tokenize
from tgir.engine.device import pick_device
from tgir.models.checkpoint import file_sha256, load_run
from tgir.models.joint_embedding import METHODS
from tgir.models.tasks import capabilities
from tgir.search.index import Index, build_index

MAX_TEXT_CHARS = 1000
MAX_K = 1000
KIND_NAMES = {"composed": "reference image + text", "text": "text-only",
              "attributes": "attribute", "image": "reference-image-only (similar images)"}


def query_kinds(model) -> tuple[str, ...]:
    """The query kinds a model answers (its task's, ``models/tasks.py``): ``composed`` (a
    reference image or item + a text or words), ``text`` (a text or words alone),
    ``attributes`` (an attribute set), ``image`` (a reference alone)."""
    return capabilities(model).query_kinds


@dataclass
class Query:
    text: str = ""
    image: str | Path | bytes | None = None
    item_id: str | None = None
    attributes: dict[str, Any] | None = None
    plus: list[str] = field(default_factory=list)
    minus: list[str] = field(default_factory=list)
    keep_reference: bool = False
    method: str | None = None  # Sadeh et al. refinement: qa+saf (default), qa, saf or filter
    image_name: str | None = None  # an upload's file name, for messages

    @property
    def has_reference(self) -> bool:
        return self.image is not None or self.item_id is not None

    def kind(self) -> str:
        if self.has_reference:
            words = self.text.strip() or self.plus or self.minus
            return "composed" if words else "image"
        if self.attributes:
            return "attributes"
        return "text"


@dataclass
class Result:
    rank: int
    id: str
    score: float
    file: str
    text: str
    meta: dict


class Searcher:
    def __init__(self, run_dir: str | Path, index_dir: str | Path | None = None,
                 device: str = "auto", progress: bool = True, max_pixels: int = MAX_PIXELS,
                 batch_requests: bool = False):
        self.run = Path(run_dir)
        self.cfg, self.vocab, self.model = load_run(self.run, pick_device(device))
        self.device = next(self.model.parameters()).device
        self.max_pixels = max_pixels
        if index_dir is None:
            index_dir = self._own_index(progress)
        self.index = Index(index_dir, batch_requests=batch_requests)
        dim = self._dim()
        self.index.check_model(self.run, dim)
        self._vectors: torch.Tensor | None = None  # stored vectors, for models with match()
        self._display: dict[str, str] | None = None
        self._item_words: torch.Tensor | None = None
        self.caps = capabilities(self.model)
        self.kinds = self.caps.query_kinds
        self._sentences = None
        if self.index.caption_vectors is not None and "text" not in self.kinds:
            self.kinds = (*self.kinds, "text")  # a --pretrained folder's captions (MiniLM)
        self.notes: list[str] = []  # what the last search had to say (unknown words, ...)

    def _dim(self) -> int:
        with torch.no_grad():
            s = self.model.image_size
            return int(self.model.embed_target(torch.zeros(1, 3, s, s, device=self.device))
                       .shape[1])

    def _own_index(self, progress: bool) -> Path:
        path = self.run / "index"
        if (path / "manifest.json").is_file():
            try:
                same = Index(path).manifest["model"]["sha256"] == file_sha256(
                    self.run / "model.safetensors")
            except TgirError:
                same = False
            if same:
                return path
        split = catalog_split(self.cfg.data.name, self.cfg.data.eval_split)
        return build_index(self.run, self.cfg.data.root, path, split=split, progress=progress,
                           device=str(self.device))

    # ------------------------------------------------------------------ queries
    def _validate(self, q: Query, k: int) -> None:
        if not 1 <= k <= MAX_K:
            raise TgirError(f"k must be between 1 and {MAX_K}, got {k}")
        if len(q.text) > MAX_TEXT_CHARS:
            raise TgirError(f"the text is {len(q.text)} characters; the limit is "
                            f"{MAX_TEXT_CHARS}")
        if q.image is not None and q.item_id is not None:
            raise TgirError("give a reference image or a catalog item id, not both")
        kind = q.kind()
        if kind == "image" and "composed" in self.kinds and "image" not in self.kinds:
            raise TgirError("the modification text is empty")
        if not (q.has_reference or q.text.strip() or q.plus or q.minus or q.attributes):
            raise TgirError("the query is empty: give "
                            + (", ".join(KIND_NAMES[k] for k in self.kinds) or "a query"))
        if kind not in self.kinds:
            raise TgirError(f"model {self.cfg.model['name']!r} does not answer "
                            f"{KIND_NAMES[kind]} queries; it answers: "
                            f"{', '.join(KIND_NAMES[k] for k in self.kinds)}")
        if q.item_id is not None and q.item_id not in self.index.row_of:
            raise TgirError(f"unknown item id {q.item_id!r}")
        if q.method is not None and not self.caps.refine:
            raise TgirError(f"model {self.cfg.model['name']!r} has no refinement methods "
                            f"(method={q.method!r} is for the joint embedding of Sadeh et al.)")
        if kind == "attributes" and (q.text.strip() or q.plus or q.minus):
            raise TgirError("an attribute query takes attributes only, not text or words")

    def reference_array(self, q: Query) -> np.ndarray:
        if q.item_id is not None:
            return decode_image(self.index.image_path(q.item_id), self.model.image_size)
        return decode_image(q.image, self.model.image_size, max_pixels=self.max_pixels,
                            name=q.image_name)

    @torch.no_grad()
    def embed_query(self, q: Query) -> tuple[np.ndarray, np.ndarray | None]:
        """The query vector (1, D) and, for composed queries, the reference's own vector."""
        kind = q.kind()
        m = self.model
        if kind == "image":  # a reference alone: similar images
            ref = to_tensor_batch(self.reference_array(q)[None]).to(self.device)
            vec = m.embed_reference(ref)
            return vec.float().cpu().numpy(), m.embed_target(ref).float().cpu().numpy()
        if kind == "composed":
            ref = to_tensor_batch(self.reference_array(q)[None]).to(self.device)
            if q.minus:
                raise TgirError(f"model {self.cfg.model['name']!r} has no way to use "
                                f"undesired words; put the change in the text instead")
            text = " ".join([q.text.strip(), *q.plus]).strip()
            ids, lengths = self.vocab.encode_batch([text])
            vec = m.compose(ref, torch.from_numpy(ids).to(self.device),
                            torch.from_numpy(lengths).to(self.device))
            return vec.float().cpu().numpy(), m.embed_target(ref).float().cpu().numpy()
        if kind == "attributes":
            return m.embed_attributes(self.complete_attributes(q.attributes)
                                      ).float().cpu().numpy(), None
        if q.minus:
            raise TgirError(f"model {self.cfg.model['name']!r} has no way to use undesired "
                            f"words; say what you want in the text instead")
        text = " ".join([q.text.strip(), *q.plus]).strip()
        if self.caps.task == "text":  # the model tokenises raw text itself (HGAN)
            return m.embed_sentences([text]).float().cpu().numpy(), None
        ids, lengths = self.vocab.encode_batch([text])
        vec = m.embed_text_query(torch.from_numpy(ids).to(self.device),
                                 torch.from_numpy(lengths).to(self.device))
        return vec.float().cpu().numpy(), None

    def search(self, q: Query, k: int = 10) -> list[Result]:
        """Ranked catalog items for ``q``; the reference item itself is left out unless
        ``q.keep_reference``."""
        self._validate(q, k)
        self.notes = []
        if self.caps.refine:  # Sadeh et al.: QA / SAF / QA+SAF / filter
            return self._refine_search(q, k)
        if q.kind() == "text" and self.index.caption_vectors is not None:
            return self._caption_search(q, k)
        if q.text and self.vocab.itos[2:]:  # a model with its own word list
            unknown = self.unknown_words(q.text)
            if unknown:
                self.notes.append(f"words the model has not seen (ignored as unknown): "
                                  f"{', '.join(unknown)}")
        vec, ref_vec = self.embed_query(q)
        exclude: set[int] = set()
        if not q.keep_reference:
            if q.item_id is not None:
                exclude.add(self.index.row_of[q.item_id])
            elif ref_vec is not None:  # an uploaded copy of a catalog image
                s, r = self.index.search(ref_vec, 1)
                if len(r[0]) and s[0, 0] > 1 - 1e-5:
                    exclude.add(int(r[0, 0]))
        if self.caps.pair_scorer:  # the model's own pair scorer (AIHM's matching head)
            with torch.no_grad():
                s_all = self.model.match(torch.from_numpy(vec).to(self.device),
                                         self.stored_vectors())
            top = torch.topk(s_all[0], min(k + len(exclude), s_all.shape[1]))
            scores, rows = top.values.cpu().numpy()[None], top.indices.cpu().numpy()[None]
        else:
            scores, rows = self.index.search(vec, k + len(exclude))
        return self._results(scores[0], rows[0], exclude, k)

    def _caption_search(self, q: Query, k: int) -> list[Result]:
        """A text query over a --pretrained folder: the items whose captions are closest
        (MiniLM sentence cosine); items without a caption come last."""
        if q.minus:
            raise TgirError("this index has no way to use undesired words; say what you want "
                            "in the text instead")
        if self._sentences is None:
            from tgir.models.pretrained import SentenceEncoder

            self._sentences = SentenceEncoder()
        text = " ".join([q.text.strip(), *q.plus]).strip()
        v = self._sentences([text]).numpy()[0]
        scores = self.index.caption_vectors @ v
        top = np.argsort(-scores)[:k]
        self.notes.append("ranked by caption text (all-MiniLM-L6-v2), not by the pixels")
        return self._results(scores[top], top, set(), k)

    def _results(self, scores, rows, exclude: set[int], k: int) -> list[Result]:
        out = []
        for s, r in zip(scores, rows, strict=True):
            if r < 0 or int(r) in exclude:
                continue
            it = self.index.items[int(r)]
            out.append(Result(len(out) + 1, it["id"], float(s), it["file"], it.get("text", ""),
                              it.get("meta", {})))
            if len(out) == k:
                break
        return out

    def stored_vectors(self) -> torch.Tensor:
        """Every vector of the index (for models that score the catalog themselves)."""
        if self._vectors is None:
            self._vectors = torch.from_numpy(self.index.vectors()).to(self.device)
        return self._vectors

    # ------------------------------------------------------------------ Sadeh et al. refinement
    def word_ids(self, words: list[str], stemmed: bool = False) -> torch.Tensor:
        """Vocabulary ids of refinement words (stemmed as the catalog was, Sadeh et al. §4.1,
        unless already ``stemmed``); an unknown word is an error naming the nearest
        vocabulary words."""
        from tgir.data.catalog_words import stem

        out = []
        for w in words:
            st = w if stemmed else stem(w)
            if st not in self.vocab.stoi or self.vocab.stoi[st] < 2:
                raise TgirError(f"unknown refinement word {w!r}; nearest vocabulary words: "
                                f"{', '.join(self.nearest_vocabulary(w))}")
            out.append(self.vocab.stoi[st])
        return torch.tensor(sorted(set(out)), dtype=torch.long, device=self.device)

    def nearest_vocabulary(self, word: str, n: int = 6) -> list[str]:
        """Readable vocabulary words closest to ``word``: spelling first, then meaning."""
        import difflib

        from tgir.data.wordvec import nearest_words

        names = [self.display.get(w, w) for w in self.vocab.itos[2:]]
        close = difflib.get_close_matches(word.lower(), names, n=3, cutoff=0.7)
        return list(dict.fromkeys(close + nearest_words(word, names, n)))[:n]

    @property
    def display(self) -> dict[str, str]:
        if self._display is None:
            p = self.run / "display.json"
            self._display = json.loads(p.read_text()) if p.is_file() else {}
        return self._display

    def item_words(self) -> torch.Tensor:
        """bool (N, V): which vocabulary words each catalog item's metadata has (eq. 11)."""
        if self._item_words is None:
            from tgir.data.catalog_words import stems

            m = torch.zeros(len(self.index.items), len(self.vocab), dtype=torch.bool)
            for i, it in enumerate(self.index.items):
                ids = [self.vocab.stoi[s] for s in stems(it.get("text", ""))
                       if self.vocab.stoi.get(s, 1) >= 2]
                m[i, ids] = True
            self._item_words = m.to(self.device)
        return self._item_words

    def text_word_ids(self, text: str) -> list[str]:
        """The refinement words of a free text: the catalog's own §4.1 step (nouns and
        adjectives, stemmed), so "a red heart" asks for red + heart; a word that remains and
        is not in the vocabulary is an error naming the nearest ones."""
        from tgir.data.catalog_words import analyze

        if not text.strip():
            return []
        per_text, surface = analyze([text])
        words = per_text[0]
        if not words:
            raise TgirError(f"no refinement word in {text!r}: the vocabulary holds nouns and "
                            f"adjectives, e.g. {', '.join(self.nearest_vocabulary(text, 4))}")
        said = {st: w for (st, w) in surface}
        for st in words:
            if self.vocab.stoi.get(st, 1) < 2:
                w = said.get(st, st)
                raise TgirError(f"unknown refinement word {w!r} in {text!r}; nearest "
                                f"vocabulary words: {', '.join(self.nearest_vocabulary(w))}")
        return words

    @torch.no_grad()
    def _refine_search(self, q: Query, k: int) -> list[Result]:
        m = self.model
        plus = torch.unique(torch.cat([self.word_ids(self.text_word_ids(q.text), stemmed=True),
                                       self.word_ids(q.plus)]))
        minus = self.word_ids(list(q.minus))
        g = self.stored_vectors()
        f_query = None
        exclude: set[int] = set()
        if q.has_reference:
            ref = to_tensor_batch(self.reference_array(q)[None]).to(self.device)
            f_query = m.encode_image(ref)
            if not q.keep_reference:
                if q.item_id is not None:
                    exclude.add(self.index.row_of[q.item_id])
                else:  # an uploaded copy of a catalog image
                    cos = torch.nn.functional.cosine_similarity(f_query, g[:, :m.embed_dim])
                    best = int(cos.argmax())
                    if float(cos[best]) > 1 - 1e-5:
                        exclude.add(best)
        method = q.method or METHODS[0]
        if method == "filter" and not bool(self.item_words().any()):
            raise TgirError("hard filtering (method filter) needs catalog text, and this "
                            "catalog has none: use qa+saf, qa or saf")
        scores = m.refine_scores(f_query, plus, minus, g, method,
                                 self.item_words() if method == "filter" else None)
        top = torch.topk(scores, min(k + len(exclude), len(scores)))
        return self._results(top.values.cpu().numpy(), top.indices.cpu().numpy(), exclude, k)

    @property
    def attribute_schema(self) -> dict[str, list[str]] | None:
        """Attribute -> valid values, for attribute models (None otherwise)."""
        return self.model.schema if self.caps.task == "attributes" else None

    def complete_attributes(self, attrs: dict[str, Any]) -> dict[str, str]:
        """Fill attributes the query leaves out with their "none" value ("no particular skin
        tone / hair / role"); an attribute without one must be given."""
        schema = self.attribute_schema or {}
        out = {str(k): str(v) for k, v in attrs.items()}
        for a, values in schema.items():
            if a not in out:
                if "none" not in values:
                    more = " ..." if len(values) > 30 else ""
                    raise TgirError(f"the attribute query needs {a!r} (one of "
                                    f"{', '.join(values[:30])}{more})")
                out[a] = "none"
        return out

    def unknown_words(self, text: str) -> list[str]:
        return [w for w in tokenize(text) if w not in self.vocab.stoi]

    def grid(self, q: Query, hits: list[Result], path: str | Path, cell: int = 128) -> Path:
        """Write a PNG: the reference image and the text, then the results with rank and
        score."""
        pad, head, foot = 8, 18, 30  # foot: two label lines under each result
        w = (len(hits) + 1) * (cell + pad) + pad
        canvas = Image.new("RGB", (w, cell + head + foot + 2 * pad), (235, 235, 235))
        d = ImageDraw.Draw(canvas)
        words = " ".join([f"+{x}" for x in q.plus] + [f"-{x}" for x in q.minus])
        if q.attributes:
            words += " " + ", ".join(f"{k}={v}" for k, v in
                                     self.complete_attributes(q.attributes).items())
        if q.method:
            words += f" [{q.method}]"
        d.text((pad, pad), f"query: {q.text} {words}"[: w // 6], fill=(0, 0, 0))
        if q.has_reference:
            ref = Image.fromarray(self.reference_array(q)).resize((cell, cell), Image.NEAREST)
            canvas.paste(ref, (pad, head + pad))
            d.rectangle([pad - 2, head + pad - 2, pad + cell + 1, head + pad + cell + 1],
                        outline=(30, 90, 200), width=2)
        for j, h in enumerate(hits, start=1):
            x = pad + j * (cell + pad)
            im = Image.fromarray(decode_image(self.index.image_path(h.id), cell))
            canvas.paste(im, (x, head + pad))
            fit = max(4, (cell + pad - 4) // 6)  # characters of the default font per cell
            label = h.id if len(h.id) <= fit else h.id[: fit - 2] + ".."
            d.text((x, head + pad + cell + 3), f"#{h.rank}  {h.score:.2f}", fill=(0, 0, 0))
            d.text((x, head + pad + cell + 15), label, fill=(60, 60, 60))
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        canvas.save(path)
        return path
