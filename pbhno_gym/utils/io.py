"""Atomic writes (a file is either the old version or the complete new one) and safe checkpoint files.

Checkpoints hold only tensors and plain containers (dict/list/tuple of str/int/float/bool/None), are
written by :func:`atomic_torch_save` (which converts numpy values, paths and dataclasses and refuses
anything else) and read by :func:`safe_torch_load` with ``torch.load(weights_only=True)``: unpickling
arbitrary objects from a downloaded file could run code, so such files are refused, never executed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_torch_save",
    "atomic_savefig",
    "CheckpointError",
    "to_plain",
    "safe_torch_load",
]


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, unsafe or does not match (the message says what)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path: str | Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return _atomic(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def to_plain(obj: Any, where: str = "checkpoint") -> Any:
    """``obj`` as tensors and plain containers only, so that ``weights_only`` loading can read it.

    numpy arrays become tensors, numpy scalars Python numbers, paths strings and dataclasses dicts;
    any other object raises TypeError naming where it sits (it would need unpickling to read back).
    """
    import numpy as np
    import torch

    if isinstance(obj, np.generic):  # before float: np.float64 subclasses it but pickles as numpy
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor, torch.Size, torch.dtype)):
        return obj
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_plain(dataclasses.asdict(obj), where)
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise TypeError(f"{where}: key {k!r} of type {type(k).__name__} is not plain")
            out[k] = to_plain(v, f"{where}[{k!r}]")
        if isinstance(obj, OrderedDict):  # a state_dict: keep its type and version metadata
            out = OrderedDict(out)
            if hasattr(obj, "_metadata"):
                out._metadata = to_plain(obj._metadata, f"{where}._metadata")  # type: ignore[attr-defined]
        return out
    if isinstance(obj, (list, tuple)):
        items = [to_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    raise TypeError(
        f"{where}: a {type(obj).__module__}.{type(obj).__qualname__} is not a tensor or plain value "
        "(checkpoints must load with weights_only=True)"
    )


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` of ``obj`` made plain (:func:`to_plain`), written atomically."""
    import torch

    plain = to_plain(obj, str(path))
    return _atomic(path, lambda f: torch.save(plain, f))


def safe_torch_load(path: str | Path, map_location: Any = "cpu") -> Any:
    """``torch.load(weights_only=True)``: tensors and plain containers only, no code from the file.

    Raises CheckpointError for a missing or corrupt file, and for one that holds pickled Python
    objects (refused rather than unpickled, since unpickling a downloaded file can run its code).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        detail = next((ln.strip() for ln in msg.splitlines() if "Unsupported" in ln), msg.splitlines()[0])
        raise CheckpointError(
            f"{path}: holds pickled Python objects, not only tensors and plain values ({detail}); "
            "refusing to unpickle it because that could run code from the file. If it is an old "
            "checkpoint from a source you trust, re-save it as plain data with a version of this "
            "package that wrote it"
        ) from None
    except Exception as e:  # noqa: BLE001 - any other read failure means a corrupt file
        raise CheckpointError(
            f"{path}: not a readable checkpoint (corrupt or truncated: {type(e).__name__}: {e})"
        ) from None


def atomic_savefig(fig, path: str | Path, **kw) -> Path:
    fmt = Path(path).suffix.lstrip(".") or "png"
    return _atomic(path, lambda f: fig.savefig(f, format=fmt, dpi=kw.pop("dpi", 110), **kw))
