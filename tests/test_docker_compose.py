"""docker-compose.yml, checked by structure: no Docker engine runs on the development machines.

What a ``docker compose up`` would trip over first is checked here: the services and their
roles, ports published on 127.0.0.1 only, credentials from the environment, volumes that
exist, healthchecks, and every file, entry-point role, console script, Java class and
setting name the file refers to.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

import server.settings as settings_module

PROJECT_ROOT = Path(__file__).resolve().parent.parent
COMPOSE = PROJECT_ROOT / "docker-compose.yml"
SERVICES = {"postgres", "spark-master", "spark-worker-1", "spark-worker-2", "emoticana"}
PUBLISHED = {"emoticana": {10000, 4040}, "spark-master": {8080}}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def split_volume(volume) -> tuple[str, str]:
    """``source:target[:mode]`` of the short syntax; the source may be ``${VAR:-default}``."""
    match = re.fullmatch(r"(\$\{[^}]*\}|[^:]+):([^:]+)(?::(?:ro|rw))?", str(volume))
    assert match, f"cannot read volume {volume!r}"
    return match.group(1), match.group(2)


def built_from_project(service: dict) -> bool:
    return "build" in service


def entrypoint_roles() -> set[str]:
    text = (PROJECT_ROOT / "docker" / "entrypoint.sh").read_text(encoding="utf-8")
    return set(re.findall(r"^\s*([a-z-]+)\)\s*$", text, flags=re.MULTILINE))


def test_services(services):
    assert SERVICES <= set(services), sorted(services)
    for name in SERVICES - {"postgres"}:
        assert built_from_project(services[name]), f"{name} must run the project's image"
    assert "postgres" in services["postgres"]["image"]


def test_ports_published_on_loopback_only(services):
    published: dict[str, set[int]] = {}
    for name, service in services.items():
        for port in service.get("ports", []):
            text = str(port)
            parts = text.split(":")
            assert len(parts) == 3 and parts[0] == "127.0.0.1", (
                f"{name} publishes {text} beyond loopback"
            )
            _, host_port, container_port = parts
            assert host_port == container_port, text
            published.setdefault(name, set()).add(int(host_port))
        assert "network_mode" not in service, (
            f"{name}: host networking would bypass the loopback publishing"
        )
    for name, ports in PUBLISHED.items():
        assert ports <= published.get(name, set()), (name, published.get(name))


def test_credentials_come_from_the_environment(services):
    secrets = 0
    for name, service in services.items():
        for key, value in environment(service).items():
            if re.search("PASSWORD|SECRET|TOKEN", key):
                secrets += 1
                # Required, with no default: compose refuses to start without it.
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), (
                    f"{name}: {key} must be ${{VAR:?message}}, is {value!r}"
                )
    assert secrets >= 2, "the database and the server both need the metastore password"


def test_volumes(compose, services):
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source, target = split_volume(volume)
            if source.startswith("./"):
                assert (PROJECT_ROOT / source).exists(), f"{name} mounts missing {source}"
            elif source.startswith("${"):
                assert ":-" in source, f"{name}: bind mount {source} needs a default"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
                used.add(source)
    assert used == declared, f"declared but unused volumes: {declared - used}"
    server_mounts = {split_volume(v)[1] for v in services["emoticana"]["volumes"]}
    env = environment(services["emoticana"])
    # The warehouse and the models live on the named volume, and the executors see the same paths.
    for key in ("EMOTICANA_WAREHOUSE", "EMOTICANA_MODELS_DIR"):
        assert any(env[key].startswith(mount + "/") for mount in server_mounts), (key, env[key])
    for worker in ("spark-worker-1", "spark-worker-2"):
        assert {str(v) for v in services[worker]["volumes"]} >= {
            v for v in map(str, services["emoticana"]["volumes"]) if "conf" not in v
        }
    assert "./conf:" + env["EMOTICANA_CONF_DIR"] + ":ro" in map(
        str, services["emoticana"]["volumes"]
    )


def test_healthchecks_and_start_order(services):
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
    assert set(services["emoticana"]["depends_on"]) >= {
        "postgres",
        "spark-worker-1",
        "spark-worker-2",
    }
    for name in ("emoticana", "spark-worker-1", "spark-worker-2"):
        assert all(
            dep["condition"] == "service_healthy" for dep in services[name]["depends_on"].values()
        ), name


def test_server_settings_exist(services):
    known = {value for key, value in vars(settings_module).items() if key.startswith("ENV_")}
    env = environment(services["emoticana"])
    unknown = {key for key in env if key.startswith("EMOTICANA_")} - known
    assert not unknown, f"settings the server does not read: {unknown}"
    assert env["EMOTICANA_MASTER"] == "spark://spark-master:7077"
    assert env["EMOTICANA_METASTORE_URL"].startswith("jdbc:postgresql://postgres:5432/")


def test_referenced_files_exist(services):
    dockerfiles = set()
    for service in services.values():
        if built_from_project(service):
            build = service["build"]
            context = PROJECT_ROOT / build["context"]
            dockerfile = context / build["dockerfile"]
            assert dockerfile.is_file(), dockerfile
            dockerfiles.add(dockerfile)
    assert len(dockerfiles) == 1
    dockerfile = dockerfiles.pop()
    text = dockerfile.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim-bookworm\b", text, flags=re.MULTILINE)
    assert (
        "constraints.txt" in text
        and "openjdk-17-jre-headless" in text
        and "libpostgresql-jdbc-java" in text
    )
    for sources in re.findall(r"^COPY\s+(.+)\s+\S+$", text, flags=re.MULTILINE):
        for source in sources.split():
            assert (PROJECT_ROOT / source).exists(), f"Dockerfile copies missing {source}"
    entrypoint = re.search(r'^ENTRYPOINT \["([^"]+)"\]', text, flags=re.MULTILINE).group(1)
    assert re.search(rf"^COPY docker/entrypoint\.sh \S*/{entrypoint}$", text, flags=re.MULTILINE)


def test_entrypoint_roles_and_commands(services):
    script = PROJECT_ROOT / "docker" / "entrypoint.sh"
    assert script.stat().st_mode & 0o111, "entrypoint.sh must be executable"
    subprocess.run(["sh", "-n", str(script)], check=True)
    text = script.read_text(encoding="utf-8")
    roles = entrypoint_roles()
    for name, service in services.items():
        if built_from_project(service):
            assert service["command"][0] in roles, (name, service["command"], roles)
    # Each role ends in exec, so signals reach the server, not a shell.
    for role in ("master", "worker", "server"):
        body = text.split(f"  {role})", 1)[1].split(";;", 1)[0]
        assert re.search(r"^\s*exec ", body, flags=re.MULTILINE), role
    scripts = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"
    ]["scripts"]
    assert scripts["emoticana"] == "server.cli:main"
    from server.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["serve", "--host", "emoticana"]).host == "emoticana"


def test_spark_launcher_classes_exist():
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    assert (spark_home / "bin" / "spark-class").is_file()
    classes = set(
        re.findall(
            r"org\.apache\.spark\.deploy\.[\w.]+",
            (PROJECT_ROOT / "docker" / "entrypoint.sh").read_text(),
        )
    )
    assert len(classes) == 2
    for jar in (spark_home / "jars").glob("spark-core_*.jar"):
        with zipfile.ZipFile(jar) as archive:
            names = set(archive.namelist())
        missing = {c for c in classes if c.replace(".", "/") + ".class" not in names}
        assert not missing, missing
        break
    else:
        pytest.fail("no spark-core jar in pyspark/jars")


def test_the_image_runs_as_an_unprivileged_account_that_owns_only_its_state(services):
    dockerfile = (PROJECT_ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)\s*$", dockerfile, flags=re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}, users
    account = users[-1]
    assert re.search(rf"useradd\b[^\n]*(?:\\\n[^\n]*)*\b{account}\b", dockerfile)
    # The last USER comes after every build step that needs root.
    assert dockerfile.rindex(f"USER {account}") > dockerfile.rindex("RUN ")
    owned = re.search(r"chown -R \S+ ([^\n]+)", dockerfile).group(1).split()
    # It owns the state and the data volume the server and workers write, and nothing of the code.
    writes = {"/var/lib/emoticana", "/data"}
    assert writes <= set(owned) and not {"/opt/emoticana", "/usr/local"} & set(owned)
    for name in ("emoticana", "spark-worker-1"):
        env = environment(services[name])
        for key in ("EMOTICANA_HOME", "EMOTICANA_WAREHOUSE", "EMOTICANA_MODELS_DIR"):
            if key in env:
                assert any(env[key].startswith(path) for path in writes), (name, key)
    assert re.search(r"SPARK_WORKER_DIR=/var/lib/emoticana/", dockerfile)
