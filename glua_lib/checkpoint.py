"""Atomic checkpoints, loaded with ``weights_only=True``.

A checkpoint is a dict of tensors and plain Python values (numbers, strings, lists, dicts): model
and optimiser ``state_dict``s, the step, RNG states, the config as a dict. Writing goes to a
temporary file that is renamed over the old one, so an interrupted run keeps its last good
checkpoint; reading never unpickles arbitrary objects.
"""
from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import numpy as np
import torch

from glua_lib.io import atomic_path


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` to ``path`` atomically (``torch.save`` to a temporary, then rename)."""
    path = Path(path)
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint with ``weights_only=True``; a clear error names a missing/corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint here (train first, or check --run)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        raise ValueError(f"{path}: not a readable checkpoint ({err}); delete it to start over")\
            from err


def kept_checkpoint(path: str | os.PathLike) -> str:
    """What an interrupted run leaves behind at ``path``, for error messages: ``"the checkpoint
    of step N in PATH is kept"`` or ``"no checkpoint was written yet"``."""
    path = Path(path)
    if path.is_file():
        return f"the checkpoint of step {load_checkpoint(path)['step']} in {path} is kept"
    return "no checkpoint was written yet"


def rng_state() -> dict:
    """Python, NumPy and torch CPU (and CUDA) RNG states, storable with ``weights_only``."""
    np_state = np.random.get_state()
    state = {"python": list(random.getstate()[1]), "python_pos": random.getstate()[2],
             "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
             "numpy_pos": int(np_state[2]), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured (exact resume of a random stream).

    The state may have been loaded onto a GPU (``load_checkpoint(..., map_location="cuda")``):
    RNG states are CPU byte tensors, so they are copied back first. CUDA states are restored for
    the GPUs this machine has (a run saved on a machine with more GPUs resumes on fewer).
    """
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    np.random.set_state(("MT19937", state["numpy_keys"].cpu().numpy().astype(np.uint32),
                         state["numpy_pos"], 0, 0.0))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        for i, cuda_state in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state.cpu(), i)
