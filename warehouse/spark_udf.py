"""DuckDB's `jaro_winkler_similarity` on Spark, as a Java function built from this repo.

Splink's Spark jar has a `jaro_winkler` that counts transpositions as a fraction
(riley / reilly 0.860, DuckDB 0.890), so the same comparison levels would put pairs at
other levels on the two engines. `JaroWinkler.java` (beside this module) is DuckDB's
function step for step. `jar()` compiles it once with the machine's `javac` against
pyspark's jars into a jar cached under `~/.cache/cip` (`$XDG_CACHE_HOME`), named by
the source's hash; the session puts it on `spark.jars` and `register` makes it the SQL
function `JARO_WINKLER`, which `warehouse.dialect` writes for `jaro_winkler_similarity`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from warehouse.class_sharing import cache_folder
from warehouse.engine import EngineError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["JARO_WINKLER", "jar", "register"]

JARO_WINKLER = "cip_jaro_winkler"
"""The Spark SQL name of DuckDB's `jaro_winkler_similarity`."""

_SOURCE = Path(__file__).with_name("JaroWinkler.java")
_CLASS = "cip.spark.JaroWinkler"


def jar() -> str:
    """The jar of `JaroWinkler.java`, compiled on first use (an `EngineError` naming
    what is missing if there is no `javac`)."""
    source = _SOURCE.read_bytes()
    target = cache_folder() / f"jaro-winkler-{hashlib.sha256(source).hexdigest()[:16]}.jar"
    if not target.exists():
        try:
            _build(target)
        except OSError as error:
            raise EngineError(
                f"engine: spark could not build {target} ({error.strerror or error}), its "
                "Jaro-Winkler with DuckDB's meaning; set XDG_CACHE_HOME to a writable folder"
            ) from None
    return str(target)


def register(session: SparkSession) -> None:
    """Make `JARO_WINKLER` a SQL function of `session` (its jar on `spark.jars`)."""
    from pyspark.sql.types import DoubleType

    session.udf.registerJavaFunction(JARO_WINKLER, _CLASS, DoubleType())


def _javac() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and Path(java_home, "bin", "javac").exists():
        return str(Path(java_home, "bin", "javac"))
    found = shutil.which("javac")
    if found is None:
        raise EngineError(
            "engine: spark builds DuckDB's Jaro-Winkler for Spark once with a Java compiler "
            "and none was found (no `javac` on PATH, JAVA_HOME unset or a runtime only). "
            "Install a JDK 17 or later (Debian: apt-get install openjdk-17-jdk-headless) "
            "or set engine: duckdb (CIP_ENGINE)."
        )
    return found


def _build(target: Path) -> None:
    import pyspark

    javac = _javac()
    classpath = Path(pyspark.__file__).parent / "jars" / "*"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        classes = Path(work, "classes")
        compiled = subprocess.run(
            [javac, "--release", "17", "-cp", str(classpath), "-d", str(classes), _SOURCE],
            capture_output=True,
            text=True,
        )
        if compiled.returncode != 0:
            lines = (compiled.stderr or compiled.stdout).strip().splitlines()
            raise EngineError(
                f"javac could not compile {_SOURCE.name} against pyspark's jars "
                f"({lines[0] if lines else 'no message'}); engine: spark needs it"
            )
        built = Path(work, target.name)
        with zipfile.ZipFile(built, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(classes.rglob("*.class")):
                archive.write(path, path.relative_to(classes).as_posix())
        os.replace(built, target)  # atomic: a concurrent session sees all of it or none
