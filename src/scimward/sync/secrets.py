"""Target credentials encrypted at rest (Fernet: AES-128-CBC with an HMAC-SHA256, from ``cryptography``).

The key comes from ``SCIMWARD_SECRET_KEY`` (a Fernet key: 32 bytes, url-safe base64) or else from a
key file, which is generated with mode 0600 the first time a credential is encrypted. Every process
that pushes to targets (the API, the workers, the command line) must decrypt what another
encrypted, so they must share the key: the same variable, or the same file. The file is
``$SCIMWARD_KEY_FILE``, else ``scimward-secret.key`` in the data directory (``default_key_file``):
``$SCIMWARD_DATA_DIR``, else beside the SQLite database of ``$SCIMWARD_DATABASE_URL`` (so every
process using that database finds the same key, from whatever directory it runs), else
``$XDG_DATA_HOME/scimward`` (``~/.local/share/scimward``).

The key is not kept in the database: whoever reads a backup or a replica of the database should
not also hold what decrypts the credentials in it.

Nothing here logs, and no error message contains a credential or the key.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from scimward.errors import ConfigurationError

KEY_ENV = "SCIMWARD_SECRET_KEY"
KEY_FILE_ENV = "SCIMWARD_KEY_FILE"
DATA_DIR_ENV = "SCIMWARD_DATA_DIR"
DEFAULT_KEY_FILE = "scimward-secret.key"


def data_dir(environ: Mapping[str, str]) -> Path:
    """Where the hub keeps files of its own: see the module docstring."""
    if environ.get(DATA_DIR_ENV):
        return Path(environ[DATA_DIR_ENV])
    url = environ.get("SCIMWARD_DATABASE_URL") or "sqlite:///scimward.db"
    scheme, sep, rest = url.partition(":///")
    if sep and scheme.split("+")[0] == "sqlite" and rest and not rest.startswith(":memory:"):
        return Path(rest.split("?")[0]).absolute().parent
    return Path(environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "scimward"


def default_key_file(environ: Mapping[str, str]) -> Path:
    return data_dir(environ) / DEFAULT_KEY_FILE


class SecretKeyError(ConfigurationError):
    """The key is missing, malformed, exposed, or not the one the credential was encrypted with."""


class SecretBox:
    """Encrypts and decrypts target credentials with the hub's key.

    Without arguments the key is found as the module docstring says, reading ``environ``
    (default ``os.environ``) now and the key file on first use, so a process that never touches a
    credential never creates a key file.
    """

    def __init__(
        self, key: str | None = None, key_file: str | Path | None = None, *, environ: Mapping[str, str] | None = None
    ) -> None:
        env = os.environ if environ is None else environ
        origin = "the key given"
        if key is None and key_file is None:
            key, origin = env.get(KEY_ENV) or None, KEY_ENV
            key_file = env.get(KEY_FILE_ENV) or default_key_file(env)
        # Resolved now: the key file stays the same whatever directory the process moves to later.
        self.key_file = Path(key_file).absolute() if key_file is not None else None
        self._origin = origin if key is not None else f"the key file {self.key_file}"
        self._fernet: Fernet | None = None if key is None else _fernet(key.encode(), origin)

    def __repr__(self) -> str:  # names where the key comes from, never the key
        return f"SecretBox({self._origin})"

    def encrypt(self, plaintext: str) -> str:
        return self._key(create=True).encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._key(create=False).decrypt(ciphertext.encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise SecretKeyError(
                f"the target credential cannot be decrypted with this key ({self._origin}): "
                f"was {KEY_ENV} changed, or is this process using another key file "
                f"(${KEY_FILE_ENV}, default {DEFAULT_KEY_FILE} in the data directory: docs/configuration.md)?"
            ) from None

    def _key(self, *, create: bool) -> Fernet:
        if self._fernet is None:
            assert self.key_file is not None
            self._fernet = _fernet(_read_or_create(self.key_file, create=create), self._origin)
        return self._fernet


def generate_key() -> str:
    """A fresh key, suitable for ``SCIMWARD_SECRET_KEY``."""
    return Fernet.generate_key().decode("ascii")


def _fernet(key: bytes, origin: str) -> Fernet:
    try:
        return Fernet(key.strip())
    except (ValueError, TypeError):  # binascii.Error is a ValueError
        raise SecretKeyError(
            f"{origin} does not hold a valid key: it must be 32 bytes in url-safe base64 (44 characters), "
            "as `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'` "
            "prints"
        ) from None


def _read_or_create(path: Path, *, create: bool) -> bytes:
    try:
        try:
            return _read(path)
        except FileNotFoundError:
            if not create:
                raise SecretKeyError(
                    f"no key to decrypt the target credential: {KEY_ENV} is not set and the key file {path} does "
                    f"not exist; use the key the target was added with ({KEY_ENV} or {KEY_FILE_ENV})"
                ) from None
        _create(path)
        return _read(path)
    except OSError as exc:
        raise SecretKeyError(f"cannot use the key file {path}: {exc.strerror or exc}") from exc


def _read(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise SecretKeyError(f"the key file {path} is not a regular file")
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretKeyError(
                f"the key file {path} is accessible to other users (mode {stat.S_IMODE(mode):04o}); "
                f"restrict it with `chmod 600 {path}`"
            )
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def _create(path: Path) -> None:
    """Write a new key to ``path``, unless another process gets there first (then its key stands).

    The key is written to a private temporary file and then linked into place: the link either
    creates ``path`` whole or fails because it exists, so no process ever reads a half-written key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, Fernet.generate_key() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process created the key first: use that one
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
