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
# Every fresh data folder would time both embedding runtimes once (a few seconds each): the tests use fp32
# torch, and the self-test has tests of its own (test_real_models.py, test_settings.py).
os.environ["ARCHIVIST_EMBEDDER__RUNTIME"] = "torch"

# hypothesis (under schemathesis) keeps its caches in a temporary folder, not .hypothesis/ in the checkout,
# and the folder goes when the run ends
import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402

_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="archivist-hypothesis-")
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)
set_hypothesis_home_dir(_HYPOTHESIS_HOME)


def without_echoed_names(text: str, asked: list[str]) -> str:
    """``text`` without the names a refusal quotes back from the questions in ``asked`` ("None of them
    mentions “Nightingale”": the asker's own word, not the documents'), as printed or as JSON."""
    import re

    return re.sub(r"(?:“|\\u201c)([^”\\]+)(?:”|\\u201d)",
                  lambda m: "" if any(m.group(1) in q for q in asked) else m.group(0), text)


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_listening(port: int, proc, what: str, deadline: float) -> None:
    """Return once something accepts on the loopback ``port``; fail with ``proc``'s stderr if it
    exits first, or when ``deadline`` (time.monotonic) passes."""
    import time

    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, f"{what} did not come up"
        time.sleep(0.3)


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
    emb.load()
    return emb


def sign_in(at, user, password):
    """Sign an AppTest session in through the sign-in form, as a person would."""
    at.text_input(key="signin_user").set_value(user)
    at.text_input(key="signin_password").set_value(password)
    at.button[[b.label for b in at.button].index("Sign in")].click().run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def fake_cli(tmp_path, monkeypatch, capsys):
    """``run(*argv) -> (exit code, stdout, stderr)`` of the command line, in ``tmp_path``, on fakes,
    with no settings file and no data dir set (it follows ``--index``)."""
    from ui.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARCHIVIST_EMBEDDER__MODEL", "fake")
    monkeypatch.setenv("ARCHIVIST_GENERATOR__BACKEND", "fake")
    monkeypatch.delenv("ARCHIVIST_CONFIG", raising=False)
    monkeypatch.delenv("ARCHIVIST_DATA_DIR", raising=False)

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def web_app_env(monkeypatch, tmp_path) -> None:
    """The settings a web-app test runs under: fakes, a threshold on their scale, its own data dir
    and index under ``tmp_path``, and the current folder there."""
    monkeypatch.chdir(tmp_path)
    for key, value in {"EMBEDDER__MODEL": "fake", "GENERATOR__BACKEND": "fake", "ANSWER__MIN_CONFIDENCE": "0.45",
                       "ANSWER__MATCH_WEIGHT": "0", "DATA_DIR": str(tmp_path / "data"),
                       "INDEX": str(tmp_path / "index")}.items():
        monkeypatch.setenv("ARCHIVIST_" + key, value)
    monkeypatch.delenv("ARCHIVIST_CONFIG", raising=False)


def require_eval(*parts):
    path = EVAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared eval data not found at {path}")
    return path


# --- nothing a test does may write into the checkout (issue 18) -----------------------------
#: folders the tooling itself owns: the environment, git, Python's byte-code, build metadata
_TOOLING = {".venv", ".git", "__pycache__", ".pytest_cache", ".bench-cache", "build", ".whl", ".gl"}


def checkout_files(root: Path = ROOT) -> dict[str, tuple[int, int]]:
    """Every file of the checkout outside the tooling's folders, with its size and time."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _TOOLING and not d.endswith(".egg-info")]
        for name in filenames:
            path = Path(dirpath, name)
            try:
                st = path.lstat()
            except OSError:
                continue
            out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def checkout_changes(before: dict, after: dict) -> list[str]:
    return sorted(f"{'new' if k not in before else 'gone' if k not in after else 'changed'}: {k}"
                  for k in set(before) | set(after) if before.get(k) != after.get(k))


def pytest_sessionstart(session):
    session.config._checkout_before = checkout_files()


def leftover_processes(folder: Path) -> list[str]:
    """Processes (other than this one) working in ``folder`` or naming it on their command
    line: servers and workers a test started and did not stop."""
    out = []
    proc = Path("/proc")
    if not proc.is_dir():
        return out
    inside = str(folder)
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to look at
            continue
        if cwd.startswith(inside) or inside in cmdline:
            out.append(f"{entry.name}: {cmdline[:160]}")
    return out


def pytest_sessionfinish(session, exitstatus):
    import sys

    before = getattr(session.config, "_checkout_before", None)
    if before is None:
        return
    changes = checkout_changes(before, checkout_files())
    if changes:
        print("\nFAILED: the tests wrote into the checkout (use tmp_path):\n  " + "\n  ".join(changes[:30]),
              file=sys.stderr)
        session.exitstatus = 1
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None and getattr(factory, "_basetemp", None) is not None:
        left = leftover_processes(factory.getbasetemp())
        if left:
            print("\nFAILED: the tests left processes running:\n  " + "\n  ".join(left[:20]), file=sys.stderr)
            session.exitstatus = 1
