"""The warehouse: raw source tables in DuckDB, file and row-batch loaders, quarantine, lineage.

`connect` opens (and sets up) the warehouse file; `load_file`, `load_directory` and
`append_rows` load data idempotently and return a `LoadReport` each. The declared schemas
are in `warehouse.schemas`; the Segment message mapping in `warehouse.segment`.
"""

from warehouse.database import connect
from warehouse.loader import (
    LoadReport,
    append_rows,
    load_directory,
    load_file,
    source_files,
    source_of,
)
from warehouse.schemas import SOURCES, SourceSchema

__all__ = [
    "SOURCES",
    "LoadReport",
    "SourceSchema",
    "append_rows",
    "connect",
    "load_directory",
    "load_file",
    "source_files",
    "source_of",
]
