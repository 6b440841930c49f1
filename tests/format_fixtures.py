"""Tiny datasets written in the papers' official on-disk layouts (annotation files with the
real names, fields and layout; a few small generated images). Used by test_paper_formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def _img(path: Path, seed: int, size=(24, 24), fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path, format=fmt)


def write_fashioniq(root: Path) -> None:
    rng_seed = 0
    for c in ("dress", "shirt", "toptee"):
        for split in ("train", "val"):
            asins = [f"B{c[:2].upper()}{split[:2].upper()}{i:04d}" for i in range(6)]
            (root / "image_splits").mkdir(parents=True, exist_ok=True)
            (root / "image_splits" / f"split.{c}.{split}.json").write_text(json.dumps(asins))
            caps = [{"target": asins[(i + 1) % 6], "candidate": asins[i],
                     "captions": [f"is more {c} {i}.", f"has longer sleeves {i}"]}
                    for i in range(6)]
            (root / "captions").mkdir(parents=True, exist_ok=True)
            (root / "captions" / f"cap.{c}.{split}.json").write_text(json.dumps(caps))
            for a in asins:
                rng_seed += 1
                _img(root / "images" / f"{a}.png", rng_seed)


def write_fashion200k(root: Path) -> None:
    words = {"dress": ["black maxi dress", "red maxi dress", "black midi dress"],
             "jacket": ["blue denim jacket", "black denim jacket"],
             "pants": ["white slim pants", "white wide pants"],
             "skirt": ["pink pleated skirt", "blue pleated skirt"],
             "top": ["striped cotton top", "floral cotton top"]}
    (root / "labels").mkdir(parents=True)
    test_files = []
    k = 0
    for split in ("train", "test"):
        for c, descs in words.items():
            lines = []
            for j, d in enumerate(descs):
                for n in range(2):
                    k += 1
                    f = f"women/{c}s/casual/{split}{j}{n}/{k}_0.jpeg"
                    _img(root / f, k)
                    lines.append(f"{f}\t0.{k % 10}\t{d}")
                    if split == "test":
                        test_files.append((f, d))
            (root / "labels" / f"{c}_{split}_detect_all.txt").write_text("\n".join(lines) + "\n")
    queries = [(a, b) for a, da in test_files for b, db in test_files
               if da != db and len(set(da.split()) ^ set(db.split())) == 2][:10]
    (root / "test_queries.txt").write_text("".join(f"{a} {b}\n" for a, b in queries))


def write_shoes(root: Path) -> None:
    names = [f"img_womens_clogs_{i}.jpg" for i in range(10)]
    for i, n in enumerate(names):
        _img(root / "attributedata" / "womens_clogs" / "0" / n, 100 + i)
    (root / "train_im_names.txt").write_text("\n".join(names[:6]) + "\n")
    (root / "eval_im_names.txt").write_text("\n".join(names[6:]) + "\n")
    caps = [{"ImageName": names[(i + 1) % 6], "ReferenceImageName": names[i],
             "RelativeCaption": f"is more textured {i}"} for i in range(6)]
    caps += [{"ImageName": names[6 + (i + 1) % 4], "ReferenceImageName": names[6 + i],
              "RelativeCaption": f"has a higher heel {i}"} for i in range(4)]
    caps.append({"ImageName": names[0], "ReferenceImageName": names[7],
                 "RelativeCaption": "crosses the split"})
    (root / "relative_captions_shoes.json").write_text(json.dumps(caps))


def write_mit_states(root: Path) -> None:
    k = 0
    for noun in ("apple", "tomato", "bread", "sky"):  # tomato and sky are test nouns
        for adj in ("ripe", "sliced", "old"):
            for _n in range(2):
                k += 1
                _img(root / "images" / f"{adj} {noun}" / f"{k}.jpg", 200 + k)
        _img(root / "images" / f"adj {noun}" / "0.jpg", 300)  # unlabelled: skipped


def write_birds_to_words(root: Path) -> None:
    from tgir.data.formats.birds_to_words import COLUMNS, image_name

    rows = ["\t".join(COLUMNS)]
    k = 0
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        for i in range(n):
            k += 1
            a = f"https://static.inaturalist.org/photos/{k}1/medium.jpg?15{k}1"
            b = f"https://static.inaturalist.org/photos/{k}2/medium.jpg?15{k}2"
            for ann in (1, 2):
                desc = f"animal1 has a {'brown' if ann == 1 else 'long'} tail while animal2 {i}"
                rows.append("\t".join([f"https://www.inaturalist.org/observations/{i}", a,
                                       "Turdus migratorius", "base",
                                       f"https://www.inaturalist.org/observations/{i + 50}", b,
                                       "Turdus merula", "sameGenus", split, str(ann), desc]))
            for j, url in enumerate((a, b)):
                _img(root / "images" / image_name(url), 900 + 2 * k + j, fmt="JPEG")
    (root / "birds-to-words-v1.0.tsv").write_text("\n".join(rows) + "\n")


def write_spot_the_diff(root: Path) -> None:
    (root / "annotations").mkdir(parents=True)
    k = 0
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        ann = []
        for i in range(n):
            k += 1
            ann.append({"img_id": str(k), "sentences": [f"the car {i} left", ""]
                        if i else ["", ""]})
            _img(root / "resized_images" / f"{k}.png", 400 + k)
            _img(root / "resized_images" / f"{k}_2.png", 500 + k)
        ann[0]["sentences"] = ["a person walked in", "the truck is gone"]
        (root / "annotations" / f"{split}.json").write_text(json.dumps(ann))


def write_cuhk_pedes(root: Path, annotations: str = "reid_raw.json",
                     path_field: str = "file_path") -> None:
    entries = []
    k = 0
    for split, ids in (("train", range(1, 5)), ("val", range(5, 7)), ("test", range(7, 10))):
        for pid in ids:
            for cam in range(2):
                k += 1
                rel = f"CUHK01/{pid:04d}{cam:03d}.png"
                _img(root / "imgs" / rel, 600 + k, size=(48, 16))
                entries.append({"split": split, "id": pid, path_field: rel,
                                "captions": [f"a man with a red shirt and {pid} bag",
                                             f"the person wears black shoes {cam}"],
                                "processed_tokens": [["a", "man"], ["the", "person"]]})
    (root / annotations).write_text(json.dumps(entries))


def write_cub(root: Path, flowers: bool = False) -> None:
    classes = ([f"class_{i:05d}" for i in range(1, 7)] if flowers
               else [f"{i:03d}.Bird_{i}" for i in range(1, 7)])
    (root / "trainclasses.txt").write_text("\n".join(classes[:3]) + "\n")
    (root / "valclasses.txt").write_text(classes[3] + "\n")
    (root / "trainvalclasses.txt").write_text("\n".join(classes[:4]) + "\n")
    (root / "testclasses.txt").write_text("\n".join(classes[4:]) + "\n")
    k = 0
    for c in classes:
        for _n in range(3):
            k += 1
            stem = f"image_{k:05d}" if flowers else f"{c.split('.')[1]}_{k:04d}"
            img = root / "jpg" / f"{stem}.jpg" if flowers else root / "images" / c / f"{stem}.jpg"
            _img(img, 700 + k)
            txt = root / "text_c10" / c / f"{stem}.txt"
            txt.parent.mkdir(parents=True, exist_ok=True)
            txt.write_text("".join(f"this bird of {c} has wing pattern {j}\n" for j in range(10)))


def write_peta(root: Path, n: int = 30) -> None:
    import scipy.io

    rng = np.random.default_rng(5)
    names = [f"attr{j:03d}" for j in range(105)]
    data = np.zeros((n, 109))
    data[:, 0] = np.arange(1, n + 1)
    data[:, 4:] = rng.integers(0, 2, (n, 105))
    data[:, 4:4 + 35] = 0
    data[:, 4:4 + 3] = rng.integers(0, 2, (n, 3))  # few distinct combinations of the 35
    perm = [rng.permutation(n) + 1 for _ in range(5)]
    parts = np.empty((5, 1), dtype=object)
    for k, p in enumerate(perm):
        parts[k, 0] = {"train": p[:15, None].astype(float), "val": p[15:20, None].astype(float),
                       "test": p[20:, None].astype(float)}
    attr = np.empty((105, 1), dtype=object)
    for j, nm in enumerate(names):
        attr[j, 0] = nm
    scipy.io.savemat(root / "PETA.mat", {"peta": {
        "data": data, "attribute": attr,
        "selected_attribute": np.arange(1, 36, dtype=float)[None],
        "partion_attribute": parts}})
    for i in range(1, n + 1):
        _img(root / "images" / f"{i:05d}.png", 800 + i, size=(40, 16))
