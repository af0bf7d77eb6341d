"""The project's Python packages as one zip that a cluster application ships to its executors.

On a cluster master (``spark://``, ``yarn``, ``k8s://``) the executors do not run from
the driver's checkout.  The server and the trainer build this zip at start-up, add it
with ``SparkContext.addPyFile`` (so every task imports the driver's code) and put its
file name on the executors' ``PYTHONPATH`` (``spark.executorEnv.PYTHONPATH``): Spark
downloads added files into an executor's working directory, which is also where its
Python daemon starts, so a ``spark.python.daemon.module`` such as
``training.tfos_daemon`` is importable before any task runs.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path

from server.settings import PROJECT_ROOT

#: The packages executors import (UDFs, model store, TensorFlowOnSpark node and daemon).
SHIPPED_PACKAGES = ("udfs", "training", "server")
#: A fixed timestamp, so the same sources always give the same bytes and file name.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def is_local_master(master: str) -> bool:
    return master.strip().startswith("local")


def code_zip_bytes(root: Path = PROJECT_ROOT) -> bytes:
    """Every ``.py`` file of :data:`SHIPPED_PACKAGES`, in sorted order, with fixed timestamps."""
    files: dict[str, bytes] = {}
    for package in SHIPPED_PACKAGES:
        for source in sorted((root / package).rglob("*.py")):
            if "__pycache__" not in source.parts:
                files[str(source.relative_to(root))] = source.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            entry = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, files[name])
    return buffer.getvalue()


def build_code_zip(directory: Path, root: Path = PROJECT_ROOT) -> Path:
    """Write ``emoticana-<digest>.zip`` into ``directory`` (atomically) and return its path.

    The digest in the name keeps two versions of the code apart: Spark refuses a
    second file of the same name with other contents in one application.
    """
    data = code_zip_bytes(root)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"emoticana-{hashlib.sha256(data).hexdigest()[:12]}.zip"
    if not target.exists():
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".code-", suffix=".zip")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, target)
    return target
