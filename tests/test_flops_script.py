"""benchmarks/flops.py: the counter's numbers on hand-made cases, the steps it counts, per run =
per step × steps, and the table ``main`` prints (the full profile and SIFA at 256² are too slow
for a test; they are counted on small sizes or stubbed)."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn


@pytest.fixture
def flops(benchmark_script):
    return benchmark_script("flops")


def test_a_convolution_counts_two_flops_per_multiply_add(flops):
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    x = torch.randn(2, 3, 16, 16)
    forward = flops.count_flops(lambda: conv(x))
    assert forward == 2 * 2 * 3 * 8 * 3 * 3 * 16 * 16  # 2 · B · Cin · Cout · k² · H · W
    x.requires_grad_(True)
    both = flops.count_flops(lambda: conv(x).sum().backward())
    assert both == 3 * forward  # backward: the input's and the weight's gradient, one each


def test_a_linear_layer_and_human_units(flops):
    lin = nn.Linear(10, 4)
    assert flops.count_flops(lambda: lin(torch.randn(5, 10))) == 2 * 5 * 10 * 4
    assert flops.human(2.5e9) == "2.50 GFLOP"
    assert flops.human(3e12) == "3.00 TFLOP"
    assert flops.human(207e15) == "207.00 PFLOP"
    assert flops.human(1.5e18) == "1.50 EFLOP"
    assert flops.duration(30) == "30 s" and flops.duration(5400) == "1.5 h"


def test_count_batch_defaults(flops):
    demo, full = flops.PROFILES["demo"], flops.PROFILES["full"]
    assert flops._count_batch(demo, 8, None) == 8  # demo: the whole batch
    assert flops._count_batch(full, 16, None) == 1  # full: one slice, scaled
    assert flops._count_batch(full, 16, 0) == 16 and flops._count_batch(demo, 4, 9) == 4


def test_seg_steps_scale_with_the_batch_and_the_target_adds_work(flops):
    none = flops.count_seg_step("demo", "none", count_batch=1)
    assert none["counted_batch"] == 1 and none["batch"] == flops.PROFILES["demo"].batch_size
    exact = flops.count_seg_step("demo", "none", count_batch=2)
    assert exact["flops"] == none["flops"]  # linear in the batch: scaling is exact
    assert not none["sees_target"] and none["steps"] == flops.PROFILES["demo"].seg_steps
    assert flops.count_seg_step("demo", "oracle", count_batch=1)["flops"] == none["flops"]
    local = flops.count_seg_step("demo", "local-lossweight", count_batch=1)
    attn = flops.count_seg_step("demo", "local", count_batch=1)
    assert local["sees_target"] and attn["sees_target"]
    assert local["flops"] > none["flops"] and attn["flops"] > none["flops"]
    # the target forward alone is a whole forward pass more than `none`
    config = flops.seg_config("demo", "none")
    model = flops.build_model(config, 1, flops.N_CLASSES)
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        fwd = flops.count_flops(lambda: model(x)) * config.batch_size
    assert local["flops"] - none["flops"] > fwd


def test_deeplab_takes_the_attention_methods_only(flops):
    assert flops.backbone_methods("unet", flops.METHODS) == list(flops.METHODS)
    assert flops.backbone_methods("deeplab", flops.METHODS) == [
        "none", "global", "local", "local-unmasked", "glua", "glua-unmasked", "oracle"]
    a = flops.count_seg_step("demo", "none", "deeplab", count_batch=1)
    b = flops.count_seg_step("demo", "glua", "deeplab", count_batch=1)
    assert 0 < a["flops"] < b["flops"]


def test_style_step_is_linear_in_the_batch(flops, monkeypatch):
    one = flops.count_style_step("demo", count_batch=1)
    two = flops.count_style_step("demo", count_batch=2)
    config = flops.StyleConfig.from_profile(flops.PROFILES["demo"])
    assert one["batch"] == config.batch_size and one["steps"] == config.steps
    assert one["flops"] == two["flops"] > 0


def test_sifa_stand_in_counts_the_released_recomputation(flops):
    released = flops.count_sifa_iteration(size=32, batch=4, count_batch=1)
    once = flops.count_sifa_iteration(size=32, batch=4, count_batch=1, released=False)
    assert released["batch"] == 4 and released["steps"] == flops.SIFA_ITERATIONS
    assert released["flops"] > once["flops"] > 0  # 7 session runs recompute shared forwards
    # the generator's first conv, c7s1-32 on a 1-channel slice, as published
    g = flops.SifaGenerator()
    assert g.net[0][0].weight.shape == (32, 1, 7, 7)
    assert sum(isinstance(m, flops._Res) for m in g.net) == 9
    enc = flops.SifaEncoder()
    deep, low = enc(torch.randn(1, 1, 32, 32))
    assert deep.shape == low.shape == (1, 512, 4, 4)


def fake_rows(monkeypatch, flops):
    """Stub the counts: fixed FLOPs per component (the real ones are tested above)."""
    def style(name, count_batch=None):
        return {"flops": 4e9, "batch": 4, "counted_batch": 4, "steps": 1200}

    def seg(name, method, backbone="unet", count_batch=None):
        sees = method in ("local", "glua")
        return {"flops": 3e9 if sees else 2e9, "batch": 8, "counted_batch": 8, "steps": 600,
                "sees_target": sees}

    def sifa(size=256, batch=8, count_batch=1, released=True):
        return {"flops": (1.3e12 if released else 0.8e12) * batch, "batch": batch,
                "counted_batch": 1, "steps": 20_000}

    monkeypatch.setattr(flops, "count_style_step", style)
    monkeypatch.setattr(flops, "count_seg_step", seg)
    monkeypatch.setattr(flops, "count_sifa_iteration", sifa)


def test_main_prints_the_table_and_writes_json(flops, monkeypatch, capsys, tmp_path):
    fake_rows(monkeypatch, flops)
    out_json = tmp_path / "flops.json"
    assert flops.main(["--profiles", "demo", "--methods", "none", "local", "glua",
                       "--backbones", "unet", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "== profile demo: 64×64 slices" in out
    assert "style (G + D update)" in out and "seg unet local *" in out
    assert "1.20 TFLOP" in out  # none: 2 GFLOP × 600 steps = per run
    assert "4.80 TFLOP" in out  # style: 4 GFLOP × 1200 steps
    assert "ESTIMATE" in out and "1,300 GFLOP per image pair" in out and "207 PFLOP" in out
    assert "T4 20 TFLOP/s" in out
    data = json.loads(out_json.read_text())
    demo = data["profiles"]["demo"]
    assert demo["seg"]["unet"]["none"]["per_run"] == 2e9 * 600
    assert demo["style"]["per_run"] == 4e9 * 1200
    # glua per task, direction and seed = the style run + its segmenter run
    assert flops.task_total(demo, "unet", "glua") == 4e9 * 1200 + 3e9 * 600
    assert flops.task_total(demo, "unet", "local") == 3e9 * 600
    assert demo["per_task"]["unet"]["glua"] == 4e9 * 1200 + 3e9 * 600
    assert data["sifa"]["released"]["per_run"] == 1.3e12 * 8 * 20_000
    assert "memory" not in data  # off unless --memory


def test_main_real_demo_counts_without_sifa(flops, capsys):
    assert flops.main(["--profiles", "demo", "--methods", "none", "local",
                       "--backbones", "unet", "--no-sifa"]) == 0
    out = capsys.readouterr().out
    assert "seg unet none" in out and "seg unet local *" in out and "SIFA" not in out


def test_memory_runs_each_measurement_in_its_own_process(flops, monkeypatch, capsys):
    fake_rows(monkeypatch, flops)
    calls = []

    def measure_peak(profile, component, batch, backbone="unet"):
        calls.append((profile, component, batch, backbone))
        return {"peak_mib": 100.0 * batch, "kind": "process peak RSS", "device": "cpu"}

    monkeypatch.setattr(flops, "measure_peak", measure_peak)
    assert flops.main(["--profiles", "demo", "--methods", "none", "--backbones", "unet",
                       "--no-sifa", "--memory", "--batch-sizes", "1", "2"]) == 0
    assert calls == [("demo", "style", 1, "unet"), ("demo", "style", 2, "unet"),
                     ("demo", "none", 1, "unet"), ("demo", "none", 2, "unet")]
    assert "B=2: 200 MiB" in capsys.readouterr().out


def test_peak_of_a_small_step_in_a_subprocess(flops):
    r = flops.measure_peak("demo", "none", 1)
    assert r["kind"] == "process peak RSS" or r["kind"] == "CUDA max allocated", r
    assert r["peak_mib"] > 0


def test_chapter_totals_add_the_runs_each_chapter_trains(flops, monkeypatch, capsys):
    fake_rows(monkeypatch, flops)  # style 4 GFLOP × 1200; local, glua 3 GFLOP, others 2, × 600
    methods = ["none", "global", "local", "local-unmasked", "glua-unmasked", "glua", "oracle"]
    demo = flops.collect(["demo"], methods, ["unet"], sifa=False,
                         log=lambda *a, **k: None)["profiles"]["demo"]
    style, plain, seen = 4e9 * 1200, 2e9 * 600, 3e9 * 600
    assert flops.chapter_total(demo, "chapter 2") == style + plain  # + the oracle judge
    assert flops.chapter_total(demo, "chapter 3") == seen + 3 * plain
    assert flops.chapter_total(demo, "chapter 4") == style + 2 * seen + 4 * plain
    lean = flops.collect(["demo"], ["none"], ["unet"], sifa=False,
                         log=lambda *a, **k: None)["profiles"]["demo"]
    assert flops.chapter_total(lean, "chapter 3") is None  # local was not counted
    flops.print_table({"profiles": {"demo": demo}})
    out = capsys.readouterr().out
    assert "per chapter, from an empty cache" in out and "chapter 4" in out
