"""The warehouse: raw source tables in DuckDB, file and row-batch loaders, quarantine, lineage.

`connect` opens (and sets up) the warehouse file; `load_file`, `load_directory` and
`append_rows` load data idempotently and return a `LoadReport` each. The declared schemas
are the source catalog, `warehouse.sources` (one module per source, the `Source` type in
`warehouse.schemas`); the names of the tables every stage shares are in `warehouse.tables`;
the Segment message mapping is in `warehouse.segment`.
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
from warehouse.schemas import Source
from warehouse.sources import SOURCES

__all__ = [
    "SOURCES",
    "LoadReport",
    "Source",
    "append_rows",
    "connect",
    "load_directory",
    "load_file",
    "source_files",
    "source_of",
]
