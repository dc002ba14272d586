"""Ingestion's heavy work on a Ray cluster: files parsed as Ray tasks, chunks embedded by Ray
actors, the results streamed back, in order, to the one index writer of this process.

The job itself does not change (:class:`ingest.pipeline.Ingestor`): :class:`RayParser` stands in
for the local :class:`ingest.worker.Parser` and :class:`RayEmbedder` for the index's embedder. A
file travels to its task as bytes, so the workers need no shared file system; they need the
same Archivist and model packages installed (the bundled embedder's weights come with them).

Failures: a task or actor whose worker process dies is retried (``retries``); a file that still
fails, or that parses past ``timeout``, is reported by name as today and the job goes on. A file
the parser refuses (corrupt, encrypted, too large) is an answer, not a failure, and is not retried.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest.blocks import ParsedDocument, ParseError, ParseTimeout
from ingest.worker import error_class
from retrieval.errors import ConfigError


@dataclass(frozen=True)
class RayOptions:
    """Where the cluster is and how much of it a job uses."""

    address: str = "auto"  # "auto" (the cluster this machine belongs to), "HOST:PORT", or "ray://HOST:10001"
    workers: int = 0  # embedding actors; 0: one per two CPUs of the cluster (at least one)
    retries: int = 2  # tries again after a worker process dies
    cpus_per_task: float = 0.5  # what a parse task or an embedding actor asks of the scheduler

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        if not self.address.strip():
            raise ConfigError("ingest.ray_address is empty; use 'auto' or the head's HOST:PORT")
        if self.workers < 0:
            raise ConfigError(f"ingest.ray_workers = {self.workers}; use 0 (from the cluster's CPUs) or more")
        if self.retries < 0:
            raise ConfigError(f"ray retries = {self.retries}; use 0 or more")
        if not 0 < self.cpus_per_task <= 64:
            raise ConfigError(f"ray cpus_per_task = {self.cpus_per_task}; use a share of a CPU such as 0.5, or a few")


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("Ray is not installed: pip install 'ray==2.60.0' (or ingest without --ray)") from None
    return ray


def _host(address: str) -> str:
    """The host of HOST:PORT or ray://HOST:PORT; ConfigError naming the forms when it is neither."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"ray address {address!r}: give the head's HOST:PORT (e.g. 10.0.0.5:6379), "
                          "ray://HOST:10001, or 'auto'")
    return host


def _unreachable(address: str, why: str) -> ConfigError:
    return ConfigError(f"cannot reach the Ray cluster at {address!r} ({why}); start one with 'ray start --head' "
                       "or fix ingest.ray_address / --ray ADDRESS")


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not after Ray's own retries (many minutes), when HOST:PORT does not answer."""
    import socket

    host, port = _host(address), int(address.rpartition(":")[2])
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise _unreachable(address, exc.strerror or str(exc)) from None


class RayCluster:
    """This process's connection to a cluster, for one job: opened at once, closed by ``close``."""

    def __init__(self, options: RayOptions):
        import os

        self.options = options
        address = options.address.strip()
        loopback = {}
        if address != "auto":  # Ray finds this machine's cluster itself, and says at once when there is none
            _check_reachable(address)
            if _host(address) in ("127.0.0.1", "localhost"):
                loopback = {"_node_ip_address": "127.0.0.1"}
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")  # not a line per retry of Ray's C++ clients
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the building
        self.ray = _import_ray()
        try:
            self.ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING,
                          include_dashboard=False, ignore_reinit_error=True, **loopback)
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else "no answer"
            raise _unreachable(address, f"{type(exc).__name__}: {first}") from None
        self._open = True

    @property
    def cpus(self) -> float:
        return float(self.ray.cluster_resources().get("CPU", 1.0))

    @property
    def workers(self) -> int:
        return self.options.workers or max(1, int(self.cpus // 2))

    def close(self) -> None:
        if self._open:
            self._open = False
            self.ray.shutdown()

    def __enter__(self) -> "RayCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- what runs on the workers -------------------------------------------------------------------

def parse_bytes(name: str, data: bytes, ocr: bool, limits) -> tuple:
    """Parse a file sent as bytes under its own name: ("ok", parsed) or ("parse_error", kind, reason)."""
    import tempfile

    from ingest._offline import set_offline_env
    from ingest.partition import parse_file

    set_offline_env()
    with tempfile.TemporaryDirectory(prefix="archivist-ray-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            return "ok", parse_file(path, ocr=ocr, limits=limits)
        except ParseError as exc:
            return "parse_error", type(exc).__name__, exc.reason
        except MemoryError:
            return "parse_error", "TooLarge", "ran out of memory reading it on the Ray worker: not read"
        except Exception as exc:  # a parser's bug is this file's failure, reported like the local path does
            return "parse_error", "ParseError", f"parser failed: {type(exc).__name__}: {exc}"[:300]


class EmbedWorker:
    """An embedding actor: the embedder built once from its recipe, then batches of texts."""

    def __init__(self, recipe: tuple):
        from ingest._offline import set_offline_env

        set_offline_env()
        kind, kwargs = recipe
        from retrieval.embedder import FakeEmbedder, SentenceTransformerEmbedder

        self.embedder = (FakeEmbedder if kind == "fake" else SentenceTransformerEmbedder)(**kwargs)

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.embedder.embed(texts), dtype=np.float32)


def embedder_recipe(embedder) -> tuple:
    """How a worker builds the same embedder: the bundled model by its name (each worker finds its
    own copy), any other model by its folder (which the workers must see at the same path)."""
    from retrieval.embedder import DEFAULT_EMBEDDER, FakeEmbedder, SentenceTransformerEmbedder

    if isinstance(embedder, FakeEmbedder):
        return "fake", {"dim": embedder.dim, "max_tokens": embedder.max_tokens,
                        "name": embedder.name.rsplit("-", 1)[0]}
    if isinstance(embedder, SentenceTransformerEmbedder):
        model = DEFAULT_EMBEDDER if embedder.name.startswith(f"sentence-transformers/{DEFAULT_EMBEDDER}") \
            else str(embedder.path)
        return "sentence-transformers", {"model": model, "batch_size": embedder.batch_size, "threads": 1,
                                         "runtime": embedder.runtime}
    raise ConfigError(f"the embedder {getattr(embedder, 'name', embedder)!r} cannot run on Ray workers; "
                      "ingest without --ray")


# -- what this process uses ---------------------------------------------------------------------

class RayParser:
    """``parse(path)`` answered by a Ray task. ``prepare_for(paths)`` (the job calls it first, in
    the order it will ask) keeps up to ``window`` files in flight, so the cluster parses ahead
    while this process chunks and writes; the answers still come back in the job's order. ``work``
    is what a task runs (:func:`parse_bytes`; its signature and answers)."""

    def __init__(self, cluster: RayCluster, *, timeout: float = 300.0, ocr: bool = True, limits=None,
                 window: int = 0, work=parse_bytes):
        from ingest.limits import ParseLimits

        self.cluster = cluster
        self.ray = cluster.ray
        self.timeout = timeout
        self.ocr = ocr
        self.limits = limits or ParseLimits()
        self.window = window or max(2, 2 * int(cluster.cpus))
        opts = cluster.options
        self._task = self.ray.remote(work).options(max_retries=opts.retries, retry_exceptions=False,
                                                   num_cpus=opts.cpus_per_task)
        self._waiting: deque[str] = deque()
        self._inflight: dict[str, object] = {}  # path -> its task, in the order submitted
        self._lock = threading.Lock()

    def prepare_for(self, paths) -> None:
        with self._lock:
            self._waiting.extend(str(Path(p)) for p in paths)
            self._fill()

    def _fill(self) -> None:
        while self._waiting and len(self._inflight) < self.window:
            key = self._waiting.popleft()
            if key not in self._inflight:
                self._inflight[key] = self._submit(key)

    def _submit(self, key: str):
        try:
            data = Path(key).read_bytes()
        except OSError as exc:
            return ParseError(f"cannot read the file ({exc.strerror or exc})")
        return self._task.remote(Path(key).name, data, self.ocr, self.limits)

    def parse(self, path) -> ParsedDocument:
        key = str(Path(path))
        with self._lock:
            ref = self._inflight.pop(key, None)
            if ref is None:
                ref = self._submit(key)
            self._fill()
        if isinstance(ref, ParseError):
            raise ref
        answer = self._get(ref)
        if answer[0] == "ok":
            return answer[1]
        _status, kind, reason = answer
        raise error_class(kind)(reason)

    def _get(self, ref):
        ray = self.ray
        try:
            return ray.get(ref, timeout=self.timeout)
        except ray.exceptions.GetTimeoutError:
            ray.cancel(ref, force=True)
            raise ParseTimeout(f"parsing took longer than {self.timeout:g} s on the Ray worker and was stopped") from None
        except ray.exceptions.RayError as exc:
            tries = self.cluster.options.retries + 1
            raise ParseError(f"the Ray worker failed on this file ({tries} tries: {type(exc).__name__})") from None

    def close(self) -> None:
        """Cancel what is still in flight and leave the cluster."""
        with self._lock:
            for ref in self._inflight.values():
                if not isinstance(ref, ParseError):
                    try:
                        self.ray.cancel(ref, force=True)
                    except Exception:
                        pass
            self._inflight.clear()
            self._waiting.clear()
        self.cluster.close()

    def __enter__(self) -> "RayParser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RayEmbedder:
    """The index's embedder, with ``embed`` run by ``cluster.workers`` Ray actors (each batch split
    among them, the parts joined in order); everything else (name, dimension, token counts, queries)
    is the local embedder's. An actor whose process dies is restarted and its part sent again."""

    def __init__(self, local, cluster: RayCluster):
        self.local = local
        self.cluster = cluster
        self._recipe = embedder_recipe(local)
        self._actors: list = []
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self.local, name)

    loaded = True  # the job never waits for a model here: the actors load theirs

    def load(self) -> None:
        with self._lock:
            if self._actors:
                return
            ray, opts = self.cluster.ray, self.cluster.options
            actor = ray.remote(EmbedWorker).options(max_restarts=opts.retries, max_task_retries=opts.retries,
                                                    num_cpus=opts.cpus_per_task)
            self._actors = [actor.remote(self._recipe) for _ in range(self.cluster.workers)]

    def embed(self, texts, *, progress: bool = False) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.local.dim), dtype=np.float32)
        self.load()
        parts = [p for p in np.array_split(np.arange(len(texts)), len(self._actors)) if len(p)]
        refs = [actor.embed.remote([texts[i] for i in part]) for actor, part in zip(self._actors, parts)]
        ray = self.cluster.ray
        try:
            return np.concatenate(ray.get(refs), axis=0)
        except ray.exceptions.RayError as exc:
            raise RuntimeError(f"embedding on the Ray cluster failed after {self.cluster.options.retries + 1} "
                               f"tries ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None


class LocalHead:
    """A Ray head on this machine, for a trial, a benchmark or a test: ``ray start --head --block``
    on loopback in its own session, stopped with every process it started by ``close``."""

    def __init__(self, cpus: int = 2, *, object_store_mb: int = 200, timeout: float = 120.0):
        import os
        import socket
        import subprocess
        import sys
        import tempfile
        import time

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must stay short
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_BACKEND_LOG_LEVEL="error",
                   PYTHONPATH=root + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", f"--port={self.port}",
             "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}", "--include-dashboard=false",
             "--disable-usage-stats", f"--temp-dir={self.temp}", f"--object-store-memory={object_store_mb * 10**6}"],
            env=env, cwd=self.temp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self._proc.poll() is not None or time.monotonic() > deadline:
                why = self._proc.stderr.read().decode()[-2000:] if self._proc.poll() is not None else "no answer"
                self.close()
                raise RuntimeError(f"the local Ray head did not start: {why}")
            time.sleep(0.5)

    def close(self) -> None:
        import os
        import shutil
        import signal
        import subprocess

        if self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)  # 'ray start --block' stops what it started
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        _kill_processes_naming(self.temp)  # any that left the session
        shutil.rmtree(self.temp, ignore_errors=True)

    def __enter__(self) -> "LocalHead":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _kill_processes_naming(text: str) -> None:
    import os
    import signal

    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
