"""Shared fixtures (generated audio, the one session server, the training views) and the tiers.

``make check`` runs ``pytest -m "not slow"``: every test that starts a server, Spark, a Spark
cluster, PostgreSQL or TensorFlowOnSpark is marked ``slow``, by its module or itself, or here
by the fixtures it uses (:data:`SLOW_FIXTURES`). A test that is not marked and starts a server
or a Spark cluster anyway fails, naming the marker it needs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from server.cluster import StandaloneCluster, free_port
from server.process import ServerProcess
from tests.audiogen import voiced_signal, write_bad_inputs, write_clip, write_variants
from udfs.labels import EMOTIONS

#: Fixtures that start a server, Spark or PostgreSQL (directly or through another fixture): a
#: test using any of them, however indirectly, is ``slow``.
SLOW_FIXTURES = {
    "server",
    "cursor",
    "views",
    "auth_server",
    "tls_server",
    "cluster",
    "postgres",
    "two_servers",
    "opt_in_server",
    "trained",
}


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _slow_work_needs_the_slow_marker(request, monkeypatch):
    """A fast test that starts a server or a cluster fails at once instead of slowing make check."""
    if request.node.get_closest_marker("slow"):
        return

    def refuse(*args, **kwargs):
        pytest.fail(f"{request.node.nodeid} starts a server or cluster: mark it @pytest.mark.slow")

    monkeypatch.setattr(ServerProcess, "start", refuse)
    monkeypatch.setattr(StandaloneCluster, "start", refuse)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)


@pytest.fixture(scope="session")
def audio_root(tmp_path_factory) -> Path:
    """The directory the test server may read by path, filled with generated clips."""
    root = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(7)
    write_variants(root / "variants", rng)
    write_bad_inputs(root / "bad", rng)
    # RAVDESS-named clips (synthetic content) for ravdess_meta and table tests.
    for index, name in enumerate(
        ["03-01-05-02-01-02-12", "03-01-01-01-01-01-01", "03-01-08-01-02-01-07"]
    ):
        samples = voiced_signal(
            rng, sample_rate=48000, seconds=1.2 + 0.2 * index, f0=110 + 40 * index
        )
        write_clip(root / "ravdess" / f"{name}.wav", samples, 48000, subtype="PCM_16")
    return root


@pytest.fixture(scope="session")
def outside_dir(tmp_path_factory) -> Path:
    """A readable clip outside the audio root (must never be readable by path through SQL)."""
    directory = tmp_path_factory.mktemp("outside")
    samples = voiced_signal(np.random.default_rng(3), sample_rate=16000, seconds=1.0)
    write_clip(directory / "secret.wav", samples, 16000, subtype="PCM_16")
    return directory


@pytest.fixture(scope="session")
def synth_dir(audio_root) -> Path:
    """4 speakers x 8 emotions x 2 clips; each emotion has its own pitch, so it is learnable."""
    directory = audio_root / "synth"
    rng = np.random.default_rng(11)
    for speaker in range(1, 5):
        for index, emotion in enumerate(EMOTIONS):
            for take in (1, 2):
                samples = voiced_signal(
                    rng, sample_rate=16000, seconds=0.8, f0=90 + 28 * index + 4 * speaker
                )
                write_clip(
                    directory / f"spk{speaker}_{emotion}_{take}.wav",
                    samples,
                    16000,
                    subtype="PCM_16",
                )
    (directory / "spk1_angry_broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    return directory


@pytest.fixture(scope="session")
def server(tmp_path_factory, audio_root) -> ServerProcess:
    """The one server every test shares unless it needs other settings (shipped defaults).

    Its Spark UI is on a known port (``server.ui_port``): its REST API shows the running jobs.
    """
    ui_port = free_port()
    running = ServerProcess(
        home=tmp_path_factory.mktemp("home"),
        audio_roots=[audio_root],
        extra_args=["--conf", f"spark.ui.port={ui_port}"],
    ).start()
    running.ui_port = ui_port
    yield running
    running.stop()


@pytest.fixture
def cursor(server):
    connection = server.connect()
    yield connection.cursor()
    connection.close()


@pytest.fixture(scope="session")
def views(server, synth_dir):
    """The training views over ``synth_dir`` on the session server, good and bad; a cursor."""
    cursor = server.connect().cursor()
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS synth USING binaryFile "
        f"OPTIONS (path '{synth_dir}', pathGlobFilter '*.wav')"
    )
    cursor.execute(
        "CREATE OR REPLACE VIEW synth_train AS SELECT content, "
        "regexp_extract(path, '_([a-z]+)_', 1) AS label, "
        "regexp_extract(path, 'spk([0-9]+)_', 1) AS speaker FROM synth"
    )
    cursor.execute("CREATE OR REPLACE VIEW synth_empty AS SELECT * FROM synth_train WHERE false")
    cursor.execute(
        "CREATE OR REPLACE VIEW synth_badlabel AS SELECT content, "
        "CASE WHEN label = 'happy' THEN 'joyful' ELSE label END AS label, speaker FROM synth_train"
    )
    cursor.execute(
        "CREATE OR REPLACE VIEW synth_nospeaker AS SELECT content, label FROM synth_train"
    )
    # A view whose table is gone: DESCRIBE still answers, reading it fails.
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS synth_gone USING binaryFile "
        f"OPTIONS (path '{synth_dir}', pathGlobFilter '*.wav')"
    )
    cursor.execute(
        "CREATE OR REPLACE VIEW synth_orphan AS "
        "SELECT content, 'calm' AS label, '1' AS speaker FROM synth_gone"
    )
    cursor.execute("DROP TABLE synth_gone")
    return cursor
