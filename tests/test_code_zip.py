"""The code zip a cluster application ships: complete, importable on its own, and stable."""

import subprocess
import sys
import sysconfig
import zipfile

from server.code_zip import SHIPPED_PACKAGES, build_code_zip, code_zip_bytes
from server.settings import PROJECT_ROOT

# Imported on executors: the UDF wrappers, the model store, the TFoS node and its daemon.
EXECUTOR_MODULES = [
    "udfs.spark_udfs",
    "udfs.inference",
    "udfs.model_store",
    "training.node",
    "training.tfos_daemon",
    "server.spark",
]


def test_zip_holds_every_module_and_a_package_marker_for_each(tmp_path):
    path = build_code_zip(tmp_path)
    names = set(zipfile.ZipFile(path).namelist())
    for package in SHIPPED_PACKAGES:
        sources = {
            str(p.relative_to(PROJECT_ROOT))
            for p in (PROJECT_ROOT / package).rglob("*.py")
            if "__pycache__" not in p.parts
        }
        assert sources and sources <= names
        assert f"{package}/__init__.py" in names


def test_same_sources_give_the_same_file(tmp_path):
    assert code_zip_bytes() == code_zip_bytes()
    assert build_code_zip(tmp_path / "a").name == build_code_zip(tmp_path / "b").name


def test_executor_modules_import_from_the_zip_alone(tmp_path):
    """No checkout on the path: site-packages without .pth files (so not the editable install),
    then the zip."""
    path = build_code_zip(tmp_path)
    probe = (
        "import importlib, sys\n"
        f"sys.path[:0] = [{str(path)!r}, {sysconfig.get_paths()['purelib']!r}]\n"
        f"for name in {EXECUTOR_MODULES!r}:\n"
        "    print(importlib.import_module(name).__file__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    files = result.stdout.split()
    assert len(files) == len(EXECUTOR_MODULES) and all(
        f.startswith(str(path) + "/") for f in files
    ), files
