"""The cached-run pipeline: trains once, reuses afterwards, evaluates on the target test split."""
import dataclasses

import torch

from glua_lib import DEMO, pipeline

TINY = dataclasses.replace(DEMO, name="demo", slice_size=32, n_slices=6, n_train=2, n_test=1,
                           batch_size=2, seg_steps=3)


def test_seg_run_is_trained_once_and_evaluated_on_target_test(tmp_path, monkeypatch):
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path))
    cpu = torch.device("cpu")
    run = pipeline.seg_run("none", "cardiac", "mr", "ct", TINY, seed=1, device=cpu)
    assert run.parent == tmp_path.resolve() / "runs"
    assert run.name.startswith("seg-none-cardiac-mr2ct-demo-seed1-")
    done = (run / pipeline.DONE).stat().st_mtime_ns
    assert pipeline.seg_run("none", "cardiac", "mr", "ct", TINY, seed=1, device=cpu) == run
    assert (run / pipeline.DONE).stat().st_mtime_ns == done  # reused, not retrained

    metrics = pipeline.evaluate_run(run, "cardiac", "ct", TINY, cpu)
    assert list(metrics["volumes"]) == ["cardiac-ct-002"]  # the one target test subject
    scores = metrics["volumes"]["cardiac-ct-002"]
    assert set(scores["dice"]) >= {"MYO", "LAC", "LVC", "AA"}
    assert all(0.0 <= d <= 1.0 for d in scores["dice"].values())
    assert (run / "metrics-test.json").is_file()

    other = pipeline.seg_run("none", "cardiac", "mr", "ct", TINY, seed=1, device=cpu, steps=2)
    assert "steps=2" in other.name and other != run
    assert pipeline.fingerprint(TINY) != pipeline.fingerprint(dataclasses.replace(TINY, seg_steps=4))
