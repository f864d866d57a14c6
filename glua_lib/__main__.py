"""``python -m glua_lib``: see :mod:`glua_lib.cli`."""
import sys

from glua_lib.cli import main

sys.exit(main())
