import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data-samples"
EVAL = Path(os.environ.get("ARCHIVIST_EVAL_DIR", ROOT.parent / "shared" / "eval"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
# The fake embedder's scores are not a real model's: tests on fakes set their own threshold
# (answer.min_confidence) and no ingest fits one; the calibration's tests call it themselves.
os.environ["ARCHIVIST_ANSWER__CALIBRATE_AFTER_INGEST"] = "false"


@pytest.fixture(autouse=True)
def no_outside_network(monkeypatch):
    """Any attempt to reach beyond this machine fails the test that made it."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")):
            raise AssertionError(f"network access attempted: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def fake_embedder():
    from retrieval import FakeEmbedder

    return FakeEmbedder(dim=64)


@pytest.fixture
def make_index(tmp_path, fake_embedder):
    from retrieval import Index

    def _make(name="index", embedder=None):
        return Index(tmp_path / name, embedder or fake_embedder)

    return _make


@pytest.fixture(scope="session")
def minilm():
    from retrieval import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder()
    emb._load()
    return emb


def sign_in(at, user, password):
    """Sign an AppTest session in through the sign-in form, as a person would."""
    at.text_input(key="signin_user").set_value(user)
    at.text_input(key="signin_password").set_value(password)
    at.button[[b.label for b in at.button].index("Sign in")].click().run()
    assert not at.exception, at.exception
    return at


def require_eval(*parts):
    path = EVAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared eval data not found at {path}")
    return path
