"""What every part of the engine uses, and that imports nothing else of ours.

In: files and configs from the edge (CSV/Parquet store data, YAML configs, the engine database URL).
Out: validated plain data (integer-cent money, typed data contracts with rejected rows, pydantic
configs with FILE:LINE errors, the event log's public format, the store calendar) and a migrated
SQLAlchemy engine. ``label_gateway`` and ``simulator`` use nothing of the engine but this package.
"""
