"""Model versions on disk and which one is active.

A model is named ``name/version`` (``emoticana/1``).  The store searches its
roots in order: the state directory's ``models/`` (where ``emoticana train``
writes, and where the ``ACTIVE`` pointer lives), then the repository's
``models/`` (the shipped default).  Python workers read the pointer on every
batch, so activating a version takes effect on the next query without a restart.
On a cluster the roots must be on storage every executor can read.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from udfs.errors import ModelError
from udfs.features import FeatureConfig
from udfs.model_format import MODEL_FILE, ModelInfo, describe_mismatch, read_model_dir

DEFAULT_MODEL = "emoticana/22"
ACTIVE_FILE = "ACTIVE"


def parse_reference(reference: str) -> tuple[str, int | None]:
    """``name/version`` or ``name`` (its newest version)."""
    name, _, version = (reference or "").strip().partition("/")
    if not name:
        raise ModelError(
            f"model reference {reference!r} should look like 'name/version', e.g. {DEFAULT_MODEL!r}"
        )
    # ASCII digits only: str.isdigit() also takes '²' (which int() refuses) and '٢٠' (20).
    if version and not (version.isascii() and version.isdigit()):
        raise ModelError(f"model version in {reference!r} must be a whole number")
    return name, int(version) if version else None


@dataclass(frozen=True)
class ModelStore:
    roots: tuple[str, ...]
    features: FeatureConfig

    @property
    def home(self) -> Path:
        return Path(self.roots[0])

    def versions(self) -> list[Path]:
        """Every ``<root>/<name>/<version>`` directory, first root first."""
        found = []
        for root in self.roots:
            for name_dir in sorted(Path(root).glob("*")):
                if name_dir.is_dir() and not name_dir.name.startswith("."):
                    found.extend(
                        sorted(
                            (p for p in name_dir.iterdir() if p.is_dir() and p.name.isdigit()),
                            key=lambda p: int(p.name),
                        )
                    )
        return found

    def locate(self, reference: str) -> Path:
        name, version = parse_reference(reference)
        candidates = [
            p
            for p in self.versions()
            if p.parent.name == name and (version is None or int(p.name) == version)
        ]
        if not candidates:
            raise ModelError(f"no model {reference!r} under {', '.join(self.roots)}")
        if version is None:
            return max(candidates, key=lambda p: int(p.name))
        return candidates[0]

    def resolve(self, reference: str, *, same_features: bool = True) -> ModelInfo:
        """A checked model: files present, labels, and (``same_features``) the server's feature
        configuration.

        ``same_features=False`` is for inference by name, which computes whatever features the
        model expects (``info.features``); the active model must match the server's, since
        ``emotion_scores(mfcc(...))`` feeds it what the server's ``mfcc`` computes.
        """
        return read_model_dir(
            self.locate(reference), expected_features=self.features if same_features else None
        )

    def active_reference(self) -> str:
        try:
            text = (self.home / ACTIVE_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return DEFAULT_MODEL
        return text or DEFAULT_MODEL

    def active(self) -> ModelInfo:
        return self.resolve(self.active_reference())

    def activate(self, reference: str) -> ModelInfo:
        """Check the model, then point ``ACTIVE`` at it atomically."""
        info = self.resolve(reference, same_features=False)
        canonical = f"{info.path.parent.name}/{info.path.name}"
        if info.features != self.features:
            raise ModelError(
                f"model {canonical} {describe_mismatch(self.features, info.features)}; it cannot "
                f"be the active model, but works by name: emotion(content, '{canonical}')"
            )
        check_model_file(info)
        self.home.mkdir(parents=True, exist_ok=True)
        write_atomically(self.home / ACTIVE_FILE, canonical + "\n")
        return info


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a crash at any point leaves the old or the new file.

    Temporary file in the same directory, fsync, rename over, then fsync of the
    directory so that the rename itself is on disk before the caller is told it happened.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name.lower()}-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def check_model_file(info: ModelInfo) -> None:
    """Cheap integrity check of ``model.keras`` (a zip archive) without importing TensorFlow."""
    path = info.path / MODEL_FILE
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelError(f"model file {path} is corrupt: {exc}") from None
    if bad is not None:
        raise ModelError(f"model file {path} is corrupt: member {bad} fails its checksum")
