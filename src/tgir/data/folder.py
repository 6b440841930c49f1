"""A user's own data: JSON Lines beside a folder of images (issue 24).

One plain, greppable format per task; every path is relative to ``DIR`` (no ``..``, no
absolute path), one JSON object per line::

    DIR/triplets.jsonl    {"reference": "shoes/a.jpg", "target": "shoes/b.jpg",
                           "text": "in red, with a lower heel"}             # MAAF, TIRG, hffca
    DIR/captions.jsonl    {"file": "p/0001.jpg", "id": "person-17",
                           "text": "a woman in a long red coat"}            # HGAN, joint
    DIR/attributes.jsonl  {"file": "p/0001.jpg", "id": "person-17",
                           "attributes": {"gender": "woman", "coat": "red"}}  # AIHM

Each line may carry ``"split": "train" | "test"`` (all lines or none). Without it the split
is seeded (``seed`` 0, a fifth for test) by the unit the protocol needs: the reference image
(composed: a test reference is never seen in training), the ``id`` (captions: identities are
disjoint, as in CUHK-PEDES) or the attribute combination (attributes: the test split holds
combinations never seen in training, each of whose values is, as in AIHM's zero-shot
protocol). Registry names: ``folder`` (the task of the one file present: triplets,
attributes, or captions as sentence -> image) and ``folder_pairs`` (captions as catalog items
with their words, for the joint embedding). ``check`` lists every problem before training.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path, PurePosixPath

import numpy as np

from tgir import TgirError
from tgir.data.images import decode_image, load_images
from tgir.data.types import AttributeSplit, ComposedSplit, TextImageSplit

FILES = {"triplets.jsonl": "composed", "captions.jsonl": "captions",
         "attributes.jsonl": "attributes"}
FIELDS = {"composed": ("reference", "target", "text"), "captions": ("file", "text"),
          "attributes": ("file", "attributes")}
TEST_FRACTION = 0.2
SHOW = 5  # problems named per kind


class Problems:
    """Problems of a folder by kind, with the first few of each named (``tgir check``)."""

    def __init__(self) -> None:
        self.by: dict[str, list[str]] = defaultdict(list)

    def add(self, kind: str, what: str) -> None:
        self.by[kind].append(what)

    def __bool__(self) -> bool:
        return bool(self.by)

    def lines(self) -> list[str]:
        out = []
        for kind, items in self.by.items():
            more = f" ... and {len(items) - SHOW} more" if len(items) > SHOW else ""
            out.append(f"{len(items)} {kind}: " + "; ".join(items[:SHOW]) + more)
        return out

    def raise_if_any(self, root: Path) -> None:
        if self:
            raise TgirError(f"{root}: " + " | ".join(self.lines())
                            + f" (tgir check {root} shows each kind)")


def task_file(root: Path) -> tuple[Path, str]:
    """The one annotation file of ``root`` and its task."""
    root = Path(root)
    if not root.is_dir():
        raise TgirError(f"dataset directory not found: {root}")
    found = [(root / f, t) for f, t in FILES.items() if (root / f).is_file()]
    if not found:
        raise TgirError(f"{root} has none of {', '.join(FILES)} (the formats: the README's "
                        f"'Your own data', or tgir check --help)")
    if len(found) > 1:
        raise TgirError(f"{root} has {' and '.join(p.name for p, _ in found)}: one task per "
                        f"folder")
    return found[0]


def _safe_path(root: Path, value, where: str, problems: Problems) -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems.add("bad paths", f"{where}: not a file name ({value!r})")
        return None
    p = PurePosixPath(value.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (len(value) > 1 and value[1] == ":"):
        problems.add("paths outside the folder", f"{where}: {value!r} (relative paths inside "
                     f"{root.name}/ only)")
        return None
    return p.as_posix()


def read_lines(path: Path, task: str, problems: Problems) -> list[tuple[int, dict]]:
    """Parsed lines (line number, object) of one annotation file; problems collected."""
    out = []
    root = path.parent
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TgirError(f"cannot read {path}: {e}") from e
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path.name} line {n}"
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            problems.add("lines that are not JSON", f"{where}: {e.msg} at column {e.colno}")
            continue
        if not isinstance(d, dict):
            problems.add("lines that are not JSON objects", where)
            continue
        missing = [k for k in FIELDS[task] if k not in d]
        if missing:
            problems.add("lines missing a field", f"{where}: no {', '.join(missing)}")
            continue
        for key in ("reference", "target") if task == "composed" else ("file",):
            d[key] = _safe_path(root, d[key], where, problems)
        if any(d.get(k) is None for k in ("reference", "target", "file") if k in d):
            continue
        if "text" in d and (not isinstance(d["text"], str) or not d["text"].strip()):
            problems.add("empty texts", where)
            continue
        if task == "attributes" and (not isinstance(d["attributes"], dict) or not all(
                isinstance(k, str) and isinstance(v, str) and v.strip()
                for k, v in d["attributes"].items()) or not d["attributes"]):
            problems.add("bad attribute objects", f"{where}: attributes must map names to "
                         f"non-empty strings")
            continue
        if "split" in d and d["split"] not in ("train", "test"):
            problems.add("unknown splits", f"{where}: split {d['split']!r} (train or test)")
            continue
        out.append((n, d))
    if not out and not problems:
        problems.add("empty files", f"{path.name} has no lines")
    has_split = [("split" in d) for _, d in out]
    if any(has_split) and not all(has_split):
        first = next(n for (n, _), h in zip(out, has_split, strict=True) if not h)
        problems.add("lines without a split", f"{path.name} line {first}: some lines name "
                     f"their split and this one does not (all or none)")
    return out


def _seeded_test(keys: list, seed: int = 0, fraction: float = TEST_FRACTION) -> set:
    """A seeded ~``fraction`` of the distinct ``keys`` (at least one, never all)."""
    uniq = sorted(set(keys), key=str)
    if len(uniq) < 2:
        return set()
    rng = np.random.default_rng(seed)
    n = min(len(uniq) - 1, max(1, int(round(fraction * len(uniq)))))
    return {uniq[i] for i in rng.permutation(len(uniq))[:n]}


def _zero_shot_test(combos: list[tuple], seed: int = 0, fraction: float = TEST_FRACTION
                    ) -> set[tuple]:
    """Combinations for test: about ``fraction`` of the items, every value of a test
    combination still shown by some training combination (AIHM's zero-shot protocol)."""
    count = Counter(combos)
    rng = np.random.default_rng(seed)
    order = sorted(count, key=str)
    order = [order[i] for i in rng.permutation(len(order))]
    values: Counter = Counter()  # images per (attribute, value) still in training
    for c, k in count.items():
        for j, v in enumerate(c):
            values[(j, v)] += k
    test: set[tuple] = set()
    target = fraction * len(combos)
    for c in order:
        if sum(count[t] for t in test) >= target:
            break
        k = count[c]
        if all(values[(j, v)] > k for j, v in enumerate(c)):  # each value stays in training
            test.add(c)
            for j, v in enumerate(c):
                values[(j, v)] -= k
    return test


def _split_of(d: dict, key, test: set) -> str:
    return d["split"] if "split" in d else ("test" if key in test else "train")


def parse(root: str | Path) -> tuple[str, list[tuple[int, dict, str]], Problems]:
    """(task, [(line, object, split)], problems) of a folder, images not opened."""
    root = Path(root)
    path, task = task_file(root)
    problems = Problems()
    lines = read_lines(path, task, problems)
    if task == "composed":
        test = _seeded_test([d["reference"] for _, d in lines])
        keyed = [(n, d, _split_of(d, d["reference"], test)) for n, d in lines]
    elif task == "captions":
        ids = [str(d.get("id", d["file"])) for _, d in lines]
        test = _seeded_test(ids)
        keyed = [(n, d, _split_of(d, i, test)) for (n, d), i in zip(lines, ids, strict=True)]
    else:
        names = list(dict.fromkeys(k for _, d in lines for k in d["attributes"]))
        for n, d in lines:
            lack = [a for a in names if a not in d["attributes"]]
            if lack:
                problems.add("lines missing an attribute", f"{path.name} line {n}: no "
                             f"{', '.join(lack)}")
        seen = Counter((a, v) for _, d in lines for a, v in d["attributes"].items())
        for n, d in lines:
            for a, v in d["attributes"].items():
                if seen[(a, v)] == 1:
                    problems.add("attribute values seen once", f"{path.name} line {n}: "
                                 f"{a}={v!r} (a classifier cannot learn a value from one image)")
        combos = [tuple(d["attributes"].get(a, "") for a in names) for _, d in lines]
        test = _zero_shot_test(combos)
        keyed = [(n, d, _split_of(d, c, test)) for (n, d), c in zip(lines, combos, strict=True)]
    for s in ("train", "test"):
        if lines and not any(sp == s for _, _, sp in keyed):
            problems.add("empty splits", f"no {s} lines (add more lines or give a split)")
    return task, keyed, problems


def _files(task: str, d: dict) -> list[str]:
    return [d["reference"], d["target"]] if task == "composed" else [d["file"]]


def check(root: str | Path, image_size: int | None = 64) -> dict:
    """Everything ``tgir check`` reports: counts per split, the problems by kind (missing,
    corrupt or duplicate images, empty texts, rare or missing attribute values, bad lines)
    and the vocabulary size. Opens every image once; writes nothing."""
    from tgir.data.text import Vocabulary

    root = Path(root)
    task, keyed, problems = parse(root)
    files = sorted({f for _, d, _ in keyed for f in _files(task, d)})
    first_line: dict[str, int] = {}
    for n, d, _ in keyed:
        for f in _files(task, d):
            first_line.setdefault(f, n)
    file_name = task_file(root)[0].name
    digests: dict[str, list[str]] = defaultdict(list)
    for f in files:
        p = root / f
        where = f"{file_name} line {first_line[f]}: {f}"
        if not p.is_file():
            problems.add("missing images", where)
            continue
        try:
            decode_image(p, image_size)
        except TgirError as e:
            problems.add("unreadable images", f"{where} ({str(e).split(': ', 1)[0]})")
            continue
        digests[hashlib.sha256(p.read_bytes()).hexdigest()].append(f)
    for same in digests.values():
        if len(same) > 1:
            problems.add("duplicate images (same bytes)", " = ".join(same))
    seen_lines = Counter(json.dumps(d, sort_keys=True) for _, d, _ in keyed)
    for n, d, _ in keyed:
        if seen_lines[json.dumps(d, sort_keys=True)] > 1:
            problems.add("duplicate lines", f"line {n}")
    splits = Counter(sp for _, _, sp in keyed)
    out = {"task": task, "file": file_name, "lines": len(keyed),
           "splits": dict(splits), "images": len(files),
           "problems": problems.lines(), "ok": not problems}
    texts = [d["text"] for _, d, _ in keyed if "text" in d]
    if texts:
        out["vocabulary"] = len(Vocabulary.build(texts)) - 2
    if task == "attributes":
        out["attributes"] = {a: sorted({d["attributes"][a] for _, d, _ in keyed
                                        if a in d["attributes"]})
                             for a in dict.fromkeys(k for _, d, _ in keyed
                                                    for k in d["attributes"])}
    return out


def _usable(root: Path, task: str) -> list[tuple[int, dict, str]]:
    """Every line with its split; any problem of the annotation file (a bad line, a path out of
    the folder, a value seen once) or a listed image that is missing is an error naming it
    (unreadable images are reported by the image loader)."""
    task_, keyed, problems = parse(root)
    if task_ != task:
        raise TgirError(f"{root} holds {task_} data ({task_file(root)[0].name}), not {task}")
    problems.raise_if_any(root)
    missing = sorted({f for _, d, _ in keyed for f in _files(task, d)
                      if not (root / f).is_file()})
    if missing:
        raise TgirError(f"{root}: {len(missing)} image file(s) listed but missing: "
                        + ", ".join(missing[:SHOW]) + (" ..." if len(missing) > SHOW else ""))
    return keyed


def load(root: str | Path, split: str, image_size: int | None = None,
         strict: bool = False) -> ComposedSplit | TextImageSplit | AttributeSplit:
    """The registry's ``folder``: the split of the folder's one task."""
    root = Path(root)
    _, task = task_file(root)
    if split not in ("train", "test"):
        raise TgirError(f"a folder dataset has the splits train and test, not {split!r}")
    size = image_size or 64
    if task == "composed":
        rows = [x for x in _usable(root, task) if x[2] == split]
        files = list(dict.fromkeys(f for _, d, _ in rows for f in _files(task, d)))
        pos = {f: i for i, f in enumerate(files)}
        return ComposedSplit(
            name=f"folder-{split}",
            images=load_images([root / f for f in files], size, desc=f"{root.name} {split}",
                               strict=strict),
            labels=np.arange(len(files), dtype=np.int64),
            query_source=np.array([pos[d["reference"]] for _, d, _ in rows], dtype=np.int64),
            query_text=[d["text"] for _, d, _ in rows],
            query_target=np.array([pos[d["target"]] for _, d, _ in rows], dtype=np.int64),
            image_ids=[PurePosixPath(f).with_suffix("").as_posix().replace("/", "__")
                       for f in files],
            meta={"dataset": "folder", "root": str(root)})
    if task == "captions":
        rows = [x for x in _usable(root, task) if x[2] == split]
        files = list(dict.fromkeys(d["file"] for _, d, _ in rows))
        pos = {f: i for i, f in enumerate(files)}
        ident = {}
        for _, d, _ in rows:
            ident.setdefault(d["file"], str(d.get("id", d["file"])))
        ids = sorted(set(ident.values()))
        lab = {i: j for j, i in enumerate(ids)}
        return TextImageSplit(
            name=f"folder-{split}",
            images=load_images([root / f for f in files], size, desc=f"{root.name} {split}",
                               strict=strict),
            labels=np.array([lab[ident[f]] for f in files], dtype=np.int64),
            captions=[d["text"] for _, d, _ in rows],
            caption_image=np.array([pos[d["file"]] for _, d, _ in rows], dtype=np.int64),
            image_ids=[PurePosixPath(f).with_suffix("").as_posix().replace("/", "__")
                       for f in files],
            meta={"dataset": "folder", "root": str(root), "identities": ids})
    keyed = _usable(root, task)
    rows = [x for x in keyed if x[2] == split]
    names = list(dict.fromkeys(k for _, d, _ in keyed for k in d["attributes"]))
    schema = {a: sorted({d["attributes"][a] for _, d, _ in keyed}) for a in names}
    return AttributeSplit(
        name=f"folder-{split}",
        images=load_images([root / d["file"] for _, d, _ in rows], size,
                           desc=f"{root.name} {split}", strict=strict),
        attributes=np.array([[schema[a].index(d["attributes"][a]) for a in names]
                             for _, d, _ in rows], dtype=np.int64).reshape(len(rows), len(names)),
        schema=schema,
        image_ids=[str(d.get("id", PurePosixPath(d["file"]).with_suffix("").as_posix()))
                   .replace("/", "__") + f"#{n}" for n, d, _ in rows],
        meta={"dataset": "folder", "root": str(root)})


def load_pairs(root: str | Path, split: str, image_size: int | None = None,
               strict: bool = False, min_count: int = 2):
    """The registry's ``folder_pairs``: captions as catalog items with their §4.1 words
    (words in at least ``min_count`` training items), for the joint embedding."""
    from tgir.data.catalog_words import cached_vocabulary, pairs_split

    root = Path(root)
    _, task = task_file(root)
    if task != "captions":
        raise TgirError(f"folder_pairs reads captions.jsonl; {root} holds {task} data")
    if split not in ("train", "test"):
        raise TgirError(f"a folder dataset has the splits train and test, not {split!r}")
    keyed = _usable(root, task)
    items = [{"id": f"{d.get('id', d['file'])}#{n}", "file": d["file"]} for n, d, _ in keyed]
    cw = cached_vocabulary(root, [it["id"] for it in items], [d["text"] for _, d, _ in keyed],
                           [sp == "train" for _, _, sp in keyed], min_count, "folder")
    pick = [j for j, (_, _, sp) in enumerate(keyed) if sp == split]
    return pairs_split(f"folder-{split}", root, [items[j] for j in pick],
                       [keyed[j][1]["text"] for j in pick], cw, image_size or 64, strict,
                       {"dataset": "folder_pairs"})


def write_example(source: str | Path, out: str | Path, task: str, limit: int | None = None,
                  source_name: str = "emoji") -> Path:
    """Write a folder in this format from a generated dataset (emoji by default), as a user
    would have it: images in per-split subfolders (PNG), one JSON Lines file, relative
    paths, the source's own train / test split on every line. ``limit`` caps lines per
    split; attribute lines with a value that occurs once are left out (``check`` refuses
    them). For the README's worked example and its test."""
    from PIL import Image

    from tgir.data.registry import build

    if task not in ("composed", "captions", "attributes"):
        raise TgirError(f"task must be composed, captions or attributes, not {task!r}")
    name = {"composed": source_name, "captions": f"{source_name}_text",
            "attributes": f"{source_name}_attr"}[task]
    out = Path(out)
    if out.exists():
        raise TgirError(f"{out} exists; choose a new directory")
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    lines = []
    for split in ("train", "test"):
        sp = build(name, source, split)
        (tmp / split).mkdir(parents=True)

        def save(i: int, sp=sp, split=split) -> str:
            rel = f"{split}/{sp.image_ids[i].replace('/', '_')}.png"
            if not (tmp / rel).exists():
                Image.fromarray(sp.images[i]).save(tmp / rel)
            return rel

        if task == "composed":
            for q in range(min(sp.num_queries, limit or sp.num_queries)):
                lines.append({"reference": save(int(sp.query_source[q])),
                              "target": save(int(sp.query_target[q])),
                              "text": sp.query_text[q], "split": split})
        elif task == "captions":
            for c in range(min(sp.num_queries, limit or sp.num_queries)):
                i = int(sp.caption_image[c])
                lines.append({"file": save(i), "id": f"id{int(sp.labels[i])}",
                              "text": sp.captions[c], "split": split})
        else:
            for i in range(min(len(sp.images), limit or len(sp.images))):
                attrs = {a: sp.schema[a][int(v)] for a, v in zip(sp.schema, sp.attributes[i],
                                                                 strict=True)}
                lines.append({"file": save(i), "id": sp.image_ids[i], "attributes": attrs,
                              "split": split})
    if task == "attributes":  # a value seen once is refused by check: leave such lines out
        seen = Counter((a, v) for x in lines for a, v in x["attributes"].items())
        lines = [x for x in lines if all(seen[(a, v)] > 1 for a, v in x["attributes"].items())]
    fname = {"composed": "triplets.jsonl", "captions": "captions.jsonl",
             "attributes": "attributes.jsonl"}[task]
    (tmp / fname).write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
    tmp.replace(out)
    return out
