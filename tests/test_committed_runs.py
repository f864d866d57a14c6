"""Runs committed with the book (glua_lib.committed): made small, installed when the cache lacks
them, refused when the training code changed, and current in this checkout (book/runs)."""
import dataclasses

import pytest
import torch

from glua_lib import DEMO, committed, pipeline
from glua_lib.checkpoint import load_checkpoint

TINY = dataclasses.replace(DEMO, name="demo", slice_size=32, n_slices=6, n_train=2, n_test=1,
                           batch_size=2, seg_steps=3, style_steps=4, style_batch=1)
CPU = torch.device("cpu")
INFO = {"command": "test", "code_version": "abc", "machine": "here", "torch": "x", "made_on": "d"}


def _train_and_commit(tmp_path, monkeypatch, method):
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path / "train"))
    monkeypatch.setenv("GLUA_COMMITTED_RUNS", "")  # nothing to install: train
    run = pipeline.seg_run(method, "cardiac", "mr", "ct", TINY, seed=1, device=CPU)
    assert pipeline.run_origin(run) == "trained on this machine"
    store = committed.write([run], tmp_path / "runs", INFO)
    monkeypatch.setenv("GLUA_COMMITTED_RUNS", str(store))
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path / "fresh"))
    return run, store


def test_committed_dir_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("GLUA_COMMITTED_RUNS", raising=False)
    assert committed.committed_dir() == committed.BOOK_RUNS
    monkeypatch.setenv("GLUA_COMMITTED_RUNS", "")
    assert committed.committed_dir() is None and committed.manifest() is None
    assert committed.install(tmp_path / "seg-none-x") is False
    monkeypatch.setenv("GLUA_COMMITTED_RUNS", str(tmp_path))
    assert committed.committed_dir() == tmp_path


def test_a_committed_run_is_installed_with_float16_weights_back_in_float32(tmp_path, monkeypatch):
    run, store = _train_and_commit(tmp_path, monkeypatch, "none")
    slim = store / run.name
    assert sorted(p.name for p in slim.iterdir()) == [
        "config.json", "done.json", "log.jsonl", "model.pt", "run.json"]  # no optimiser, no RNG
    stored = load_checkpoint(slim / "model.pt")["model"]
    assert {t.dtype for t in stored.values() if t.is_floating_point()} == {torch.float16}
    made = committed.manifest(store)
    assert made["runs"] == [run.name] and made["training_code"] == committed.training_code_fingerprint()
    again = committed.write([run], tmp_path / "again", INFO)  # the same run: the same bytes
    for f in ("model.pt", "config.json", "log.jsonl"):
        assert (again / run.name / f).read_bytes() == (slim / f).read_bytes(), f

    installed = pipeline.seg_run("none", "cardiac", "mr", "ct", TINY, seed=1, device=CPU)
    assert installed.name == run.name and installed != run
    assert "installed from the committed runs" in pipeline.run_origin(installed)
    assert pipeline.run_origin(installed) == \
        "installed from the committed runs (`test` at abc, here)"
    original = load_checkpoint(run / "model.pt")["model"]
    copy = load_checkpoint(installed / "model.pt")["model"]
    for k, v in original.items():  # the float16-rounded original, stored as float32
        assert copy[k].dtype == v.dtype
        assert torch.equal(copy[k], v.half().to(v.dtype) if v.is_floating_point() else v)
    assert (installed / "log.jsonl").read_text() == (run / "log.jsonl").read_text()
    assert load_checkpoint(installed / "checkpoint.pt")["step"] == TINY.seg_steps
    metrics = pipeline.evaluate_run(installed, "cardiac", "ct", TINY, CPU)  # evaluated here
    assert list(metrics["volumes"]) == ["cardiac-ct-002"]
    # a cached run is never replaced by a committed copy
    stamp = (installed / "model.pt").stat().st_mtime_ns
    assert pipeline.seg_run("none", "cardiac", "mr", "ct", TINY, seed=1, device=CPU) == installed
    assert (installed / "model.pt").stat().st_mtime_ns == stamp


def test_an_installed_global_run_needs_no_style_run(tmp_path, monkeypatch):
    run, _ = _train_and_commit(tmp_path, monkeypatch, "global")
    assert any(p.name.startswith("style-") for p in (tmp_path / "train" / "runs").iterdir())
    installed = pipeline.seg_run("global", "cardiac", "mr", "ct", TINY, seed=1, device=CPU)
    assert installed.name == run.name
    assert not any(p.name.startswith("style-") for p in (tmp_path / "fresh" / "runs").iterdir())
    # committed=False trains (the run a chapter teaches), style run first
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path / "taught"))
    taught = pipeline.seg_run("global", "cardiac", "mr", "ct", TINY, seed=1, device=CPU,
                              committed=False)
    assert pipeline.run_origin(taught) == "trained on this machine"
    assert any(p.name.startswith("style-") for p in (tmp_path / "taught" / "runs").iterdir())


def test_globals_ceiling_is_installed_like_a_segmenter_and_trained_when_asked(tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path / "train"))
    monkeypatch.setenv("GLUA_COMMITTED_RUNS", "")
    run = pipeline.ideal_global_run("cardiac", "mr", "ct", TINY, seed=1, device=CPU)
    store = committed.write([run], tmp_path / "runs", INFO)
    monkeypatch.setenv("GLUA_COMMITTED_RUNS", str(store))
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path / "fresh"))
    assert pipeline.ideal_global_folder("cardiac", "mr", "ct", TINY, seed=1).name == run.name
    installed = pipeline.ideal_global_run("cardiac", "mr", "ct", TINY, seed=1, device=CPU)
    assert installed.name == run.name and installed != run
    assert "installed from the committed runs" in pipeline.run_origin(installed)
    original, copy = (load_checkpoint(r / "model.pt")["model"] for r in (run, installed))
    assert all(torch.equal(copy[k], v.half().float()) for k, v in original.items()
               if v.is_floating_point())
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path / "taught"))  # committed=False trains
    taught = pipeline.ideal_global_run("cardiac", "mr", "ct", TINY, seed=1, device=CPU,
                                       committed=False)
    assert pipeline.run_origin(taught) == "trained on this machine"


def test_a_local_run_keeps_its_discriminator_and_snapshots(tmp_path, monkeypatch):
    from glua_lib.local import load_attention_run
    from glua_lib.local.runs import snapshot_steps

    run, store = _train_and_commit(tmp_path, monkeypatch, "local")
    hook = load_checkpoint(store / run.name / "hook.pt")["hook"]
    assert "optimizer" not in hook and hook["snapshots"]
    installed = pipeline.seg_run("local", "cardiac", "mr", "ct", TINY, seed=1, device=CPU)
    assert snapshot_steps(installed) == snapshot_steps(run)
    _, d1, _, _ = load_attention_run(installed, step=0)
    _, d1_0, _, _ = load_attention_run(run, step=0)
    for (k, a), b in zip(d1_0.state_dict().items(), d1.state_dict().values()):
        assert torch.equal(b, a.half().float()), k


def test_a_masked_run_no_chapter_follows_keeps_its_test_time_mask_and_no_hook(tmp_path,
                                                                              monkeypatch):
    from glua_lib.seg.predict import load_feature_mask, load_model

    monkeypatch.setattr(committed, "SNAPSHOT_METHODS", ())  # as glua: masked, no snapshots read
    run, store = _train_and_commit(tmp_path, monkeypatch, "local")
    assert not (store / run.name / "hook.pt").exists()
    installed = pipeline.seg_run("local", "cardiac", "mr", "ct", TINY, seed=1, device=CPU)
    model, ckpt = load_model(installed, "cpu")
    x = torch.randn(1, 1, TINY.slice_size, TINY.slice_size)
    with torch.no_grad():  # the installed copy still predicts the target with its mask
        assert not torch.allclose(model(x, feature_mask=load_feature_mask(ckpt, "cpu")),
                                  model(x))


def test_changed_training_code_trains_instead_of_installing(tmp_path, monkeypatch):
    run, _ = _train_and_commit(tmp_path, monkeypatch, "none")
    monkeypatch.setattr(committed, "training_code_fingerprint", lambda: "000000000000")
    with pytest.warns(UserWarning, match="committed by other training code.*make book-runs"):
        again = pipeline.seg_run("none", "cardiac", "mr", "ct", TINY, seed=1, device=CPU)
    assert pipeline.run_origin(again) == "trained on this machine"


def test_the_code_fingerprint_ignores_docstrings_and_comments_not_code(tmp_path):
    f = tmp_path / "m.py"
    f.write_text('"""Doc."""\ndef f(x):\n    """Doc."""\n    return x + 1  # one\n')
    base = committed.source_fingerprint([f], tmp_path)
    f.write_text('"""Other doc."""\n\ndef f(x):\n    # a comment\n    return x + 1\n')
    assert committed.source_fingerprint([f], tmp_path) == base
    f.write_text('def f(x):\n    return x + 2\n')
    assert committed.source_fingerprint([f], tmp_path) != base


# -- the committed runs of this checkout -------------------------------------------------------

BOOK_SEGMENTERS = [job for job in pipeline.book_runs() if job.kind == "seg"]


def test_the_book_commits_every_segmenter_its_chapters_read_under_its_current_name(
        tmp_path, monkeypatch):
    made = committed.manifest(committed.BOOK_RUNS)
    assert made is not None, "no book/runs/committed.json: run `make book-runs`"
    names = [pipeline.seg_folder(j.method, j.task, j.source, j.target, DEMO, j.seed).name
             for j in BOOK_SEGMENTERS]
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path))  # the ceiling's name: made phantoms here
    (ceiling,) = [job for job in pipeline.book_runs() if job.kind == "ideal"]
    names.append(pipeline.ideal_global_folder(ceiling.task, ceiling.source, ceiling.target,
                                              DEMO, ceiling.seed).name)
    missing = [n for n in names if not (committed.BOOK_RUNS / n / "done.json").is_file()]
    assert not missing, f"book/runs lacks {missing} (a default changed?): run `make book-runs`"
    assert sorted(made["runs"]) == sorted(names)


def test_the_committed_runs_were_made_by_this_training_code():
    made = committed.manifest(committed.BOOK_RUNS)
    assert made["training_code"] == committed.training_code_fingerprint(), (
        "the training code changed since book/runs was made: run `make book-runs` and commit it")


def test_the_committed_runs_are_small_and_float16_costs_them_no_dice():
    made = committed.manifest(committed.BOOK_RUNS)
    size = sum(f.stat().st_size for f in committed.BOOK_RUNS.rglob("*") if f.is_file())
    assert size < 48 * 2**20  # 8 runs; chapter 3's `local` with its snapshots is 18 MiB of it
    assert set(made["dice"]) == set(made["runs"])
    for name, d in made["dice"].items():  # measured by `make book-runs` on the installed copies
        assert abs(d["dice_float16"] - d["dice_float32"]) < 0.5, name


def test_commit_book_runs_trains_writes_and_checks_the_installed_copies(tmp_path, monkeypatch,
                                                                        capsys):
    import glua_lib.config
    from glua_lib import cache_cli
    from glua_lib.cli import main

    real = glua_lib.config.get_profile
    monkeypatch.setattr(cache_cli, "get_profile",
                        lambda name=None, device=None, **kw: TINY if name == "demo" else
                        real(name, device, **kw))
    monkeypatch.setattr(cache_cli, "BOOK_METHODS", ("none", "global"))
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path / "mine"))
    monkeypatch.delenv("GLUA_COMMITTED_RUNS", raising=False)
    out = tmp_path / "runs"
    assert main(["commit-book-runs", "--workers", "1", "--out", str(out)]) == 0
    made = committed.manifest(out)
    names = [pipeline.seg_folder(m, "cardiac", "mr", "ct", TINY, 0).name for m in ("none", "global")]
    with monkeypatch.context() as m:  # the ceiling's name, from phantoms made elsewhere
        m.setenv("GLUA_CACHE", str(tmp_path / "names"))
        names.append(pipeline.ideal_global_folder("cardiac", "mr", "ct", TINY, 0).name)
    assert made["runs"] == sorted(names) and set(made["dice"]) == set(names)
    assert made["command"] == "make book-runs" and made["seed"] == 0
    assert made["cache"] == "a new, empty one"  # no --cache: every run trained by this code
    assert made["training_code"] == committed.training_code_fingerprint()
    for d in made["dice"].values():
        assert 0 <= d["dice_float16"] <= 100 and abs(d["dice_float16"] - d["dice_float32"]) < 1
    assert "commit-book-runs: 3 runs" in capsys.readouterr().out
    # trained and checked in caches of its own; the caller's environment is as it was
    import os
    assert os.environ["GLUA_CACHE"] == str(tmp_path / "mine")
    assert "GLUA_COMMITTED_RUNS" not in os.environ
    assert not list((tmp_path / "mine").rglob("*"))  # nothing trained in the caller's cache
