"""The password file behind ``hive.server2.authentication=CUSTOM``.

One line per user, ``user:pbkdf2-sha256:ITERATIONS:SALT_BASE64:HASH_BASE64`` (PBKDF2-HMAC-SHA256
with a random 16-byte salt per user).  ``emoticana passwd`` writes it; the Java provider
``server/java/org/emoticana/auth/PasswordFileAuthenticator.java`` verifies logins against it,
re-reading it at every login, so changes need no restart.  Both sides parse the same format;
the server checks the file here before it starts, so a bad file fails start-up with one line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from udfs.errors import ConfigError

SCHEME = "pbkdf2-sha256"
#: OWASP's 2023 floor for PBKDF2-HMAC-SHA256 is 600 000; each login pays this once, in the JVM.
DEFAULT_ITERATIONS = 600_000
SALT_BYTES = 16
HASH_BYTES = 32
#: The Java class HiveServer2 instantiates for CUSTOM authentication.
PROVIDER_CLASS = "org.emoticana.auth.PasswordFileAuthenticator"

_USER = re.compile(r"[^\s:#][^\s:]*")


@dataclass(frozen=True)
class PasswordEntry:
    iterations: int
    salt: bytes
    hash: bytes

    def line(self, user: str) -> str:
        encode = lambda raw: base64.b64encode(raw).decode("ascii")  # noqa: E731
        return f"{user}:{SCHEME}:{self.iterations}:{encode(self.salt)}:{encode(self.hash)}"

    def verify(self, password: str) -> bool:
        candidate = hashlib.pbkdf2_hmac(
            "sha256", password.encode("utf-8"), self.salt, self.iterations, len(self.hash)
        )
        return hmac.compare_digest(candidate, self.hash)


def hash_password(
    password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> PasswordEntry:
    """A new entry for ``password`` with a fresh random salt (or ``salt``, for tests)."""
    if not password:
        raise ConfigError("the password is empty")
    if iterations < 1:
        raise ConfigError(f"iterations must be positive, got {iterations}")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations, HASH_BYTES)
    return PasswordEntry(iterations, salt, digest)


def parse_password_file(text: str, *, source: str = "password file") -> dict[str, PasswordEntry]:
    """Users and their entries; ConfigError naming the line for anything the Java side would
    refuse."""
    users: dict[str, PasswordEntry] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) != 5 or not fields[0] or fields[1] != SCHEME:
            raise ConfigError(f"{source} line {number} is not user:{SCHEME}:iterations:salt:hash")
        try:
            iterations = int(fields[2])
            salt = base64.b64decode(fields[3], validate=True)
            digest = base64.b64decode(fields[4], validate=True)
        except ValueError:
            raise ConfigError(f"{source} line {number}: bad iterations, salt or hash") from None
        if iterations < 1 or not salt or not digest:
            raise ConfigError(f"{source} line {number}: bad iterations, salt or hash")
        users[fields[0]] = PasswordEntry(iterations, salt, digest)
    return users


def read_password_file(path: Path) -> dict[str, PasswordEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"password file {path} does not exist; create it with: emoticana passwd USER "
            f"--auth-file {path}"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"password file {path} is a directory") from None
    except OSError as exc:
        raise ConfigError(f"cannot read password file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"password file {path} is not UTF-8 text") from None
    return parse_password_file(text, source=f"password file {path}")


def check_password_file(path: Path) -> int:
    """Start-up check: readable, well-formed, at least one user. Returns the number of users."""
    users = read_password_file(path)
    if not users:
        raise ConfigError(
            f"password file {path} has no users; add one with: emoticana passwd USER --auth-file "
            f"{path}"
        )
    return len(users)


def set_password(
    path: Path, user: str, password: str, *, iterations: int = DEFAULT_ITERATIONS
) -> None:
    """Add ``user`` or replace their password; other lines (and comments) are kept."""
    _check_user(user)
    users = read_password_file(path) if path.exists() else {}
    del users  # parsed only to refuse editing a malformed file
    entry_line = hash_password(password, iterations=iterations).line(user)
    _rewrite(path, user, entry_line)


def delete_user(path: Path, user: str) -> None:
    _check_user(user)
    if user not in read_password_file(path):
        raise ConfigError(f"no user {user!r} in {path}")
    _rewrite(path, user, None)


def _check_user(user: str) -> None:
    if not _USER.fullmatch(user):
        raise ConfigError(
            f"user name {user!r} must be non-empty, without spaces or ':', and not start with '#'"
        )


def _rewrite(path: Path, user: str, new_line: str | None) -> None:
    """Replace the user's line atomically; the file stays readable by its owner only."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept = [line for line in lines if line.strip().split(":", 1)[0] != user]
    if new_line is not None:
        kept.append(new_line)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write("\n".join(kept) + "\n")
        os.replace(temporary, path)
    except OSError as exc:
        raise ConfigError(f"cannot write password file {path}: {exc.strerror}") from None
