"""The "your own data" commands of the README and the book's intro, run as written on tiny MM-WHS
files in the real layout.

Raw NIfTI (``mr_train/mr_train_10XX_{image,label}.nii.gz``, ``ct_train/...``) → ``python -m
data_prep mmwhs`` → ``python -m glua_lib train-style`` → ``translate`` → ``train-seg`` →
``predict`` → ``evaluate``. The commands are read from the two documents (which must agree), get
only test-sized options appended (demo profile, 3 steps, CPU, 32² slices) and run in-process:
every one exits 0 and hands the next what it needs. The numbers are not the point; the contract
between the commands, and documents that still work, are.
"""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
from _raw_layouts import lps_affine, snapshot, write_nifti

from data_prep.__main__ import main as data_prep_main
from glua_lib.cli import main as glua_main
from glua_lib.data import list_subjects, load_volume, read_manifest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md", "### Your own data, end to end")  # the file and its section
X, Y, Z = 32, 6, 32  # LPS voxels; the default coronal plane gives D×H×W = Y×Z×X = 6×32×32
SPACING = (1.0, 2.0, 1.0)  # mm along x, y, z
# MM-WHS label values: MYO 205, LAC 420, LVC 500, AA 820 (600, the right ventricle, → 0)
TISSUE = {"mr": {0: 80, 205: 300, 420: 900, 500: 1000, 820: 950, 600: 700},
          "ct": {0: -100, 205: 150, 420: 400, 500: 420, 820: 450, 600: 380}}
SUBJECTS = {"mr": ("1001", "1002", "1007"), "ct": ("1001", "1002", "1003")}  # 1007, 1003: test
TEST_SIZED = {  # appended to each documented command
    "data_prep": ["--size", "32", "--no-progress"],
    "train-style": ["--profile", "demo", "--steps", "3", "--device", "cpu", "--no-progress"],
    "translate": ["--device", "cpu", "--no-progress"],
    "train-seg": ["--profile", "demo", "--steps", "3", "--batch-size", "4", "--device", "cpu",
                  "--no-progress"],
    "predict": ["--device", "cpu", "--no-progress"],
    "evaluate": [],
}


def documented_commands(path: Path, heading: str) -> list[list[str]]:
    """The commands of the first ```bash block after ``heading`` (continuations joined,
    comments dropped), each split as the shell would."""
    text = path.read_text()
    block = re.search(r"```bash\n(.*?)```", text[text.index(heading):], re.S).group(1)
    return [shlex.split(line, comments=True) for line in block.replace("\\\n", " ").splitlines()
            if line.strip()]


def heart(seed: int) -> np.ndarray:
    """A label volume (x, y, z): LVC inside a MYO ring, LAC, AA and a right ventricle (600)."""
    rng = np.random.default_rng(seed)
    x, z = np.meshgrid(np.arange(X), np.arange(Z), indexing="ij")
    cx, cz = 14 + rng.integers(-2, 3), 16 + rng.integers(-2, 3)
    plane = np.zeros((X, Z), np.int16)
    plane[np.hypot(x - cx, z - cz) < 9] = 205
    plane[np.hypot(x - cx, z - cz) < 5] = 500
    plane[np.hypot(x - cx - 11, z - cz) < 4] = 600
    plane[np.hypot(x - cx, z - cz + 11) < 3] = 420
    plane[np.hypot(x - cx + 10, z - cz - 9) < 3] = 820
    return np.repeat(plane[:, None, :], Y, axis=1)


def write_mmwhs(raw: Path) -> None:
    """MM-WHS as its two archives unpack: ``mr_train/`` and ``ct_train/`` side by side."""
    for modality, subjects in SUBJECTS.items():
        rng = np.random.default_rng(len(modality))
        for k, num in enumerate(subjects):
            label = heart(10 * k + len(modality))
            image = np.vectorize(TISSUE[modality].get)(label).astype(np.float32)
            image += rng.normal(0, 40, size=image.shape).astype(np.float32)
            stem = raw / f"{modality}_train" / f"{modality}_train_{num}"
            write_nifti(Path(f"{stem}_image.nii.gz"), image, lps_affine(SPACING))
            write_nifti(Path(f"{stem}_label.nii.gz"), label, lps_affine(SPACING))


def test_readme_and_intro_give_the_same_commands():
    readme = documented_commands(*README)
    intro = documented_commands(ROOT / "book" / "intro.md", "## Your own data")
    assert readme == intro
    assert [c[:3] for c in readme] == [["python", "-m", "data_prep"]] * 2 + [
        ["python", "-m", "glua_lib"]] * 5


def test_own_data_commands_run_from_raw_files_to_dice(tmp_path, monkeypatch, capsys):
    write_mmwhs(tmp_path / "MMWHS_RAW")
    before = snapshot(tmp_path / "MMWHS_RAW")
    monkeypatch.chdir(tmp_path)  # the documented relative paths land in tmp_path
    for argv in documented_commands(*README):
        module, args = argv[2], argv[3:]
        extra = TEST_SIZED["data_prep" if module == "data_prep" else args[0]]
        main = data_prep_main if module == "data_prep" else glua_main
        assert main(args + extra) == 0, shlex.join(argv)
    assert snapshot(tmp_path / "MMWHS_RAW") == before  # raw inputs untouched

    prep = tmp_path / "prep"
    assert list_subjects(prep / "mr", "test") == ["mr_1007"]
    assert list_subjects(prep / "ct", "test") == ["ct_1003"]
    # the translations: CT-like renderings of every MR volume, with the MR labels
    translated = read_manifest(prep / "mr2ct")
    assert translated["task"] == "cardiac" and translated["modality"] == "ct"
    # the authors' translator (the default) draws one look per domain: one rendering a volume
    assert len(translated["subjects"]) == len(SUBJECTS["mr"])
    assert all(name.endswith("_style0") for name in translated["subjects"])
    for name in list_subjects(prep / "mr2ct"):
        vol = load_volume(prep / "mr2ct" / f"{name}.npz")
        source = load_volume(prep / "mr" / f"{name.split('_style')[0]}.npz")
        assert np.array_equal(vol.label, source.label)
        assert vol.image.shape == source.image.shape and np.isfinite(vol.image).all()
    # the segmenter, its predictions on the target test split, their scores
    assert (tmp_path / "runs" / "glua" / "model.pt").is_file()
    pred = tmp_path / "pred" / "glua"
    assert list_subjects(pred) == ["ct_1003"]
    assert read_manifest(pred)["prediction"]["uses_target_labels"] is False
    assert "Dice (%)" in capsys.readouterr().out
    saved = json.loads((tmp_path / "glua.json").read_text())
    assert list(saved["per_volume"]["volumes"]) == ["ct_1003"]
    dice = saved["tables"]["dice"]
    assert dice["columns"] == ["MYO", "LAC", "LVC", "AA", "average"]
    assert all(0 <= dice["rows"]["glua"][c]["mean"] <= 100 for c in dice["columns"]), dice
