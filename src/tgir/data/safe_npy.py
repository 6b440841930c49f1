"""Read a pickled object ``.npy`` (the CSS release's format) without unpickling arbitrary code.

``np.load(allow_pickle=True)`` runs any callable a pickle names. This reader parses the .npy
header itself and unpickles with an allow-list: plain containers and scalars (pickle opcodes,
no globals needed), numpy arrays / dtypes / scalars, and ``collections.OrderedDict``. Anything
else (``os.system``, ``subprocess.Popen``, ...) is refused with the name of the global.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from tgir import TgirError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "slice"),
    ("__builtin__", "set"), ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("__builtin__", "object"), ("builtins", "object"),
}


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")


def load_object_npy(path: str | Path):
    """The object stored in a pickled ``.npy`` (an object array's single item when 0-d)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            if not dtype.hasobject:
                arr = np.fromfile(f, dtype=dtype).reshape(shape)
            else:
                arr = _Restricted(f, encoding="latin1").load()
    except pickle.UnpicklingError as e:
        raise TgirError(f"{path}: refused to unpickle ({e})") from e
    except (OSError, ValueError, EOFError) as e:
        raise TgirError(f"{path} is not a readable .npy file: {e}") from e
    if isinstance(arr, np.ndarray) and arr.dtype.hasobject and arr.shape == ():
        return arr.item()
    return arr
