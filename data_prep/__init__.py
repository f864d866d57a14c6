"""Dataset converters (MM-WHS, CHAOS, BTCV, the SIFA release) and synthetic MR/CT phantoms.

Every converter writes the prepared format of :mod:`glua_lib.data.prepared`; run them with
``python -m data_prep DATASET --src RAW_DIR --out PREP_DIR``.
"""
