"""benchmarks/style_cost.py measures the profile's batch, or the ones asked for, smallest first
(the timings themselves are not tested: they belong to the script's output, not to a test)."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "style_cost.py"


def _script():
    spec = importlib.util.spec_from_file_location("style_cost_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_style_cost_measures_the_batch_sizes_asked_for(monkeypatch, capsys):
    module = _script()
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
