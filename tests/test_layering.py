"""Package dependencies run one way: udfs <- training <- (server's CLI only).

``udfs`` (decoding, features, the model directory format and inference) is what every Spark
Python worker imports; it must not pull in the server or the trainer.  ``training`` may use
``udfs`` and the server's client and Spark-building modules.  ``server`` starts a training run
from its CLI and imports nothing else of ``training``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("udfs", "training", "server")
#: The server modules a training run may use: settings, its Spark session, the Thrift client.
TRAINING_MAY_USE = {
    "server.settings",
    "server.spark",
    "server.thrift",
    "server.preflight",
    "server.code_zip",
}
#: Where the server may import training: the CLI's ``train`` command.
SERVER_MAY_IMPORT_TRAINING = {("server/cli.py", "training.trainer")}


def imports(path: Path) -> list[str]:
    """Every module ``path`` imports (absolute names; ``from a import b`` gives ``a.b`` and
    ``a``)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def project_imports(package: str) -> list[tuple[str, str]]:
    """``(file, imported module)`` for every import of a project package inside ``package``."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imports(path):
            top = name.split(".")[0]
            if top in PACKAGES and top != package:
                found.append((str(path.relative_to(ROOT)), name))
    return found


def test_every_package_is_a_regular_package():
    for package in PACKAGES:
        assert (ROOT / package / "__init__.py").is_file(), package


def test_udfs_imports_neither_server_nor_training():
    assert project_imports("udfs") == []


def test_training_uses_only_udfs_and_the_servers_client_and_spark_modules():
    # ``from server.x import y`` also yields ``server.x.y``: judged by its module, ``server.x``.
    offending = [
        (where, name)
        for where, name in project_imports("training")
        if name.startswith("server") and ".".join(name.split(".")[:2]) not in TRAINING_MAY_USE
    ]
    assert offending == []


def test_server_imports_training_only_to_start_a_training_run():
    found = {
        (where, ".".join(name.split(".")[:2]))
        for where, name in project_imports("server")
        if name.startswith("training")
    }
    assert found <= SERVER_MAY_IMPORT_TRAINING


@pytest.mark.parametrize(
    "modules",
    [
        # The server's Python daemon imports these before it forks its workers, and TensorFlow
        # is not safe to fork once imported.
        "udfs.worker_daemon, udfs.registry, udfs.spark_udfs, udfs.inference, udfs.model_store, "
        "udfs.model_format",
        "server.app, server.cli, server.console",
    ],
)
def test_importing_inference_or_the_server_loads_no_training_code_or_tensorflow(modules):
    """The import graph as Python runs it, including imports inside functions run at import time."""
    probe = (
        f"import sys\nimport {modules}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('training', 'tensorflow', 'keras', 'tensorflowonspark')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_the_test_finds_an_import_that_breaks_the_rule(tmp_path):
    """The reader sees function-level and ``from`` imports, so a lazy import cannot hide."""
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from training.trainer import run_training\n")
    assert "training.trainer" in imports(source)


def test_test_modules_share_code_through_support_modules_not_each_other():
    # Importing a test module runs its module-level fixtures' setup rules twice and ties the two
    # modules' test selection together: shared code lives in conftest.py or a support module.
    found = [
        (path.name, name)
        for path in sorted((ROOT / "tests").glob("test_*.py"))
        for name in imports(path)
        if name.split(".")[-1].startswith("test_")
        and (name.startswith("tests.") or name.startswith("test_"))
    ]
    assert found == []
