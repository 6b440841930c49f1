"""Dataset directories on disk: atomic replacement and versioned JSON annotation files."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tgir import TgirError


@contextmanager
def atomic_dir(out: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling directory to fill; when the block succeeds it takes the place
    of ``out`` (an old ``out`` is moved aside, then removed). On any error, or a kill, ``out``
    is untouched and the temporary directory is removed (or left as a dot-directory)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_json_doc(root: str | Path, filename: str, fmt: str, version: int, generate: str
                  ) -> dict:
    """Read ``root/filename`` and check its ``format`` / ``version``; ``generate`` names the
    dataset for the hint on how to create it."""
    path = Path(root) / filename
    if not path.is_file():
        raise TgirError(f"{generate} annotation file not found: {path} (create it with: tgir "
                        f"generate {generate} --out {root})")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TgirError(f"{generate} annotation file {path} is corrupt: {e}") from e
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise TgirError(f"{path} is not a {fmt} file")
    if doc.get("version") != version:
        raise TgirError(f"{path} has {fmt} version {doc.get('version')}, this tgir reads "
                        f"{version}; regenerate it")
    return doc
