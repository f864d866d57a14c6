"""Which half of a style model collapsed: the style encoder's codes or the decoder's response.

    .venv/bin/python benchmarks/style_effect.py [RUN_DIR ...] [--styles K] [--seed S]

For each style run (default: every ``style-*`` run folder in the cache folder, ``$GLUA_CACHE``)
prints one row:

- the per-dimension standard deviation (min–max) of the style codes its encoder gave the real
  target training slices (stored in the checkpoint; the k-means styles are their centres; the
  prior asks for 1), and the same for a freshly initialised model of the run's config and seed
  (where training started);
- :func:`glua_lib.style.translate.volume_style_effect` on the first source subject (as
  ``translate_folder`` records it): how much the K k-means styles and K N(0, I) draws change
  the rendering (mean absolute difference, images in [-1, 1]), their ratio, and the verdict.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glua_lib.checkpoint import load_checkpoint  # noqa: E402
from glua_lib.config import cache_dir  # noqa: E402
from glua_lib.data import load_volume, load_volumes, read_manifest  # noqa: E402
from glua_lib.style.models import StyleTransfer  # noqa: E402
from glua_lib.style.train import CHECKPOINT, StyleConfig  # noqa: E402
from glua_lib.style.translate import (load_style_model, style_bank,  # noqa: E402
                                      target_style_codes, volume_style_effect)


def fresh_code_std(config: StyleConfig, target_dir: Path) -> torch.Tensor:
    """Per-dimension std S of the codes a freshly initialised model (the run's config and seed)
    gives the target training slices."""
    images = [v.image for v in load_volumes(target_dir, "train")]
    torch.manual_seed(config.seed)
    model = StyleTransfer(config).eval()
    x = torch.from_numpy(np.concatenate(images)[:, None].astype(np.float32))
    with torch.inference_mode():
        codes = torch.cat([model.encode(b, "target")[1] for b in x.split(64)])
    return codes.std(0)


def measure(run: Path, n_styles: int, seed: int) -> dict:
    """The row of one run folder (see the module docstring)."""
    state = load_checkpoint(run / CHECKPOINT)
    config, data = StyleConfig.from_dict(state["config"]), state["data"]
    model, _ = load_style_model(run, "cpu")
    source_dir = Path(data["source_dir"])
    manifest = read_manifest(source_dir)
    first = sorted(manifest["subjects"])[0]
    volume = load_volume(source_dir / manifest["subjects"][first]["file"])
    effect = volume_style_effect(model, volume, style_bank(state, n_styles, "kmeans", seed), seed)
    trained = target_style_codes(run).std(0)
    fresh = fresh_code_std(config, Path(data["target_dir"]))
    return {"run": run.name, "trained_std": (float(trained.min()), float(trained.max())),
            "fresh_std": (float(fresh.min()), float(fresh.max())), "styles": effect.styles,
            "random": effect.random, "ratio": effect.ratio, "collapsed": effect.collapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, metavar="RUN_DIR",
                        help="style run folders (default: every style run in the cache folder)")
    parser.add_argument("--styles", type=int, default=3, metavar="K",
                        help="k-means styles, as translate --styles (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="as translate --seed")
    args = parser.parse_args(argv)
    runs = args.runs or sorted(p for p in (cache_dir(create=False) / "runs").glob("style-*")
                               if (p / CHECKPOINT).is_file())
    if not runs:
        print(f"error: no style runs given or in {cache_dir(create=False) / 'runs'}",
              file=sys.stderr)
        return 2
    torch.set_num_threads(min(2, torch.get_num_threads()))
    print(f"{'run':<46} {'code std, trained':>18} {'fresh':>15} {'k-means':>8} {'random':>7} "
          f"{'ratio':>6}")
    for run in runs:
        r = measure(run, args.styles, args.seed)
        print(f"{r['run']:<46} {r['trained_std'][0]:8.4f}–{r['trained_std'][1]:.4f} "
              f"{r['fresh_std'][0]:6.4f}–{r['fresh_std'][1]:.4f} {r['styles']:8.1e} "
              f"{r['random']:7.4f} {r['ratio']:6.4f}" + ("  collapsed" if r["collapsed"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
