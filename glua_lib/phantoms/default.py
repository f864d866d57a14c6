"""The embedded default data: synthetic phantoms, generated once into the cache folder.

Chapters call :func:`phantom_dir`; if the prepared folder is missing (a reader opened a later
chapter first, or the cache was cleared) it is generated, under a file lock so that two kernels
(parallel tests, two notebooks) never write it at the same time.
"""
from __future__ import annotations

from pathlib import Path

from filelock import FileLock

from glua_lib.config import Profile, cache_dir, get_profile
from glua_lib.data.prepared import MANIFEST, read_manifest
from glua_lib.phantoms.generate import write_phantoms

# Phantom subject streams are seeded from (seed, modality, index): source and target disjoint.
DATA_SEED = 2026


def phantom_dir(task: str, modality: str, profile: Profile | None = None,
                seed: int = DATA_SEED, progress: bool = False) -> Path:
    """The prepared phantom folder for ``task``/``modality`` at the profile's size; made if missing.

    The folder holds ``profile.n_train`` training and ``profile.n_test`` test subjects of
    ``profile.n_slices × profile.slice_size × profile.slice_size`` voxels.
    """
    profile = profile or get_profile()
    n = profile.n_train + profile.n_test
    name = (f"phantom-{task}-{modality}-{profile.slice_size}px-{profile.n_slices}sl-"
            f"{n}n-{profile.n_test}test-seed{seed}")
    out = cache_dir() / "data" / name
    with FileLock(str(out) + ".lock"):
        if not (out / MANIFEST).is_file():
            write_phantoms(out, task=task, modality=modality, n=n, seed=seed,
                           size=profile.slice_size, n_slices=profile.n_slices,
                           n_test=profile.n_test, overwrite=True, progress=progress,
                           command=f"glua_lib.phantoms.phantom_dir({task!r}, {modality!r}, "
                                   f"profile={profile.name!r}, seed={seed})")
    read_manifest(out)  # raises, naming the file, if the cached folder was damaged
    return out
