import json

import pytest

from glua_lib.io import atomic_path, atomic_write_text


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]  # no temporary left over


def test_atomic_path_failure_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.npz"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target, suffix=".npz") as tmp:
            assert tmp.name.endswith(".npz") and tmp.parent == tmp_path
            tmp.write_text("half")
            raise RuntimeError("writer died")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]


def test_atomic_files_get_the_usual_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "p.txt", "x")
    finally:
        os.umask(umask)
    assert (tmp_path / "p.txt").stat().st_mode & 0o777 == 0o644


def test_run_log_is_read_back_in_order_and_trimmed_to_a_checkpoint(tmp_path):
    from glua_lib.runlog import LOG, read_log, trim_log
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
