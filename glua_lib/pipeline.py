"""Cached artifacts shared by the chapters: trained runs and their evaluations.

Every chapter asks for what it needs (a style run, a segmenter run, its test metrics) through the
functions here. Each result lives in one folder of the cache (:func:`glua_lib.config.cache_dir`)
named after everything that determines it; if the folder is complete it is reused, if it is
missing or was interrupted it is (re)trained and resumed exactly. A file lock keeps two kernels
(parallel tests, two notebooks) from training the same run at once. So a reader who opens
chapter 4 first gets the same models chapter 2 would have trained. :func:`train_runs` fills the
cache with several runs at once, one process each (``make book`` fills it with :func:`book_runs`
so before the chapters run); ``data_seed`` trains on a development set of phantoms. Segmenters
the book has committed (:mod:`glua_lib.committed`) are installed instead of trained when the cache
lacks them, unless asked not to (``committed=False``, for the run a chapter teaches).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Iterator, NamedTuple

import torch
from filelock import FileLock

from glua_lib import costs
from glua_lib.committed import DONE, available, install, origin
from glua_lib.config import Profile, cache_dir, config_to_dict, get_profile
from glua_lib.io import atomic_write_text
from glua_lib.methods import get_method
from glua_lib.phantoms import (DATA_SEED, ideal_translations, phantom_dir,
                               write_ideal_translations)
from glua_lib.seg.predict import evaluate_folders, predict_folder
from glua_lib.seg.train import SegConfig, train_seg
from glua_lib.style.train import StyleConfig, train_style
from glua_lib.style.translate import CollapsedStylesWarning, translate_folder


def _run_folder(kind: str, *parts) -> Path:
    return cache_dir() / "runs" / "-".join([kind, *map(str, parts)])


def fingerprint(config, *more: str) -> str:
    """8 hex digits identifying a config (and anything else a run depends on): part of every run
    folder's name, so a changed default trains a new run instead of reusing a stale one. A config
    with an ``identity()`` method (:class:`~glua_lib.style.train.StyleConfig`) is identified by
    what it returns, which leaves out fields that cannot change the run."""
    data = config.identity() if hasattr(config, "identity") else config_to_dict(config)
    text = json.dumps(data, sort_keys=True, default=str) + "|".join(more)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def data_parts(data_seed: int) -> tuple[str, ...]:
    """What of a run folder's name says which phantoms it saw: nothing for the book's
    (:data:`~glua_lib.phantoms.DATA_SEED`), ``("data<seed>",)`` for a development set."""
    return () if data_seed == DATA_SEED else (f"data{data_seed}",)


def profile_parts(profile: Profile) -> tuple[str, ...]:
    """What of the profile decides the data a run sees (phantom size and counts)."""
    return (f"{profile.slice_size}", f"{profile.n_slices}", f"{profile.n_train}",
            f"{profile.n_test}", f"{profile.n_styles}")


def _progress(progress: bool | None, profile: Profile) -> bool:
    """A training progress bar when asked for; by default (``None``) as the profile says: for
    the GPU profiles, whose runs take an hour or more, not for the ``demo`` profile's minutes
    (the book's outputs)."""
    return profile.progress if progress is None else bool(progress)


def style_folder(task: str, source: str, target: str, profile: Profile, seed: int = 0,
                 data_seed: int = DATA_SEED, style_overrides: tuple = ()) -> Path:
    """The cache folder of :func:`style_run`'s run (which may not exist yet): its name fixes the
    task, direction, profile, seed, phantoms and every setting of the style run
    (``style_overrides``: ``(field, value)`` pairs of :class:`StyleConfig` to change, which also
    appear in the name)."""
    config = StyleConfig.from_profile(profile, seed=seed, **dict(style_overrides))
    extra = [f"{k}={v}" for k, v in sorted(style_overrides)]
    return _run_folder("style", task, f"{source}2{target}", profile.name, f"seed{seed}",
                       *data_parts(data_seed), *extra,
                       fingerprint(config, *profile_parts(profile)))


def style_run(task: str, source: str, target: str, profile: Profile | None = None,
              seed: int = 0, device: torch.device | None = None,
              progress: bool | None = None, data_seed: int = DATA_SEED,
              style_overrides: tuple = ()) -> Path:
    """The global-alignment (style transfer) run ``source → target`` for ``task``; trained if
    missing. ``source``/``target`` are modalities (``"mr"``/``"ct"``) of the phantoms.
    ``progress``: a progress bar while training (``None``: for the ``full`` profile only).
    ``data_seed``: the phantoms' seed (:func:`data_parts`; another one makes a development set
    whose labels may choose defaults). ``style_overrides``: as for :func:`style_folder`."""
    profile = profile or get_profile(device=device)
    progress = _progress(progress, profile)
    config = StyleConfig.from_profile(profile, seed=seed, **dict(style_overrides))
    out = style_folder(task, source, target, profile, seed, data_seed, style_overrides)
    with FileLock(str(out) + ".lock"):
        if not (out / DONE).is_file():
            train_style(phantom_dir(task, source, profile, data_seed),
                        phantom_dir(task, target, profile, data_seed),
                        out, config, device=device, progress=progress)
            atomic_write_text(out / DONE, json.dumps({"steps": config.steps}) + "\n")
    return out


@contextlib.contextmanager
def _styles_known_to_collapse():
    """Silence :class:`~glua_lib.style.translate.CollapsedStylesWarning` for the book's runs:
    chapter 2 measures and shows the collapse, and every translated folder's manifest records
    it (``style_effect``), so the advice meant for a user's own call is not repeated in every
    chapter and results script."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollapsedStylesWarning)
        yield


def seg_folder(method: str, task: str, source: str, target: str, profile: Profile,
               seed: int = 0, data_seed: int = DATA_SEED, style_overrides: tuple = (),
               **overrides) -> Path:
    """The cache folder of :func:`seg_run`'s run (which may not exist yet): its name records
    method, task, direction, profile, seed, phantoms and overrides, and a fingerprint of every
    setting, the method's own and the style run's folder (for methods that use one) included."""
    extra = [f"{k}={v}" for k, v in sorted(overrides.items())]
    style = (style_folder(task, source, target, profile, seed, data_seed, style_overrides)
             if get_method(method).needs_style_run else None)
    config = SegConfig.from_profile(profile, method=method, seed=seed, **overrides)
    settings = get_method(method).settings_for(config)
    more = [json.dumps(settings, sort_keys=True)] if settings else []
    return _run_folder("seg", method, task, f"{source}2{target}", profile.name, f"seed{seed}",
                       *data_parts(data_seed), *extra,
                       fingerprint(config, *profile_parts(profile), style.name if style else "",
                                   *more))


def seg_run(method: str, task: str, source: str, target: str, profile: Profile | None = None,
            seed: int = 0, device: torch.device | None = None, progress: bool | None = None,
            data_seed: int = DATA_SEED, committed: bool = True, style_overrides: tuple = (),
            **overrides) -> Path:
    """A segmenter trained with ``method`` on ``task``, ``source → target``; trained if missing.

    Methods that need global alignment (``global``, ``glua``, ``glua-unmasked``) first obtain
    the style run of the same seed (:func:`style_run`). The method's own settings (e.g. the
    local alignment's :class:`~glua_lib.local.methods.LocalConfig`) are part of the folder's
    fingerprint. ``overrides`` change :class:`~glua_lib.seg.train.SegConfig` fields and become
    part of the folder name. ``progress``: progress bars while training (``None``: for the
    ``full`` profile only). ``data_seed``: the phantoms' seed, as for :func:`style_run`.
    ``committed``: when the cache lacks the run and the book has it committed
    (:mod:`glua_lib.committed`), install that copy instead of training (then no style run is
    needed); ``False`` trains it (what a chapter does with the run it teaches).
    :func:`run_origin` says which happened. ``style_overrides``: the style run's
    :class:`StyleConfig` changes (:func:`style_folder`), for methods that use one.
    """
    profile = profile or get_profile(device=device)
    progress = _progress(progress, profile)
    out = seg_folder(method, task, source, target, profile, seed, data_seed, style_overrides,
                     **overrides)
    if committed and not style_overrides:
        with FileLock(str(out) + ".lock"):
            if (out / DONE).is_file() or install(out):
                return out
    style = (style_run(task, source, target, profile, seed, device, progress, data_seed,
                       style_overrides)
             if get_method(method).needs_style_run else None)
    config = SegConfig.from_profile(profile, method=method, seed=seed, **overrides)
    return _train_seg_once(out, method, phantom_dir(task, source, profile, data_seed),
                           phantom_dir(task, target, profile, data_seed), config, device, style,
                           progress)


def training_costs(methods: list[str] | tuple[str, ...], task: str, source: str, target: str,
                   profile: Profile, seed: int = 0, device: torch.device | None = None,
                   style: bool = False, taught: tuple[str, ...] = (), timed: bool = True,
                   data_seed: int = DATA_SEED) -> list[costs.RunCost]:
    """What training the runs a chapter reads costs here, before it trains them (chapters show
    :func:`glua_lib.costs.cost_markdown` of it): a row for the style run when ``style`` or a
    method needs one, then one per segmenter method, each with its FLOPs, one step measured on
    ``device`` (:func:`glua_lib.costs.measure`; ``timed=False``: FLOPs only) and its status:
    ``"in the cache"``, ``"committed"`` (the book's copy will be installed, no training; not for
    the ``taught`` methods, which the chapter trains itself) or ``"to train"``.

    On a CPU the FLOPs of slices larger than 128² are counted on one slice per domain and scaled
    to the batch (exact), to save time; the timed step is the whole batch."""
    device = torch.device("cpu") if device is None else torch.device(device)
    count_batch = 1 if device.type == "cpu" and profile.slice_size > 128 else None
    out = []
    if style or any(get_method(m).needs_style_run for m in methods):
        cost = costs.style_cost(StyleConfig.from_profile(profile, seed=seed), device,
                                count_batch, timed)
        done = (style_folder(task, source, target, profile, seed, data_seed) / DONE).is_file()
        out.append(dataclasses.replace(cost, status="in the cache" if done else "to train"))
    for method in methods:
        cost = costs.seg_cost(SegConfig.from_profile(profile, method=method, seed=seed),
                              profile.slice_size, device, count_batch, timed)
        folder = seg_folder(method, task, source, target, profile, seed, data_seed)
        status = ("in the cache" if (folder / DONE).is_file() else
                  "committed" if method not in taught and available(folder) else "to train")
        out.append(dataclasses.replace(cost, status=status))
    return out


def run_origin(run: str | Path) -> str:
    """How a run folder got into the cache: ``"trained on this machine"`` or installed from the
    committed runs (which command, code version and machine made it); chapters print it."""
    return origin(run)


def ideal_global_folder(task: str, source: str, target: str, profile: Profile | None = None,
                        seed: int = 0, device: torch.device | None = None,
                        data_seed: int = DATA_SEED) -> Path:
    """The cache folder of :func:`ideal_global_run`'s run (which may not exist yet); its name
    fixes task, direction, profile, seed, phantoms and every setting. Makes the ideal
    translations it names if missing (:func:`ideal_dir`, a few seconds)."""
    profile = profile or get_profile(device=device)
    ideal = ideal_dir(task, source, target, profile, device, split=None, data_seed=data_seed)
    config = SegConfig.from_profile(profile, method="none", seed=seed)  # "none": no translating
    return _run_folder("seg", "ideal-global", task, f"{source}2{target}", profile.name,
                       f"seed{seed}", *data_parts(data_seed),
                       fingerprint(config, *profile_parts(profile), ideal.name))


def ideal_global_run(task: str, source: str, target: str, profile: Profile | None = None,
                     seed: int = 0, device: torch.device | None = None,
                     progress: bool | None = None, data_seed: int = DATA_SEED,
                     committed: bool = True) -> Path:
    """The ceiling of the ``global`` method: a segmenter trained as ``global`` is (the same
    :class:`~glua_lib.seg.train.SegConfig` and seed), on the source labels, but on *ideal*
    translations of the source phantoms (:func:`ideal_dir` of every split) instead of the style
    run's; trained if missing. ``global``'s Dice below this run's is what the translator's
    imperfection costs the segmenter. Only phantoms have ideal translations. ``data_seed``: the
    phantoms' seed, as for :func:`style_run`. ``committed``: as for :func:`seg_run` (chapter 2
    reads the book's copy of its default run; ``False`` trains)."""
    profile = profile or get_profile(device=device)
    out = ideal_global_folder(task, source, target, profile, seed, device, data_seed)
    if committed:
        with FileLock(str(out) + ".lock"):
            if (out / DONE).is_file() or install(out):
                return out
    ideal = ideal_dir(task, source, target, profile, device, split=None, data_seed=data_seed)
    config = SegConfig.from_profile(profile, method="none", seed=seed)
    return _train_seg_once(out, "none", ideal, phantom_dir(task, target, profile, data_seed),
                           config, device, None, _progress(progress, profile))


def _train_seg_once(out: Path, method: str, source_dir: Path, target_dir: Path, config,
                    device: torch.device | None, style: Path | None, progress: bool) -> Path:
    """``train_seg`` into ``out`` unless a finished run is there (``DONE``), under a file lock."""
    with FileLock(str(out) + ".lock"), _styles_known_to_collapse():
        if not (out / DONE).is_file():
            train_seg(method, source_dir, target_dir, out, config, device=device,
                      style_run=style, progress=progress)
            atomic_write_text(out / DONE, json.dumps({"method": method}) + "\n")
    return out


def evaluate_run(run: str | Path, task: str, target: str, profile: Profile | None = None,
                 device: torch.device | None = None, data_seed: int = DATA_SEED,
                 target_mask: bool = True) -> dict:
    """Per-volume 3D Dice and ASSD (mm) of ``run`` on the target phantoms' ``test`` split (of
    the phantoms of ``data_seed``).

    Predictions and metrics are kept in the run folder (``pred-test/``, ``metrics-test.json``).
    ``target_mask=False``: for a run that masks target features at test time (``local``,
    ``glua``), the same model with the mask switched off (``pred-test-unmasked/``,
    ``metrics-test-unmasked.json``): what the mask itself changes in the predictions.
    """
    profile = profile or get_profile(device=device)
    return evaluate_on(run, phantom_dir(task, target, profile, data_seed),
                       "test" if target_mask else "test-unmasked", device=device,
                       domain=None if target_mask else "source")


def evaluate_on(run: str | Path, prep_dir: str | Path, name: str, split: str | None = "test",
                device: torch.device | None = None, domain: str | None = None) -> dict:
    """Segment ``prep_dir`` (one split, or all with ``None``) with ``run`` and score it against
    the folder's own labels; cached in the run folder as ``pred-{name}/`` and
    ``metrics-{name}.json``. ``domain``: which path of a run that masks target features
    (:func:`glua_lib.seg.predict.predict_folder`; ``None``: by the folder's modality).

    The cached metrics are reused only while ``prep_dir`` and its ``manifest.json`` are the
    same as when they were computed (the manifest names, e.g., the style run a translated
    folder came from); otherwise they are recomputed, so a folder that was remade under the
    same ``name`` is never reported with its predecessor's scores.
    """
    run, prep_dir = Path(run), Path(prep_dir)
    result = run / f"metrics-{name}.json"
    stamp = hashlib.sha1((prep_dir / "manifest.json").read_bytes()).hexdigest() \
        if (prep_dir / "manifest.json").is_file() else None  # missing: evaluate_folders says so
    with FileLock(str(run) + ".eval.lock"):
        cached = json.loads(result.read_text()) if result.is_file() else {}
        if (stamp is None or cached.get("gt_dir") != str(prep_dir.resolve())
                or cached.get("gt_manifest_sha1") != stamp):
            pred = predict_folder(run, prep_dir, run / f"pred-{name}", device=device, split=split,
                                  overwrite=True, progress=False, domain=domain)
            cached = {**evaluate_folders(pred, prep_dir, split=split), "gt_manifest_sha1": stamp}
            atomic_write_text(result, json.dumps(cached, indent=2) + "\n")
    return cached


def judge_translation(task: str, source: str, target: str, profile: Profile | None = None,
                      seed: int = 0, device: torch.device | None = None,
                      committed: bool = True) -> dict[str, dict]:
    """Global alignment's content check: the ``oracle`` segmenter of ``seed`` (trained on real
    target labels; trained, or installed from the book's committed runs as ``committed`` says
    (:func:`seg_run`), if missing) scores the source test volumes against their own labels,
    ``{"source": as they are, "translated": rendered by the style run of ``seed``
    (:func:`translated_dir`), "ideal": the ideal translation (:func:`ideal_dir`)}``, each an
    :func:`evaluate_on` result. High Dice on the translations needs both target-like images and
    anatomy that stayed put; the ideal translation's Dice is as high as it can get."""
    profile = profile or get_profile(device=device)
    judge = seg_run("oracle", task, source, target, profile, seed, device, committed=committed)
    translated = translated_dir(task, source, target, profile, seed, device)
    ideal = ideal_dir(task, source, target, profile, device)
    return {"source": evaluate_on(judge, phantom_dir(task, source, profile),
                                  f"{source}-source-test", device=device),
            "translated": evaluate_on(judge, translated,
                                      f"{source}2{target}-translated-seed{seed}", device=device),
            "ideal": evaluate_on(judge, ideal, f"{source}2{target}-ideal", device=device)}


def translated_dir(task: str, source: str, target: str, profile: Profile | None = None,
                   seed: int = 0, device: torch.device | None = None,
                   data_seed: int = DATA_SEED, style_overrides: tuple = ()) -> Path:
    """The source phantoms rendered in ``profile.n_styles`` target styles by the style run of
    ``seed`` (prepared format, source labels kept); made if missing. ``data_seed`` and
    ``style_overrides``: as for :func:`style_run`."""
    profile = profile or get_profile(device=device)
    run = style_run(task, source, target, profile, seed, device, data_seed=data_seed,
                    style_overrides=style_overrides)
    out = run / f"translated-{profile.n_styles}styles"
    with FileLock(str(out) + ".lock"), _styles_known_to_collapse():
        if not (out / "manifest.json").is_file():
            translate_folder(run, phantom_dir(task, source, profile, data_seed), out,
                             n_styles=profile.n_styles, device=device, seed=seed,
                             overwrite=True, progress=False)
    return out


IDEAL_SETS = 20  # independent sets of ideal translations behind a reported ideal gap


def ideal_dir(task: str, source: str, target: str, profile: Profile | None = None,
              device: torch.device | None = None, split: str | None = "test",
              data_seed: int = DATA_SEED) -> Path:
    """The source phantoms' volumes of ``split`` (``None``: every split) rendered in the target
    modality from their own tissue maps, ``profile.n_styles`` times each (for the test split the
    first set of :func:`ideal_translation_sets`), as a prepared folder in the cache; made if
    missing. ``data_seed``: the phantoms' seed."""
    profile = profile or get_profile(device=device)
    folder = phantom_dir(task, source, profile, data_seed)
    out = folder.parent / (f"{folder.name}-ideal-{target}-{profile.n_styles}styles"
                           + ("" if split == "test" else f"-{split or 'all'}"))
    with FileLock(str(out) + ".lock"):
        if not (out / "manifest.json").is_file():
            write_ideal_translations(folder, target, out, split, profile.n_styles,
                                     overwrite=True)
    return out


def ideal_translation_sets(task: str, source: str, target: str, profile: Profile | None = None,
                           n_sets: int = IDEAL_SETS, split: str | None = "test",
                           device: torch.device | None = None) -> Iterator[list]:
    """``n_sets`` independent sets of *ideal* translations of the source phantoms (one split):
    each source volume's own tissue map rendered in the target modality,
    ``profile.n_styles`` times, as :func:`translated_dir` renders it in ``n_styles`` styles
    (:func:`glua_lib.phantoms.ideal_translations`, ``draw = 0 … n_sets - 1``). A generator: one
    set is held at a time. For :func:`glua_lib.style.measure.translation_report`'s
    ``ideal_sets``."""
    profile = profile or get_profile(device=device)
    folder = phantom_dir(task, source, profile)
    return (ideal_translations(folder, target, split, profile.n_styles, draw)
            for draw in range(n_sets))


# The methods chapters 3 and 4 train (chapter 2's content check trains "oracle"), in the order
# :func:`book_runs` hands them out: those that need no style run first.
BOOK_METHODS = ("local", "local-unmasked", "oracle", "none", "global", "glua", "glua-unmasked")
# The segmenters a chapter teaches, so trains even where a committed copy exists (chapter 3:
# ``local``); the style run, chapter 2's, is never committed (global's ceiling, which chapter 2
# reads, is).
TAUGHT = ("local",)


class Job(NamedTuple):
    """One run for :func:`train_runs`: a style run, or a segmenter (then evaluated on the target
    test split)."""
    kind: str  # "style" (style_run), "seg" (seg_run, then evaluate_run) or "ideal"
    # (ideal_global_run, global's ceiling, then evaluate_run)
    task: str  # "cardiac" or "abdominal"
    source: str  # labelled source modality, "mr" or "ct"
    target: str  # target modality
    seed: int = 0  # the run's seed
    method: str = ""  # "seg" only: none, global, local, glua, ... or oracle
    data_seed: int = DATA_SEED  # the phantoms' seed (another one: a development set)
    overrides: tuple = ()  # "seg" only: (field, value) pairs of SegConfig to change
    profile_overrides: tuple = ()  # (field, value) pairs of the Profile to change (style_steps)
    committed: bool = True  # "seg" and "ideal": install the book's committed copy if there is one
    style_overrides: tuple = ()  # (field, value) pairs of the style run's StyleConfig to change

    def __str__(self) -> str:
        what = [self.kind, self.method, self.task, f"{self.source}2{self.target}",
                f"seed{self.seed}", *data_parts(self.data_seed),
                *(f"{k}={v}" for k, v in (*self.profile_overrides, *self.style_overrides,
                                           *self.overrides))]
        return " ".join(w for w in what if w)


def book_runs(task: str = "cardiac", source: str = "mr", target: str = "ct",
              seed: int = 0) -> list[Job]:
    """The runs chapters 2 to 4 read with their default parameters, as :func:`train_runs` jobs:
    the style run first (it takes longest), then a segmenter for each of :data:`BOOK_METHODS`,
    then ``global``'s ceiling (:func:`ideal_global_run`, chapter 2's headline). The runs a
    chapter teaches (the style run, chapter 2; :data:`TAUGHT`: ``local``, chapter 3) are
    trained; the others, the ceiling included (chapter 2 reads it, as it reads ``global`` and
    ``oracle``), are installed from the committed runs where the book has them
    (:mod:`glua_lib.committed`), else trained too."""
    return [Job("style", task, source, target, seed),
            *(Job("seg", task, source, target, seed, method=m, committed=m not in TAUGHT)
              for m in BOOK_METHODS),
            Job("ideal", task, source, target, seed)]


def train_job(job: Job, profile: Profile, device: str, threads: int) -> tuple:
    """One :func:`train_runs` job in a worker process: its run (trained if missing) and, for a
    segmenter, its test evaluation; returns ``(job, run folder, seconds)``."""
    torch.set_num_threads(threads)
    start, dev = time.perf_counter(), torch.device(device)
    if job.profile_overrides:
        profile = dataclasses.replace(profile, **dict(job.profile_overrides))
    if job.kind == "style":
        run = style_run(job.task, job.source, job.target, profile, job.seed, dev,
                        data_seed=job.data_seed, style_overrides=job.style_overrides)
    elif job.kind == "seg":
        run = seg_run(job.method, job.task, job.source, job.target, profile, job.seed, dev,
                      data_seed=job.data_seed, committed=job.committed,
                      style_overrides=job.style_overrides, **dict(job.overrides))
        evaluate_run(run, job.task, job.target, profile, dev, job.data_seed)
    elif job.kind == "ideal":
        run = ideal_global_run(job.task, job.source, job.target, profile, job.seed, dev,
                               data_seed=job.data_seed, committed=job.committed)
        evaluate_run(run, job.task, job.target, profile, dev, job.data_seed)
    else:
        raise ValueError(f"unknown job kind {job.kind!r} in {job}: 'style', 'seg' or 'ideal'")
    return job, run, time.perf_counter() - start


def train_runs(jobs: list[Job], profile: Profile, device: torch.device | str,
               workers: int = 1, threads: int = 1, log=print) -> list[tuple]:
    """Fill the cache with ``jobs`` (:func:`book_runs`), ``workers`` processes at a time with
    ``threads`` torch threads each; returns ``(job, run folder, seconds)`` per job, in order.

    On a CPU with two cores, two 1-thread processes train two runs in about the time one takes
    (small convolutions gain little from a second thread), and a 1-thread run is the run a
    chapter trains under ``make book``: the same cached folder, the same figures. Jobs are
    taken in order by the first free worker; one that needs a run another worker is training
    waits for it (the cache's file locks). ``log`` gets one line per finished job.
    """
    if workers < 1 or threads < 1:
        raise ValueError(f"workers and threads must be >= 1, got {workers} and {threads}")
    device = str(device)

    def logged(result: tuple) -> tuple:
        job, run, seconds = result
        log(f"{str(job):<44} {seconds:6.0f} s  {Path(run).name}")
        return result

    if workers == 1:
        return [logged(train_job(job, profile, device, threads)) for job in jobs]
    ctx = multiprocessing.get_context("spawn")  # no forked torch state
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = [pool.submit(train_job, job, profile, device, threads) for job in jobs]
        for future in as_completed(futures):
            logged(future.result())
        return [f.result() for f in futures]


__all__ = ["BOOK_METHODS", "DATA_SEED", "IDEAL_SETS", "Job", "TAUGHT", "book_runs", "data_parts",
           "training_costs",
           "evaluate_on", "evaluate_run", "ideal_dir", "ideal_global_folder", "ideal_global_run",
           "ideal_translation_sets", "judge_translation", "run_origin", "seg_folder", "seg_run", "style_folder",
           "style_run", "train_job", "train_runs", "translated_dir"]
