"""The cached-run pipeline: trains once, reuses afterwards, evaluates on the target test split."""
import dataclasses
import json
import shutil
import types

import numpy as np
import pytest
import torch

from glua_lib import DEMO, cache_cli, pipeline
from glua_lib.data import load_volumes
from glua_lib.phantoms import DATA_SEED, phantom_dir

TINY = dataclasses.replace(DEMO, name="demo", slice_size=32, n_slices=6, n_train=2, n_test=1,
                           batch_size=2, seg_steps=3, style_batch=1)


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


def test_evaluate_on_recomputes_when_the_folder_was_remade(tmp_path, monkeypatch):
    # chapter 2 scores translated folders under one name per seed; when a changed style default
    # remakes the folder, the cached scores of the old one must not be returned
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path / "cache"))
    cpu = torch.device("cpu")
    run = pipeline.seg_run("none", "cardiac", "mr", "ct", TINY, seed=1, device=cpu)
    folder = tmp_path / "scored"
    shutil.copytree(phantom_dir("cardiac", "ct", TINY), folder)
    first = pipeline.evaluate_on(run, folder, "scored")
    written = (run / "metrics-scored.json").stat().st_mtime_ns
    assert pipeline.evaluate_on(run, folder, "scored") == first  # same folder: reused
    assert (run / "metrics-scored.json").stat().st_mtime_ns == written

    shutil.rmtree(folder)
    shutil.copytree(phantom_dir("cardiac", "mr", TINY), folder)  # remade: other images
    second = pipeline.evaluate_on(run, folder, "scored")
    assert second["gt_manifest_sha1"] != first["gt_manifest_sha1"]
    assert second["volumes"] != first["volumes"]
    assert json.loads((run / "metrics-scored.json").read_text()) == second


def test_judge_translation_scores_source_and_translation_with_the_oracle(tmp_path, monkeypatch):
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path / "cache"))
    cpu = torch.device("cpu")
    # a "translation" that leaves the images as they are: the judge must score it like the source
    unchanged = tmp_path / "translated"
    shutil.copytree(phantom_dir("cardiac", "mr", TINY), unchanged)
    monkeypatch.setattr(pipeline, "translated_dir", lambda *args: unchanged)
    judged = pipeline.judge_translation("cardiac", "mr", "ct", TINY, seed=1, device=cpu)
    oracle = pipeline.seg_run("oracle", "cardiac", "mr", "ct", TINY, seed=1, device=cpu)
    assert (oracle / "metrics-mr-source-test.json").is_file()
    assert (oracle / "metrics-mr2ct-translated-seed1.json").is_file()
    assert list(judged["source"]["volumes"]) == ["cardiac-mr-002"]  # the source test subject
    assert judged["translated"]["volumes"] == judged["source"]["volumes"]
    # and the ideal translation, in the profile's 3 styles, as the ceiling
    assert (oracle / "metrics-mr2ct-ideal.json").is_file()
    assert list(judged["ideal"]["volumes"]) == [f"cardiac-mr-002_style{k}" for k in range(3)]


def test_progress_bars_show_as_the_profile_says_for_its_long_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path))
    seen = []

    def train_seg(method, source, target, out, config, device, style_run, progress):
        seen.append(progress)
        return out

    monkeypatch.setattr(pipeline, "train_seg", train_seg)
    monkeypatch.setattr(pipeline, "phantom_dir", lambda *args: tmp_path / "phantoms")
    full = dataclasses.replace(TINY, name="gpu", progress=True)  # a GPU profile's long runs
    for seed, (profile, asked) in enumerate([(TINY, None), (full, None), (TINY, True),
                                             (full, False)]):
        pipeline.seg_run("none", "cardiac", "mr", "ct", profile, seed, torch.device("cpu"),
                         progress=asked)
    assert seen == [False, True, True, False]


def test_ideal_translation_sets_render_the_source_test_volumes_in_the_profiles_styles(
        tmp_path, monkeypatch):
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path))
    sets = pipeline.ideal_translation_sets("cardiac", "mr", "ct", TINY, n_sets=2)
    assert isinstance(sets, types.GeneratorType)  # one set at a time
    first, second = list(sets)
    # the one source test subject in the profile's n_styles (3) renderings, as CT
    assert [v.subject for v in first] == [f"cardiac-mr-002_style{k}" for k in range(3)]
    assert all(v.modality == "ct" and v.image.shape == (6, 32, 32) for v in first)
    (source,) = load_volumes(phantom_dir("cardiac", "mr", TINY), "test")
    assert all(np.array_equal(v.label, source.label) for v in first + second)
    assert not np.array_equal(first[0].image, second[0].image)  # independent draws
    # the first set, as a prepared folder in the cache (what the judge scores)
    folder = pipeline.ideal_dir("cardiac", "mr", "ct", TINY)
    assert folder.parent == phantom_dir("cardiac", "mr", TINY).parent
    written = load_volumes(folder)
    assert [v.subject for v in written] == [v.subject for v in first]
    assert all(np.array_equal(a.image, b.image) and a.modality == "ct"
               for a, b in zip(written, first))
    assert pipeline.ideal_dir("cardiac", "mr", "ct", TINY) == folder  # reused


def test_ideal_global_run_trains_like_none_on_every_split_of_the_ideal_translations(
        tmp_path, monkeypatch):
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path))
    cpu = torch.device("cpu")
    run = pipeline.ideal_global_run("cardiac", "mr", "ct", TINY, seed=1, device=cpu)
    assert run.name.startswith("seg-ideal-global-cardiac-mr2ct-demo-seed1-")
    folder = pipeline.ideal_dir("cardiac", "mr", "ct", TINY, split=None)
    assert folder.name.endswith("-ideal-ct-3styles-all")
    assert folder != pipeline.ideal_dir("cardiac", "mr", "ct", TINY)  # the test split alone
    # every source subject (2 train, 1 test) in 3 renderings, as CT, with the source labels
    written = load_volumes(folder)
    assert len(written) == 9 and all(v.modality == "ct" for v in written)
    assert len(load_volumes(folder, "train")) == 6
    source = {v.subject: v for v in load_volumes(phantom_dir("cardiac", "mr", TINY))}
    assert all(np.array_equal(v.label, source[v.subject.rsplit("_style", 1)[0]].label)
               for v in written)
    record = json.loads((run / "run.json").read_text())
    assert record["train_dir"] == str(folder.resolve())  # trained on the ideal translations
    assert record["method"] == "none" and record["style_run"] is None
    assert json.loads((run / "config.json").read_text())["seed"] == 1
    done = (run / pipeline.DONE).stat().st_mtime_ns
    assert pipeline.ideal_global_run("cardiac", "mr", "ct", TINY, seed=1, device=cpu) == run
    assert (run / pipeline.DONE).stat().st_mtime_ns == done  # reused, not retrained
    metrics = pipeline.evaluate_run(run, "cardiac", "ct", TINY, cpu)
    assert list(metrics["volumes"]) == ["cardiac-ct-002"]


def test_book_runs_put_the_style_run_first_and_its_users_last():
    from glua_lib.seg.train import get_method

    jobs = pipeline.book_runs("abdominal", "ct", "mr", seed=2)
    assert jobs[0] == pipeline.Job("style", "abdominal", "ct", "mr", 2)
    assert str(jobs[0]) == "style abdominal ct2mr seed2"
    assert jobs[-1] == pipeline.Job("ideal", "abdominal", "ct", "mr", 2)  # chapter 2's ceiling
    methods = [job.method for job in jobs[1:-1]]
    assert all(job.kind == "seg" and job[1:5] == ("abdominal", "ct", "mr", 2)
               for job in jobs[1:-1])
    assert all(job.data_seed == DATA_SEED and job.overrides == () for job in jobs)
    needs = [get_method(m).needs_style_run for m in methods]
    assert needs == sorted(needs) and any(needs) and not all(needs)  # users of the style run last
    assert set(methods) == {"none", "global", "local", "glua", "local-unmasked", "glua-unmasked",
                            "oracle"}
    # chapter 3 teaches `local`: trained; the others may come from the book's committed runs
    assert [job.method for job in jobs[1:] if not job.committed] == list(pipeline.TAUGHT) == ["local"]
    dev = pipeline.Job("seg", "cardiac", "mr", "ct", 1, "none", 7, (("width", 8),))
    assert str(dev) == "seg none cardiac mr2ct seed1 data7 width=8"


def test_train_runs_in_two_processes_fill_the_cache_the_chapters_read(tmp_path, monkeypatch):
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path))  # the workers inherit it
    cpu = torch.device("cpu")
    jobs = [pipeline.Job("seg", "cardiac", "mr", "ct", 1, m) for m in ("none", "oracle")]
    lines = []
    done = pipeline.train_runs(jobs, TINY, cpu, workers=2, log=lines.append)
    assert [d[0] for d in done] == jobs and len(lines) == 2
    for (job, run, seconds), method in zip(done, ("none", "oracle")):
        assert seconds > 0 and (run / "metrics-test.json").is_file()  # trained and evaluated
        stamp = (run / pipeline.DONE).stat().st_mtime_ns
        assert pipeline.seg_run(method, "cardiac", "mr", "ct", TINY, seed=1, device=cpu) == run
        assert (run / pipeline.DONE).stat().st_mtime_ns == stamp  # a chapter reuses it
    # a worker's 1-thread run is the run this process would train with 1 thread, bit for bit
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        monkeypatch.setenv("GLUA_CACHE", str(tmp_path / "here"))
        here = pipeline.seg_run("none", "cardiac", "mr", "ct", TINY, seed=1, device=cpu)
    finally:
        torch.set_num_threads(threads)
    assert here.name == done[0][1].name
    a = torch.load(done[0][1] / "model.pt", weights_only=True)["model"]
    b = torch.load(here / "model.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_train_runs_refuses_bad_jobs_and_counts():
    with pytest.raises(ValueError, match="workers and threads must be >= 1"):
        pipeline.train_runs([], TINY, "cpu", workers=0)
    with pytest.raises(ValueError, match="unknown job kind 'judge'"):
        pipeline.train_runs([pipeline.Job("judge", "cardiac", "mr", "ct")], TINY, "cpu")


def test_a_development_data_seed_trains_on_other_phantoms_in_other_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path))
    cpu = torch.device("cpu")
    book = pipeline.seg_run("none", "cardiac", "mr", "ct", TINY, seed=1, device=cpu)
    dev = pipeline.seg_run("none", "cardiac", "mr", "ct", TINY, seed=1, device=cpu, data_seed=7)
    assert "-data7-" in dev.name and "data" not in book.name.split("seed1")[1]
    assert dev.name.replace("-data7", "") == book.name  # the same config, other phantoms
    dev_metrics = pipeline.evaluate_run(dev, "cardiac", "ct", TINY, cpu, data_seed=7)
    dev_ct = phantom_dir("cardiac", "ct", TINY, seed=7)
    assert dev_metrics["gt_dir"] == str(dev_ct.resolve())
    assert list(dev_metrics["volumes"]) == [v.subject for v in load_volumes(dev_ct, "test")]
    book_img = load_volumes(phantom_dir("cardiac", "ct", TINY), "test")[0].image
    assert not np.array_equal(load_volumes(dev_ct, "test")[0].image, book_img)


def test_cache_book_runs_command_hands_the_book_runs_to_train_runs(monkeypatch, capsys):
    from glua_lib.cli import main

    seen = {}

    def fake(jobs, profile, device, workers, threads):
        seen.update(jobs=jobs, profile=profile.name, device=str(device), workers=workers,
                    threads=threads)
        return []

    monkeypatch.setattr(cache_cli, "train_runs", fake)
    assert main(["cache-book-runs", "--workers", "2", "--profile", "demo", "--device", "cpu",
                 "--task", "abdominal", "--seed", "1"]) == 0
    assert seen == {"jobs": pipeline.book_runs("abdominal", "mr", "ct", 1), "profile": "demo",
                    "device": "cpu", "workers": 2, "threads": 1}
    out = capsys.readouterr().out
    assert "9 runs of the demo profile, 2 at a time" in out and "cache-book-runs: done in" in out


def test_a_masked_run_is_evaluated_with_and_without_its_target_mask(tmp_path, monkeypatch):
    monkeypatch.setenv("GLUA_CACHE", str(tmp_path))
    cpu = torch.device("cpu")
    run = pipeline.seg_run("local", "cardiac", "mr", "ct", TINY, seed=1, device=cpu)
    masked = pipeline.evaluate_run(run, "cardiac", "ct", TINY, cpu)
    plain = pipeline.evaluate_run(run, "cardiac", "ct", TINY, cpu, target_mask=False)
    assert list(masked["volumes"]) == list(plain["volumes"]) == ["cardiac-ct-002"]

    def mask_used(name):
        return json.loads((run / f"pred-{name}" / "manifest.json").read_text())["prediction"][
            "target_features_masked"]

    assert (mask_used("test"), mask_used("test-unmasked")) == (True, False)
    assert (run / "metrics-test-unmasked.json").is_file()
