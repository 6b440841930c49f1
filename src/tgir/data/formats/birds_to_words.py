"""Birds-to-Words (Forbes et al., EMNLP 2019) as a composed benchmark (MAAF §3.3, Table 6):
retrieve the second bird photo from the first and the paragraph describing their difference.

Official layout (github.com/google-research-datasets/birds-to-words)::

    ROOT/birds-to-words-v1.0.tsv   tab-separated, a header row, 11 columns: img1ObservationURL,
                                   img1ImgURL, img1Species, img1Selection, img2ObservationURL,
                                   img2ImgURL, img2Species, img2Selection, split, annN,
                                   description
    ROOT/images/<file>             each photo saved under the last component of its ImgURL,
                                   query string included ("medium.jpg?1512345678": the
                                   name MAAF's loader looks up)

Every description of a pair is a query (source = image 1, target = image 2); in train the
swapped query is added too, with "animal1" and "animal2" exchanged (as MAAF does). Relevance
is the target image; the gallery is every image of the split, the source excluded.
"""

from __future__ import annotations

from pathlib import Path

from tgir import TgirError
from tgir.data.formats.common import check_split, read_tsv, target_image_split
from tgir.data.types import ComposedSplit

TSV = "birds-to-words-v1.0.tsv"
COLUMNS = ("img1ObservationURL", "img1ImgURL", "img1Species", "img1Selection",
           "img2ObservationURL", "img2ImgURL", "img2Species", "img2Selection", "split", "annN",
           "description")


def image_name(url: str) -> str:
    return url.rstrip("/").split("/")[-1]


def swap_animals(text: str) -> str:
    swap = {"animal1": "animal2", "animal2": "animal1"}
    return " ".join(swap.get(w, w) for w in text.split(" "))


def load(root: Path, split: str, image_size: int | None = None,
         strict: bool = False) -> ComposedSplit:
    root = Path(root)
    check_split(split, ("train", "val", "test"), "Birds-to-Words")
    path = root / TSV
    rows = read_tsv(path, "Birds-to-Words annotation file")
    if rows and rows[0][0] == COLUMNS[0]:
        missing = [c for c in COLUMNS if c not in rows[0]]
        if missing:
            raise TgirError(f"{path}: the header lacks the column {missing[0]!r}")
        col = {c: rows[0].index(c) for c in COLUMNS}
        rows = rows[1:]
    else:
        col = {c: i for i, c in enumerate(COLUMNS)}
    names: dict[str, int] = {}
    src, txt, tgt = [], [], []
    for n, row in enumerate(rows, 2):
        if len(row) < len(COLUMNS):
            raise TgirError(f"{path}, line {n}: {len(row)} columns, expected {len(COLUMNS)}")
        if row[col["split"]] != split:
            continue
        a = names.setdefault(image_name(row[col["img1ImgURL"]]), len(names))
        b = names.setdefault(image_name(row[col["img2ImgURL"]]), len(names))
        text = row[col["description"]].strip()
        if not text:
            continue
        src.append(a), tgt.append(b), txt.append(text)
        if split == "train":
            src.append(b), tgt.append(a), txt.append(swap_animals(text))
    if not src:
        raise TgirError(f"{path} has no {split} row")
    return target_image_split(f"birds_to_words-{split}",
                              [root / "images" / f for f in names], src, txt, tgt, image_size,
                              f"Birds-to-Words {split}", strict,
                              {"dataset": "birds_to_words", "root": str(root)})
