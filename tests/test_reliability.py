"""Reliability: bad inputs, damaged files and injected faults (README table "Reliability").

Every case either works correctly or fails with a clear TgirError / 4xx; nothing crashes,
nothing already saved is lost. A summary line is printed at the end of the session.
"""

import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tgir import TgirError, config
from tgir.data.images import decode_image
from tgir.data.safe_npy import load_object_npy
from tgir.data.text import Vocabulary
from tgir.engine.train import train
from tgir.models import checkpoint
from tgir.search.searcher import Query, Searcher

from .conftest import tiny_train_config


def _encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def _exif_rotated() -> bytes:
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    im.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW when displayed
    return _encode(im, "JPEG", exif=exif.tobytes(), quality=95)


GOOD = {
    "1x1": (_encode(Image.new("RGB", (1, 1), (9, 9, 9))), (1, 1)),
    "grayscale L": (_encode(Image.new("L", (8, 6), 128)), (6, 8)),
    "grayscale+alpha LA": (_encode(Image.new("LA", (8, 6), (10, 0))), (6, 8)),
    "RGBA (transparent -> white)": (_encode(Image.new("RGBA", (5, 5), (255, 0, 0, 0))), (5, 5)),
    "palette P": (_encode(Image.new("P", (7, 7), 3)), (7, 7)),
    "CMYK JPEG": (_encode(Image.new("CMYK", (9, 9), (0, 255, 255, 0)), "JPEG"), (9, 9)),
    "16-bit grayscale": (_encode(Image.fromarray(np.full((4, 4), 65535, np.uint16))), (4, 4)),
    "EXIF-rotated JPEG": (_exif_rotated(), (40, 20)),
}
BAD = {
    "not an image": b"GIF89a? no, just text",
    "truncated PNG": _encode(Image.new("RGB", (64, 64), (1, 2, 3)))[:50],
    "zero bytes": b"",
    "50-megapixel PNG (bomb guard)": _encode(Image.new("1", (8000, 6250))),
}


@pytest.mark.parametrize("case", sorted(GOOD))
def test_image_modes_decode(case, reliability):
    data, (h, w) = GOOD[case]
    reliability["inputs tried"] += 1
    a = decode_image(data)
    assert a.dtype == np.uint8 and a.shape == (h, w, 3)
    if case.startswith("RGBA"):
        assert (a == 255).all()
    if case == "16-bit grayscale":
        assert (a == 255).all()
    if case == "EXIF-rotated JPEG":  # displayed upright: the blue half is now on top
        assert a[2, 10, 2] > 150 and a[37, 10, 0] > 150


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_images_are_rejected_clearly(case, reliability):
    reliability["inputs tried"] += 1
    with pytest.raises(TgirError, match="corrupt|empty|too large"):
        decode_image(BAD[case], max_pixels=25_000_000)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.integers(0, 400))
def test_decoder_fuzz(noise, cut):
    """Random bytes and damaged PNG/JPEG: an array or a TgirError, never anything else."""
    base = [_encode(Image.new("RGB", (16, 16), (cut % 256, 3, 4))),
            _encode(Image.new("RGB", (16, 16), (5, 6, 7)), "JPEG")][cut % 2]
    for data in (noise, base[:cut] + noise, base[: len(base) // 2] + noise + base[len(base) // 2:]):
        try:
            a = decode_image(data)
            assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
        except TgirError:
            pass


def test_texts(tiny_run, reliability):
    s = Searcher(tiny_run, progress=False)
    ref = s.index.items[0]["id"]
    for text in ["", "   "]:
        reliability["inputs tried"] += 1
        with pytest.raises(TgirError, match="text is empty"):
            s.search(Query(text=text, item_id=ref), 3)
    reliability["inputs tried"] += 1
    with pytest.raises(TgirError, match="limit is 1000"):
        s.search(Query(text="red " * 2500, item_id=ref), 3)
    for text in ["猫と犬 😀 café", "zzz qqq xxyy"]:  # non-Latin, emoji, only unknown words
        reliability["inputs tried"] += 1
        assert s.unknown_words(text)
        assert len(s.search(Query(text=text, item_id=ref), 3)) == 3
    v = Vocabulary(["red"])
    assert v.encode("red 猫 😀") == [2, 1, 1]  # unknown words -> <unk>


def test_refused_files(tiny_run, tiny_css2d, tmp_path, reliability):
    # a checkpoint of another model under this run's config
    other = tmp_path / "tirg"
    tirg_cfg = tiny_train_config(tiny_css2d, model="tirg", steps=1)
    for k in ("levels", "blocks"):
        tirg_cfg["model"].pop(k)
    train(config.from_dict(tirg_cfg), other, progress=False)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    for f in ("config.yaml", "vocab.json"):
        (wrong / f).write_bytes((tiny_run / f).read_bytes())
    (wrong / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    reliability["inputs tried"] += 1
    with pytest.raises(TgirError, match="does not match the model"):
        checkpoint.load_run(wrong)
    # a truncated checkpoint
    data = (tiny_run / "model.safetensors").read_bytes()
    (wrong / "model.safetensors").write_bytes(data[: len(data) // 2])
    reliability["inputs tried"] += 1
    with pytest.raises(TgirError, match="corrupt"):
        checkpoint.load_run(wrong)
    # a malicious pickle in the CSS annotation slot is never executed
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    bad = tmp_path / "css_toy_dataset_novel2_small.dup.npy"
    np.save(bad, np.array(Evil(), dtype=object), allow_pickle=True)
    reliability["inputs tried"] += 1
    with pytest.raises(TgirError, match="refused to unpickle.*posix.system|refused.*system"):
        load_object_npy(bad)
    assert not (tmp_path / "pwned").exists()
    # while an honest object .npy still loads
    good = tmp_path / "good.npy"
    np.save(good, np.array({"test": {"mods": [1, 2]}}, dtype=object), allow_pickle=True)
    assert load_object_npy(good) == {"test": {"mods": [1, 2]}}


TRAINER = textwrap.dedent("""
    import sys
    from tgir import config
    from tgir.engine.train import train
    from tests.conftest import tiny_train_config
    cfg = tiny_train_config(sys.argv[1], steps=12)
    cfg["train"]["ckpt_every"] = 1
    train(config.from_dict(cfg), sys.argv[2], resume=sys.argv[3] == "1", progress=False)
""")


def test_kill_9_during_training_then_resume_equals_straight(tiny_css2d, tmp_path,
                                                            reliability):
    cfg = tiny_train_config(tiny_css2d, steps=12)
    cfg["train"]["ckpt_every"] = 1
    train(config.from_dict(cfg), tmp_path / "straight", progress=False)
    run = tmp_path / "killed"
    last = run / "checkpoints" / "last.safetensors"
    rng = np.random.default_rng(0)
    env = {**os.environ, "PYTHONPATH": str(tmp_path.parent.parent) + os.pathsep +
           os.environ.get("PYTHONPATH", "")}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def stamp() -> int | None:
        try:
            return last.stat().st_mtime_ns
        except FileNotFoundError:
            return None

    kills = 0
    for _ in range(3):  # three kills, each after the child has saved at least one checkpoint
        before = stamp()
        p = subprocess.Popen([sys.executable, "-c", TRAINER, str(tiny_css2d), str(run),
                              "1" if before is not None else "0"], cwd=root, env=env,
                             stderr=subprocess.PIPE)
        deadline = time.monotonic() + 180  # start-up time (torch import) varies by machine
        while p.poll() is None and stamp() == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stamp() != before or p.poll() is not None, "trainer made no progress in 180 s"
        time.sleep(float(rng.uniform(0.0, 0.4)))  # land anywhere in the next step / save
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
        err = p.stderr.read().decode()
        assert p.returncode in (0, -signal.SIGKILL), err[-1500:]
        if (run / "model.safetensors").is_file():
            break
    assert kills >= 1
    reliability["faults injected"] += kills
    if not (run / "model.safetensors").is_file():
        train(config.from_dict(cfg), run, resume=True, progress=False)
    a, _ = checkpoint.read(tmp_path / "straight" / "model.safetensors")
    b, _ = checkpoint.read(run / "model.safetensors")
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k
    leftovers = [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no half-written checkpoint left behind


def test_disk_full_keeps_the_last_checkpoint(tiny_css2d, tmp_path, monkeypatch, reliability):
    import errno

    import tgir.models.checkpoint as ck

    cfg = config.from_dict(tiny_train_config(tiny_css2d, steps=6))
    cfg.train.ckpt_every = 2
    run = tmp_path / "run"
    train(cfg, run, progress=False, stop_at=4)
    last = run / "checkpoints" / "last.safetensors"
    before = last.read_bytes()
    real = ck.save_file

    def full(tensors, path, metadata=None):
        real(tensors, path, metadata=metadata)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck, "save_file", full)
    reliability["faults injected"] += 1
    with pytest.raises(TgirError, match="No space left on device.*intact"):
        train(cfg, run, resume=True, progress=False)
    assert last.read_bytes() == before
    assert not any(p.name.startswith(".") for p in last.parent.iterdir())
    monkeypatch.setattr(ck, "save_file", real)
    train(cfg, run, resume=True, progress=False)  # and it continues once space is back
    assert (run / "model.safetensors").is_file()


def test_missing_and_corrupt_files_are_all_named_with_counts_or_strict_stops_first(
        tiny_css2d, tmp_path, reliability, capsys):
    import shutil

    from tgir.cli import main
    from tgir.data import build

    root = tmp_path / "css2d"
    shutil.copytree(tiny_css2d, root)
    files = sorted((root / "images").glob("train_*.png"))
    for f in files[3:9]:
        f.unlink()
    files[12].write_bytes(b"not a png")
    with pytest.raises(TgirError) as e:
        build("css2d", root, "train")
    msg = str(e.value)
    assert f"6 of {len(files)} css2d train files are missing" in msg
    assert files[3].name in msg and "and 1 more" in msg
    with pytest.raises(TgirError, match=f"image not found: .*{files[3].name}$"):
        build("css2d", root, "train", strict=True)  # the first one, and nothing more
    for f in files[3:9]:
        shutil.copy(tiny_css2d / "images" / f.name, f)
    with pytest.raises(TgirError, match=f"1 of {len(files)} css2d train files cannot be used"
                                        f".*{files[12].name}"):
        build("css2d", root, "train")
    cfg = tiny_train_config(root, steps=2)
    path = tmp_path / "cfg.yaml"
    config.dump(config.from_dict(cfg), path)
    assert main(["train", str(path), "--out", str(tmp_path / "run"), "--strict", "-q"]) == 2
    assert files[12].name in capsys.readouterr().err
    assert not (tmp_path / "run" / "model.safetensors").exists()
    reliability["inputs tried"] += 3


def test_mixed_good_and_bad_load_no_errors_no_5xx_memory_flat(tiny_run, tiny_css2d, tmp_path,
                                                              reliability):
    """Bounded load on loopback (bench/load_serve.py's driver, small): good requests all
    answered, every bad one a 4xx, no 5xx, the server's memory flat after the warm-up."""
    import importlib.util

    from tgir.search.index import build_index

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("load_serve",
                                                  os.path.join(root, "bench", "load_serve.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    index = build_index(tiny_run, tiny_css2d, tmp_path / "idx", progress=False)
    r = bench.run_load(str(index), clients=4, requests=600, max_seconds=60, bad_fraction=0.4,
                       k=5, warmup=40)
    reliability["inputs tried"] += r["good"] + r["bad"]
    reliability["5xx seen"] += r["server_5xx"]
    print(f"load: {r['good']} good / {r['bad']} bad, p99 {r['p99_ms']:.0f} ms, rss {r['rss_mb']}")
    assert r["good"] > 100 and r["bad"] > 100, r
    assert r["good_errors"] == [] and r["server_5xx"] == 0 and r["bad_not_4xx"] == 0, r
    m = r["rss_mb"]
    assert m["end"] - m["after_warmup"] < 64, m  # flat: no per-request growth
