import random

import numpy as np
import pytest
import torch

from glua_lib.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state


class _Evil:  # any class: weights_only refuses to unpickle it
    pass


def test_round_trip_with_weights_only(tmp_path):
    model = torch.nn.Linear(3, 2)
    state = {"model": model.state_dict(), "step": 7, "config": {"lr": 1e-3, "name": "x"}}
    path = save_checkpoint(tmp_path / "ckpt.pt", state)
    back = load_checkpoint(path)
    assert back["step"] == 7 and back["config"] == {"lr": 1e-3, "name": "x"}
    assert torch.equal(back["model"]["weight"], model.weight.detach())
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_refuses_pickled_objects_and_names_bad_files(tmp_path):
    torch.save({"obj": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="evil.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04")
    with pytest.raises(ValueError, match="cut.pt"):
        load_checkpoint(tmp_path / "cut.pt")
    with pytest.raises(FileNotFoundError, match="none.pt: no checkpoint"):
        load_checkpoint(tmp_path / "none.pt")


def test_rng_state_resumes_every_stream_exactly(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    save_checkpoint(tmp_path / "r.pt", {"rng": rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


class _OnTheGPU:
    """Stands for a tensor that ``load_checkpoint(..., map_location="cuda")`` put on a GPU: only
    its ``.cpu()`` copy can be handed to the RNG (there is no GPU here to make a real one)."""

    def __init__(self, tensor):
        self.tensor = tensor

    def cpu(self):
        return self.tensor


def test_rng_state_loaded_onto_a_gpu_restores_on_the_gpus_there_are(monkeypatch):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    state = rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    saved_on_two = [torch.full((8,), 1, dtype=torch.uint8), torch.full((8,), 2, dtype=torch.uint8)]
    state = {**state, "torch": _OnTheGPU(state["torch"]),
             "numpy_keys": _OnTheGPU(state["numpy_keys"]),
             "cuda": [_OnTheGPU(t) for t in saved_on_two]}
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, device: restored.append((s, device)))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    assert len(restored) == 1 and restored[0][0] is saved_on_two[0] and restored[0][1] == 0
