"""benchmarks/style_cost.py and seg_cost.py measure the profile's batch, or the ones asked for
(the timings themselves are not tested: they belong to the scripts' output, not to a test)."""
from __future__ import annotations

import re


def test_style_cost_measures_the_batch_sizes_asked_for(monkeypatch, capsys, benchmark_script):
    module = benchmark_script("style_cost")
    seen = []

    def measure(config, device, steps):  # the model step is StyleTrainer's, tested elsewhere
        seen.append((config.batch_size, config.image_size, device.type, steps))
        return {"steps/s": 2.0, "s/step": 0.5, "peak MiB": 100.0 * config.batch_size,
                "generator params": 10, "critic params": 20, "labeller params": 0, "amp": False}

    monkeypatch.setattr(module, "measure", measure)
    assert module.main(["--profile", "full", "--steps", "1", "--batch-size", "4", "1"]) == 0
    assert seen == [(1, 256, seen[0][2], 1), (4, 256, seen[0][2], 1)]  # ascending
    out = capsys.readouterr().out
    assert re.findall(r"batch (\d+)×1×256×256 per domain", out) == ["1", "4"]
    assert "peak process max RSS 400 MiB" in out or "CUDA max allocated 400 MiB" in out
    seen.clear()
    assert module.main(["--profile", "demo", "--steps", "1"]) == 0  # the profile's own batch
    assert seen == [(module.StyleConfig.from_profile(module.PROFILES["demo"]).batch_size, 64,
                     "cpu", 1)]


def test_seg_cost_measures_the_batch_size_asked_for(monkeypatch, capsys, benchmark_script):
    module = benchmark_script("seg_cost")
    seen = []

    def measure(config, size, device, steps):  # the model step is train_seg's, tested elsewhere
        seen.append((config.batch_size, size, steps))
        return {"steps_per_s": 2.0, "slices_per_s": 2.0 * config.batch_size, "peak_mib": 50.0,
                "peak_kind": "process peak RSS", "params": 10, "amp": False, "est_run_s": 300.0}

    monkeypatch.setattr(module, "measure", measure)
    assert module.main(["--profile", "full", "--device", "cpu", "--steps", "1",
                        "--batch-size", "2"]) == 0
    assert seen == [(2, 256, 1)]
    assert "full: 256² slices, batch 2," in capsys.readouterr().out
    seen.clear()
    assert module.main(["--profile", "demo", "--device", "cpu", "--steps", "1"]) == 0
    assert seen == [(module.get_profile("demo").batch_size, 64, 1)]  # the profile's own batch
