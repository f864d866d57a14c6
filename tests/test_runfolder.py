"""The run folder both trainers share: log, batch order, resume rule (glua_lib.runfolder)."""
import json

import pytest

from glua_lib.runfolder import (ELAPSED, LOG, StepBatches, append_log, check_resume, log_series,
                                read_log, training_seconds, trim_log)


def test_run_log_is_read_back_in_order_and_trimmed_to_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no training log here"):
        read_log(tmp_path)
    lines = [{"event": "start"}, {"step": 10, "loss": 1.0}, {"step": 20, "loss": 0.5},
             {"event": "stop"}, {"step": 30, "loss": 0.4}]
    (tmp_path / LOG).write_text("".join(json.dumps(r) + "\n" for r in lines) + "\n")
    assert read_log(tmp_path) == lines  # blank lines skipped
    trim_log(tmp_path / LOG, 20)  # a resume from the checkpoint of step 20
    assert read_log(tmp_path) == lines[:4]  # events kept, steps after 20 dropped
    trim_log(tmp_path / "absent.jsonl", 5)  # nothing to trim
    assert not (tmp_path / "absent.jsonl").exists()


def test_step_batches_depend_only_on_seed_and_step():
    a = StepBatches(10, 3, seed=0, start=0, stop=7)
    b = StepBatches(10, 3, seed=0, start=4, stop=7)
    assert list(a)[4:] == list(b)  # resumed at step 4: the same batches
    epoch0 = [i for batch in list(a)[:3] for _, i in batch]
    assert sorted(epoch0) == sorted(set(epoch0)) and len(epoch0) == 9  # no repeats in an epoch
    assert [e for batch in list(a) for e, _ in batch] == [0] * 9 + [1] * 9 + [2] * 3
    assert list(StepBatches(10, 3, seed=1, start=0, stop=3)) != list(a)[:3]
    with pytest.raises(ValueError, match="only 2 training slices, fewer than batch_size 3"):
        StepBatches(2, 3, seed=0, start=0, stop=1)


def test_curves_and_training_time_from_either_trainers_log(tmp_path):
    seg, style, old = tmp_path / "seg", tmp_path / "style", tmp_path / "old"
    for run in (seg, style, old):
        run.mkdir()
    for rec in ({"event": "start"}, {"step": 10, "loss": 1.0, ELAPSED: 2.0},
                {"step": 20, "loss": 0.5, "d_acc": 0.6, ELAPSED: 4.0},
                {"event": "done", "step": 20, ELAPSED: 4.5}):
        append_log(seg / LOG, rec)
    assert log_series(seg, ["loss", "d_acc"]) == {"loss": ([10, 20], [1.0, 0.5]),
                                                  "d_acc": ([20], [0.6])}
    assert training_seconds(seg) == 4.5  # the done event's time
    with pytest.raises(KeyError, match=r"no logged step has 'adv'; it has \['d_acc', 'loss'\]"):
        log_series(seg, ["adv"])
    append_log(style / LOG, {"step": 5, "g_total": 3.0, ELAPSED: 1.25})
    assert training_seconds(style) == 1.25  # no done event: the last step's time
    (old / LOG).write_text(json.dumps({"step": 5, "g_total": 3.0, "seconds": 7.0}) + "\n")
    assert read_log(old)[0][ELAPSED] == 7.0  # a style log from before the names were one
    append_log(tmp_path / LOG, {"event": "start"})
    with pytest.raises(ValueError, match="no line says how long the run trained"):
        training_seconds(tmp_path)


def test_resume_rule_names_the_fields_that_differ():
    old = {"_type": "C", "lr": 1.0, "steps": 10, "amp": False}
    check_resume("run/config.json", old, {**old, "steps": 20, "amp": True}, {"steps", "amp"})
    with pytest.raises(ValueError, match=r"run/config.json: .*other settings \(differs in lr, "
                                         r"seed\); use another output folder or delete it"):
        check_resume("run/config.json", old, {**old, "lr": 2.0, "seed": 1}, {"steps"})
