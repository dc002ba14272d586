"""API tokens: how a program signs in to the HTTP API as a user.

A token is shown once, when it is made (``archivist tokens create USER``); the tokens file
(``<data_dir>/tokens.json``, mode 0600) keeps only its SHA-256 digest, its owner, when it was
made and when it expires. A token acts as its owner *as the users file says now*: a removed
user's tokens stop working, and changed groups count at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from retrieval.errors import ArchivistError
from ui.auth import AuthError, read_private_json, write_private_json

PREFIX = "arch_"


@dataclass(frozen=True)
class TokenInfo:
    id: str  # the first characters of the token: enough to name it, useless to sign in
    user: str
    created: float
    expires: float | None  # None: until revoked
    note: str = ""

    @property
    def expired(self) -> bool:
        return self.expires is not None and time.time() >= self.expires

    def to_json(self) -> dict:
        return {"id": self.id, "user": self.user, "created": self.created, "expires": self.expires,
                "note": self.note, "expired": self.expired}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def _read(self) -> dict:
        return read_private_json(self.path, "tokens", "restore it, or remove it and create the tokens again")

    def create(self, user: str, *, days: float | None = None, note: str = "") -> tuple[str, TokenInfo]:
        """A new token for ``user`` (the caller checks that the user exists): (the token, its record)."""
        if days is not None and days <= 0:
            raise ArchivistError(f"--expires {days:g}: give the number of days the token lives, more than 0")
        token = PREFIX + secrets.token_urlsafe(32)
        info = TokenInfo(token[: len(PREFIX) + 6], user, time.time(),
                         None if days is None else time.time() + days * 86400, note.strip()[:200])
        with self._lock:
            data = self._read()
            data["tokens"][_digest(token)] = info.__dict__
            write_private_json(self.path, data)
        return token, info

    def list(self, user: str | None = None) -> list[TokenInfo]:
        items = [TokenInfo(**t) for t in self._read()["tokens"].values()]
        return sorted((t for t in items if user is None or t.user == user), key=lambda t: t.created)

    def revoke(self, token_id: str) -> TokenInfo:
        """Revoke the token named by its id (as ``list`` shows it), or by the token itself."""
        with self._lock:
            data = self._read()
            for digest, t in list(data["tokens"].items()):
                if t["id"] == token_id or hmac.compare_digest(digest, _digest(token_id)):
                    del data["tokens"][digest]
                    write_private_json(self.path, data)
                    return TokenInfo(**t)
        raise ArchivistError(f"no token {token_id!r}; 'archivist tokens list' shows their ids")

    def revoke_user(self, user: str) -> int:
        with self._lock:
            data = self._read()
            doomed = [d for d, t in data["tokens"].items() if t["user"] == user]
            for d in doomed:
                del data["tokens"][d]
            if doomed:
                write_private_json(self.path, data)
        return len(doomed)

    def owner(self, token: str) -> TokenInfo:
        """The record of a valid token, or :class:`AuthError` (unknown, revoked or expired alike)."""
        if not token.startswith(PREFIX):
            raise AuthError("that is not an Archivist API token; make one with 'archivist tokens create USER'")
        record = self._read()["tokens"].get(_digest(token))
        if record is None:
            raise AuthError("unknown or revoked API token")
        info = TokenInfo(**record)
        if info.expired:
            raise AuthError("this API token has expired; ask an administrator for a new one")
        return info
