"""Where a command on this machine finds the running server, so that ``archivist ask`` and
``search`` are answered by the models it holds loaded instead of loading their own.

``archivist serve`` and ``archivist api`` write ``<data_dir>/server.json`` (readable by this
account only) while they run: the API's local address, the index it serves, the process that
wrote it, and a secret the API accepts as the operator, who the command line acts as anyway
(whoever can read the data folder can read the index). The card is removed when the server
stops; a card left by a killed one is ignored (its process is gone), and a server that does not
answer is passed over for answering here.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from ui.auth import read_private_json, write_private_json
from ui.settings import Settings

CARD = "server.json"
SECRET_ENV = "ARCHIVIST_OPERATOR_SECRET"  # how the API server learns the secret from its parent


@dataclass(frozen=True)
class ServerCard:
    url: str  # the API's /v1 base on this machine
    index: str  # the index folder it serves
    pid: int  # the process that wrote the card (the one that stops the servers)
    secret: str


def card_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / CARD


def local_url(host: str, port: int) -> str:
    """The address a client on this machine reaches a server bound to ``host`` at."""
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host
    return f"http://{'[' + host + ']' if ':' in host and not host.startswith('[') else host}:{port}/v1"


def announce(settings: Settings, host: str, port: int) -> ServerCard:
    """Write the card of a server starting now (a new secret each time)."""
    card = ServerCard(local_url(host, port), str(settings.index_dir.resolve()), os.getpid(),
                      secrets.token_urlsafe(32))
    write_private_json(card_path(settings), {"server": asdict(card)})
    return card


def withdraw(settings: Settings, card: ServerCard) -> None:
    """Remove the card, if it is still this server's."""
    found = _read(settings)
    if found is not None and found.pid == card.pid and found.secret == card.secret:
        card_path(settings).unlink(missing_ok=True)


def _read(settings: Settings) -> ServerCard | None:
    try:
        data = read_private_json(card_path(settings), "server", "remove it; the server writes it again at start")
        return ServerCard(**data["server"]) if data["server"] else None
    except Exception:  # unreadable or from another version: as if there were none
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another account's process: not a server of ours
        return False
    return True


def running_server(settings: Settings) -> ServerCard | None:
    """The card of a server that serves this index and whose process is alive, else None."""
    card = _read(settings)
    if card is None or card.index != str(settings.index_dir.resolve()) or not _alive(card.pid):
        return None
    return card
