"""Who is asking: sign-in for the faces.

Two modes (``[auth] mode``):

* ``local``: a users file (``<data_dir>/users.json``, managed with ``archivist users``) holds
  each user's groups and a salted scrypt hash of the password, never the password;
* ``proxy``: a reverse proxy that already signed the user in (company SSO) passes the user
  and the groups in headers; they are believed only when the connection comes from one of
  ``auth.trusted_proxies``.

The result is an :class:`Identity`; its :attr:`Identity.filter` is what every search,
answer, listing and count of that user goes through.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from retrieval import SearchFilter
from retrieval.errors import ArchivistError

_USER = re.compile(r"^[A-Za-z0-9][\w.@+-]{0,63}$")
_GROUP = re.compile(r"^[\w.@+-]{1,64}$")
MIN_PASSWORD = 10
# scrypt at 2^15 x 8: ~0.1 s and 32 MiB per try on this class of CPU
_N, _R, _P = 2**15, 8, 1


class AuthError(ArchivistError):
    """Sign-in refused; the message is safe to show (it never says which part was wrong)."""


@dataclass(frozen=True)
class Identity:
    user: str
    groups: frozenset[str] = field(default_factory=frozenset)
    admin_group: str = "admin"
    via: str = "local"  # local | proxy | cli | token
    #: which password the session signed in with (a digest of its hash): a new password ends the session
    stamp: str = field(default="", compare=False, repr=False)
    #: the operator of the command line: whoever can run it can read the data folder anyway, so
    #: no access filter applies and every operation is allowed
    unrestricted: bool = False

    @classmethod
    def operator(cls, name: str) -> "Identity":
        return cls(name, frozenset(), via="cli", unrestricted=True)

    @property
    def is_admin(self) -> bool:
        return self.unrestricted or self.admin_group in self.groups

    @property
    def filter(self) -> SearchFilter | None:
        if self.unrestricted:
            return None
        return SearchFilter.for_groups(self.groups)  # chunks shared with EVERYONE are always included


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, maxmem=64 * 1024 * 1024, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=64 * 1024 * 1024, dklen=len(digest) // 2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


_DUMMY_HASH = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_hex(8))
    return _DUMMY_HASH


def read_private_json(path: Path, key: str, remedy: str) -> dict:
    """``{key: {...}}`` from an Archivist file (users, tokens), empty when there is none yet;
    an unreadable or foreign file is an error that says ``remedy``."""
    if not path.exists():
        return {key: {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArchivistError(f"the {key} file {path} cannot be read ({exc}); {remedy}") from None
    if not isinstance(data, dict) or not isinstance(data.get(key), dict):
        raise ArchivistError(f"the {key} file {path} is not an Archivist {key} file")
    return data


def write_private_json(path: Path, data: dict) -> None:
    """Replace ``path`` with ``data`` at once (a crash leaves the old file), readable by this account only.
    The temporary file is this writer's own: several servers of one data folder start at once."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_groups(groups) -> list[str]:
    out = sorted({g.strip() for g in groups if g and g.strip()})
    for g in out:
        if not _GROUP.match(g):
            raise ArchivistError(f"{g!r} is not a group name (letters, digits and . _ - @ +, at most 64)")
    return out


class UserStore:
    """The local users file: ``{"users": {name: {"hash", "groups", "created"}}}``, mode 0600."""

    def __init__(self, path: str | os.PathLike, admin_group: str = "admin", *, max_failures: int = 5, lockout_s: float = 60.0):
        self.path = Path(path)
        self.admin_group = admin_group
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    # -- the file ------------------------------------------------------------------
    def _read(self) -> dict:
        return read_private_json(self.path, "users", "restore it or recreate users")

    def _write(self, data: dict) -> None:
        write_private_json(self.path, data)

    # -- management ----------------------------------------------------------------
    def list(self) -> dict[str, list[str]]:
        return {name: list(u.get("groups", [])) for name, u in sorted(self._read()["users"].items())}

    def exists(self, name: str) -> bool:
        return name in self._read()["users"]

    def add(self, name: str, password: str, groups=(), *, replace: bool = False) -> None:
        if not _USER.match(name or ""):
            raise ArchivistError(f"{name!r} is not a user name (start with a letter or digit; letters, digits, . _ - @ +)")
        if len(password) < MIN_PASSWORD:
            raise ArchivistError(f"the password needs at least {MIN_PASSWORD} characters")
        data = self._read()
        if name in data["users"] and not replace:
            raise ArchivistError(f"user {name!r} exists; use 'archivist users set-groups' or 'users passwd'")
        data["users"][name] = {"hash": hash_password(password), "groups": check_groups(groups),
                               "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self._write(data)

    def remove(self, name: str) -> None:
        data = self._read()
        if name not in data["users"]:
            raise ArchivistError(f"no user {name!r} (see 'archivist users list')")
        del data["users"][name]
        self._write(data)

    def set_groups(self, name: str, groups) -> None:
        data = self._read()
        if name not in data["users"]:
            raise ArchivistError(f"no user {name!r} (see 'archivist users list')")
        data["users"][name]["groups"] = check_groups(groups)
        self._write(data)

    def set_password(self, name: str, password: str) -> None:
        data = self._read()
        if name not in data["users"]:
            raise ArchivistError(f"no user {name!r} (see 'archivist users list')")
        if len(password) < MIN_PASSWORD:
            raise ArchivistError(f"the password needs at least {MIN_PASSWORD} characters")
        data["users"][name]["hash"] = hash_password(password)
        self._write(data)

    def identity(self, name: str, via: str = "local") -> Identity:
        """The identity of a known user, without a password (the operator's ``--user``)."""
        users = self._read()["users"]
        if name not in users:
            raise ArchivistError(f"no user {name!r} in {self.path} (see 'archivist users list')")
        return self._identity(name, users[name], via)

    # -- sign-in -------------------------------------------------------------------
    def authenticate(self, name: str, password: str) -> Identity:
        """The user's identity, or :class:`AuthError`. Repeated failures lock the name for a while.

        Each attempt takes its place among the failures before the password is checked (and
        gives it back when right), so attempts sent at once cannot all slip past the lock."""
        name = (name or "").strip()
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(name, []) if now - t < self.lockout_s]
            if len(recent) >= self.max_failures:
                self._failures[name] = recent
                raise AuthError(f"too many failed sign-ins for this name; try again in {int(self.lockout_s)} seconds")
            self._failures[name] = recent + [now]
        user = self._read()["users"].get(name)
        ok = verify_password(password or "", user["hash"] if user else _dummy_hash())  # same work either way
        if not (ok and user):
            raise AuthError("unknown user name or wrong password")
        with self._lock:
            self._failures.pop(name, None)
        return self._identity(name, user, "local")

    def _identity(self, name: str, user: dict, via: str) -> Identity:
        return Identity(name, frozenset(user.get("groups", [])), self.admin_group, via, _stamp(user["hash"]))

    def recheck(self, ident: Identity) -> Identity:
        """The signed-in user as the users file says now: their current groups, or AuthError when
        the user was removed or the password changed since the session signed in."""
        user = self._read()["users"].get(ident.user)
        if user is None:
            raise AuthError("your account no longer exists; ask an administrator")
        if _stamp(user["hash"]) != ident.stamp:
            raise AuthError("your password was changed; sign in again")
        return self._identity(ident.user, user, ident.via)


def _stamp(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def random_password() -> str:
    return secrets.token_urlsafe(12)


def _trusted(address: str | None, networks) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    for net in networks:
        if ip in ipaddress.ip_network(net, strict=False):
            return True
    return False


def identify_from_proxy(headers: Mapping[str, str], peer: str | None, *, user_header: str, groups_header: str,
                        trusted_proxies, admin_group: str = "admin") -> Identity:
    """The identity a trusted proxy vouches for, or :class:`AuthError`.

    ``peer`` is the address of the connection itself (never a forwarded-for header)."""
    if not _trusted(peer, trusted_proxies):
        raise AuthError("sign-in headers are accepted only from the company's sign-in proxy; "
                        f"this connection comes from {peer or 'an unknown address'}")
    lower: dict[str, str] = {}
    for key, value in headers.items():  # a value may be the list of every copy the request carried
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if key.lower() in lower or len(values) > 1:
            if key.lower() in (user_header.lower(), groups_header.lower()):
                raise AuthError(f"the request carries the {key} header more than once; the sign-in proxy must "
                                "replace what a browser sends, not add to it")
        lower[key.lower()] = values[0] if values else ""
    user = (lower.get(user_header.lower()) or "").strip()
    if not user or not _USER.match(user):
        raise AuthError(f"the sign-in proxy did not pass a valid user in the {user_header} header")
    raw = lower.get(groups_header.lower()) or ""
    groups = frozenset(g for g in re.split(r"[,;\s]+", raw) if g and _GROUP.match(g))
    return Identity(user, groups, admin_group, "proxy")
