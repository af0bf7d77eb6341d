"""Session-scoped fixtures: generated audio, and the real server as a subprocess."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from server.process import ServerProcess
from tests.audiogen import voiced_signal, write_bad_inputs, write_clip, write_variants


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
def server(tmp_path_factory, audio_root) -> ServerProcess:
    running = ServerProcess(home=tmp_path_factory.mktemp("home"), audio_roots=[audio_root]).start()
    yield running
    running.stop()


@pytest.fixture
def cursor(server):
    connection = server.connect()
    yield connection.cursor()
    connection.close()
