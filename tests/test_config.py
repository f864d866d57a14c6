import ast
import dataclasses
import inspect
import json

import pytest
import torch

import glua_lib
from glua_lib import config
from glua_lib.config import (DEMO, FULL, GPU16, Profile, budget_of, cache_dir, choose_profile,
                             get_profile, load_config, save_config)


def test_profile_by_name_env_and_device(monkeypatch):
    monkeypatch.delenv("GLUA_PROFILE", raising=False)
    monkeypatch.setattr(config, "gpu_memory_gib", lambda device: 80.0)  # an H100
    assert get_profile("full") is FULL and get_profile("gpu16") is GPU16
    assert get_profile(device=torch.device("cpu")) is DEMO
    assert get_profile(device=torch.device("cuda", 0)) is FULL
    assert get_profile(device="mps") is DEMO
    monkeypatch.setattr(config, "gpu_memory_gib", lambda device: 15.0)  # Colab's T4
    assert get_profile(device=torch.device("cuda", 0)) is GPU16
    monkeypatch.setenv("GLUA_PROFILE", "FULL")
    assert get_profile(device=torch.device("cpu")) is FULL  # the environment wins over the device
    assert get_profile("demo") is DEMO  # an explicit argument wins over the environment


def test_a_cuda_device_gets_gpu16_below_40_gib_and_full_from_there():
    assert choose_profile(None) == choose_profile("cpu") == choose_profile("mps") == "demo"
    for memory, name in ((15.0, "gpu16"), (16.0, "gpu16"), (24.0, "gpu16"), (39.9, "gpu16"),
                         (40.0, "full"), (80.0, "full"), (141.0, "full")):
        assert choose_profile(torch.device("cuda", 0), memory) == name, memory
        assert choose_profile("cuda:1", memory) == name
    if not torch.cuda.is_available():  # memory not askable: the profile that fits more GPUs
        assert config.gpu_memory_gib("cuda") is None and choose_profile("cuda") == "gpu16"
    assert config.gpu_memory_gib("cpu") is None


def test_unknown_profile_names_the_source_and_the_choices(monkeypatch):
    monkeypatch.setenv("GLUA_PROFILE", "fast")
    with pytest.raises(ValueError, match=r"'fast'.*\$GLUA_PROFILE.*\['demo', 'full', 'gpu16'\]"):
        get_profile()
    with pytest.raises(ValueError, match="profile argument"):
        get_profile("paper")


def test_batch_size_replaces_the_profiles_and_nothing_else(monkeypatch):
    monkeypatch.delenv("GLUA_PROFILE", raising=False)
    assert get_profile("full", batch_size=None) is FULL
    assert get_profile("full", batch_size=FULL.batch_size) is FULL
    monkeypatch.setattr(config, "gpu_memory_gib", lambda device: 80.0)
    small = get_profile(device=torch.device("cuda"), batch_size=4)
    assert small.batch_size == 4 and small.name == "full"
    assert small.style_batch == 4  # the style model's batch in proportion (full: the same)
    assert dataclasses.replace(small, batch_size=FULL.batch_size, style_batch=16) == FULL
    assert get_profile("demo", batch_size=4).style_batch == 2  # demo: half the segmenter's
    for bad in (0, -2, 2.5, True, "4"):
        with pytest.raises(ValueError, match=f"batch_size must be a positive integer .* "
                                             f"profile's 8, got {bad!r}"):
            get_profile("demo", batch_size=bad)


def test_budget_scales_the_training_steps_and_nothing_else(monkeypatch):
    monkeypatch.delenv("GLUA_PROFILE", raising=False)
    assert get_profile("demo", budget=None) is DEMO and get_profile("demo", budget=1) is DEMO
    assert budget_of(DEMO) == 1.0 and budget_of(dataclasses.replace(DEMO, name="mine")) is None
    smoke = get_profile("demo", budget=0.05)
    assert (smoke.style_steps, smoke.seg_steps) == (60, 30)  # 1200 · 0.05, 600 · 0.05
    assert dataclasses.replace(smoke, style_steps=1200, seg_steps=600) == DEMO
    assert budget_of(smoke) == 0.05
    tiny = get_profile("full", batch_size=4, budget=1e-6)  # at least one step each
    assert (tiny.style_steps, tiny.seg_steps, tiny.batch_size) == (1, 1, 4)
    for bad in (0, -0.5, float("nan"), float("inf"), True, "0.1"):
        with pytest.raises(ValueError, match=f"budget must be a positive number .* got {bad!r}"):
            get_profile("demo", budget=bad)


def test_demo_is_smaller_than_full_in_every_budget():
    for field in ("slice_size", "n_slices", "n_train", "style_steps", "seg_steps"):
        assert getattr(DEMO, field) < getattr(FULL, field), field


def test_gpu16_sees_paper_sized_slices_on_smaller_budgets_than_full():
    for field in ("slice_size", "n_slices", "n_train", "n_test", "amp"):
        assert getattr(GPU16, field) == getattr(FULL, field), field
    for field in ("batch_size", "style_batch", "style_steps", "seg_steps"):
        assert getattr(DEMO, field) <= getattr(GPU16, field) < getattr(FULL, field), field


def test_every_profile_names_sizes_its_models_know():
    from glua_lib.seg.train import SEG_SIZES, SegConfig
    from glua_lib.style.train import STYLE_SIZES, StyleConfig
    for profile in config.PROFILES.values():
        assert profile.style_size in STYLE_SIZES and profile.seg_size in SEG_SIZES
        style = StyleConfig.from_profile(profile)
        assert (style.steps, style.batch_size, style.image_size) == (
            profile.style_steps, profile.style_batch, profile.slice_size)
        seg = SegConfig.from_profile(profile)
        assert (seg.steps, seg.batch_size, seg.profile) == (
            profile.seg_steps, profile.batch_size, profile.name)
    odd = dataclasses.replace(DEMO, name="mine", style_size="huge", seg_size="huge")
    with pytest.raises(ValueError, match="unknown style_size 'huge'"):
        StyleConfig.from_profile(odd)
    with pytest.raises(ValueError, match="unknown seg_size 'huge'"):
        SegConfig.from_profile(odd)


def test_every_profile_field_has_a_one_line_comment():
    source = inspect.getsource(config)
    lines = source.splitlines()
    cls = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "Profile")
    fields = [n for n in cls.body if isinstance(n, ast.AnnAssign)]
    assert len(fields) == len(dataclasses.fields(Profile))
    for node in fields:
        line = lines[node.lineno - 1]
        assert "#" in line and line.split("#", 1)[1].strip(), f"no comment: {line.strip()}"


def test_cache_dir_env_xdg_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path / "c"))
    assert cache_dir(create=False) == (tmp_path / "c").resolve()
    assert not (tmp_path / "c").exists()  # asking does not create
    assert cache_dir().is_dir()
    monkeypatch.delenv("GLUA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir(create=False) == (tmp_path / "xdg" / "glua-book").resolve()
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir(create=False) == (tmp_path / "home" / ".cache" / "glua-book").resolve()


def test_config_round_trip_keeps_tuples(tmp_path):
    path = save_config(FULL, tmp_path / "run" / "profile.json")
    data = json.loads(path.read_text())
    assert data["_type"] == "Profile" and data["seeds"] == [0, 1, 2]
    back = load_config(Profile, path)
    assert back == FULL and isinstance(back.seeds, tuple)


def test_load_config_rejects_other_types_and_fields(tmp_path):
    @dataclasses.dataclass
    class Other:
        x: int = 1

    path = save_config(Other(), tmp_path / "other.json")
    with pytest.raises(ValueError, match="holds a Other config"):
        load_config(Profile, path)
    data = dataclasses.asdict(DEMO) | {"bogus": 1}
    (tmp_path / "p.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"p.json: fields \['bogus'\]"):
        load_config(Profile, tmp_path / "p.json")


def test_save_config_needs_a_dataclass_instance(tmp_path):
    with pytest.raises(TypeError):
        save_config({"a": 1}, tmp_path / "x.json")
    assert glua_lib.save_config is save_config
