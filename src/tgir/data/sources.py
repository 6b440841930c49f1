"""The generated datasets tgir knows, one registered source each (issue 25 item 7).

A source is a directory tgir generates itself (css2d, people2d at a ``--scale``) or builds from
Debian packages at full size (emoji, clipart). Each is recognised by the annotation file at
its root; ``catalog.py`` (index items), ``sheet.py`` (contact sheets), the demo and ``tgir
generate`` look a directory's source up here instead of testing marker files each on its own.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from tgir import TgirError


@dataclass(frozen=True)
class Source:
    name: str  # css2d, emoji, clipart, people2d: also the module tgir.data.<name>
    scaled: bool  # generated at a scale (demo / paper / tiny) and seed; else full size

    @property
    def marker(self) -> str:
        """The annotation file at the root of a generated directory."""
        return f"{self.name}.json"

    def module(self) -> ModuleType:
        return importlib.import_module(f"tgir.data.{self.name}")

    def is_current(self, root: Path, scale: str) -> bool:
        """An identical default build is at ``root``: the same scale and seed 0, or (full-size
        sources) every item, no ``--limit``."""
        try:
            doc = self.module().read_annotations(root)
        except TgirError:
            return False
        if self.scaled:
            return doc.get("scale") == scale and doc["params"].get("seed") == 0
        return doc["params"].get("limit") is None

    def generate_default(self, root: Path, scale: str, progress: bool) -> Path:
        """The demo's build: seed 0 at ``scale`` (full size for emoji / clipart)."""
        if self.scaled:
            return self.module().generate(root, scale, 0, progress=progress)
        return self.module().generate(root, progress=progress)


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("css2d", scaled=True), Source("people2d", scaled=True),
    Source("emoji", scaled=False), Source("clipart", scaled=False))}


def source_of(dataset: str) -> Source:
    """The source behind a registry dataset name (``emoji_attr`` -> emoji)."""
    name = dataset.split("_")[0]
    if name not in SOURCES:
        raise TgirError(f"{dataset!r} is not a generated dataset; generated: "
                        f"{', '.join(SOURCES)}")
    return SOURCES[name]


def source_at(root: Path) -> Source | None:
    """The source whose annotation file is at ``root`` (None: a plain folder)."""
    return next((s for s in SOURCES.values() if (Path(root) / s.marker).is_file()), None)
