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
