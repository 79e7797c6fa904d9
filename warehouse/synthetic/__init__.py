"""A synthetic customer universe with a known truth, for building and measuring the platform.

`generate(settings=..., sources_dir=..., truth_dir=...)` invents people with
hidden behaviour and writes the records a business would hold about them, one
file per source (see `warehouse.schemas`), plus the truth that only evaluation
and tests read.
"""

from warehouse.synthetic.generator import STEPS, generate, is_current
from warehouse.synthetic.writing import FORMATS, source_file

__all__ = ["FORMATS", "STEPS", "generate", "is_current", "source_file"]
