import dataclasses
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from glua_lib import (DEMO, FULL, config_report, get_device, get_profile, print_config,
                      seed_worker, set_seed)


def _draw():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_set_seed_makes_python_numpy_torch_repeat():
    set_seed(123)
    a = _draw()
    set_seed(123)
    assert _draw() == a
    set_seed(124)
    assert _draw() != a


def test_set_seed_returns_a_seeded_generator():
    g1, g2 = set_seed(7), set_seed(7)
    assert torch.equal(torch.randperm(10, generator=g1), torch.randperm(10, generator=g2))


@pytest.mark.parametrize("bad", [-1, 1.5, "0", None])
def test_set_seed_rejects_bad_seeds(bad):
    with pytest.raises(ValueError):
        set_seed(bad)


class _NumpyNoise(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return np.random.rand()  # depends on the worker's NumPy seed


def _epoch(seed):
    g = set_seed(seed)
    loader = DataLoader(_NumpyNoise(), batch_size=1, num_workers=2, generator=g,
                        worker_init_fn=seed_worker, shuffle=True)
    return [float(x) for x in loader]


def test_dataloader_workers_are_seeded():
    first = _epoch(5)
    assert first == _epoch(5)
    assert len(set(first)) == 4  # workers do not share one NumPy stream
    assert first != _epoch(6)


def test_get_device_here_and_forced():
    dev = get_device()
    assert isinstance(dev, torch.device)
    assert get_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert dev.type in ("cpu", "mps")
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            get_device("cuda")


def test_print_config_reports_versions_device_seed_profile(capsys):
    report = config_report(DEMO, 3, torch.device("cpu"))
    assert report["torch"] == torch.__version__ and report["numpy"] == np.__version__
    assert (report["device"], report["seed"], report["profile"]) == ("cpu", "3", "demo")
    print_config(DEMO, 3, torch.device("cpu"))
    out = capsys.readouterr().out
    assert "profile" in out and "demo" in out and "seed" in out and torch.__version__ in out
    lines = out.splitlines()
    assert lines[0].startswith("device") and "profile        : demo" in lines  # facts first
    versions = out[out.index("versions: "):]
    assert f"torch {torch.__version__}" in versions and f"numpy {np.__version__}" in versions
    assert len(lines) <= 14 and max(map(len, lines)) <= 100  # fits the book's column


def test_config_report_says_where_the_profile_and_its_batch_size_come_from(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.delenv("GLUA_PROFILE", raising=False)
    report = config_report(DEMO, 0, cpu)
    assert (report["profile source"], report["batch size"]) == ("chosen by device", "8")
    report = config_report(dataclasses.replace(FULL, batch_size=4), 0, cpu)
    assert report["profile source"] == "given (a chapter's profile parameter or an argument)"
    assert report["batch size"] == "4 (set; the full profile's is 16)"
    assert report["training steps"] == "style 50000, segmenter 20000"
    report = config_report(get_profile("demo", budget=0.05), 0, cpu)
    assert report["training steps"] == ("style 60, segmenter 30 (budget 0.05 of the demo profile's: "
                                        "smoke-test figures, not the profile's)")
    monkeypatch.setenv("GLUA_PROFILE", "full")
    assert config_report(FULL, 0, cpu)["profile source"] == "$GLUA_PROFILE"
    assert config_report(DEMO, 0, cpu)["profile source"].startswith("given")


def test_import_has_no_side_effects(tmp_path):
    cache = tmp_path / "never-created"
    code = ("import matplotlib; before = matplotlib.get_backend()\n"
            "import glua_lib, glua_lib.plots, glua_lib.data, glua_lib.phantoms, data_prep\n"
            "assert matplotlib.get_backend() == before\n")
    env = {**os.environ, "GLUA_CACHE": str(cache), "MPLBACKEND": "svg"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert not cache.exists()


def test_code_version_and_device_description():
    import re

    from glua_lib.runtime import code_version, device_description

    # the tests run from a git checkout (CI clones the repository)
    assert re.fullmatch(r"[0-9a-f]{40}(\+uncommitted)?", code_version())
    text = device_description(torch.device("cpu"))
    assert text.startswith("cpu (") and f"{torch.get_num_threads()} threads" in text


def test_a_gpu_is_named_by_its_index_and_one_that_is_not_there_is_refused(monkeypatch):
    """Faked one-GPU machine: ``cuda`` and ``cuda:0`` are the same GPU and read the same in
    ``run.json`` (else a resume would warn of another machine); ``cuda:1`` is refused up front."""
    from glua_lib.runtime import device_description

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: f"Fake GPU {i}")
    assert device_description(torch.device("cuda")) == "cuda:0 (Fake GPU 0)"
    assert device_description(torch.device("cuda:0")) == "cuda:0 (Fake GPU 0)"
    assert get_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(RuntimeError, match=r"'cuda:1' requested but this machine has 1 GPU"):
        get_device("cuda:1")
