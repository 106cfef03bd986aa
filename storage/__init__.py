"""storage: the local side (SQLite catalogue, checkpoints, zstd revision store, exporters)."""
