"""glua_lib: Global-Local Union Alignment (GLUA) for cross-modality medical image segmentation.

Laid out by concept:

- :mod:`glua_lib.config`  profiles (``demo``/``full``), the cache folder, configs saved as JSON
- :mod:`glua_lib.runtime` device choice, mixed precision, seeding, the environment report
- :mod:`glua_lib.data`    the prepared-data format, tasks and their classes, datasets
- :mod:`glua_lib.plots`   plotting functions (also the callbacks behind the book's sliders)

Importing the package has no side effects: nothing is seeded, created, downloaded or printed.
"""
from glua_lib.config import (DEMO, FULL, GPU16, PROFILES, Profile, cache_dir, choose_profile,
                             get_profile, load_config, save_config)
from glua_lib.runtime import config_report, get_device, print_config, seed_worker, set_seed

__version__ = "0.1.0"

__all__ = [
    "DEMO", "FULL", "GPU16", "PROFILES", "Profile", "cache_dir", "choose_profile",
    "config_report", "get_device",
    "get_profile", "load_config", "print_config", "save_config", "seed_worker", "set_seed",
]
