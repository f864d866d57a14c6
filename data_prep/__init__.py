"""Dataset converters for external datasets (MM-WHS, CHAOS, BTCV, the SIFA release, the GLUA
authors' PNG slices).

Every converter writes the prepared format of :mod:`glua_lib.data.prepared`; run them with
``python -m data_prep DATASET --src RAW_DIR --out PREP_DIR``. The same command line generates
the book's synthetic MR/CT phantoms (``python -m data_prep phantom``), which live in the library,
:mod:`glua_lib.phantoms`. This package imports from the library, never the other way round.
"""
