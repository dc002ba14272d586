"""The composition root: typed settings in, wired components out. The application layer
(ui.services.archivist) builds its components with these; faces do not call them."""

from __future__ import annotations

from pathlib import Path

from retrieval import ArchivistError, Index, SearchOptions, make_embedder
from retrieval.segments import SegmentOptions
from ui.settings import Settings


def open_index(settings: Settings, *, create: bool = True) -> Index:
    from ingest._offline import set_offline_env

    set_offline_env()
    path = settings.index_dir
    if not create and not (path / "archivist.sqlite").exists():
        from retrieval.errors import EmptyIndexError

        raise EmptyIndexError(f"there is no index in {path} yet; run 'archivist ingest PATH' first (or pass --index DIR)")
    embedder = make_embedder(settings.embedder.model, batch_size=settings.embedder.batch_size,
                             runtime=embedding_runtime(settings), cache_dir=runtime_cache_dir(settings))
    s = settings.search
    reranker = None
    if s.rerank == "auto":
        active = model_versions(settings).active
        if active is not None and active.reranker is not None:
            from retrieval.reranker import CrossEncoderReranker

            reranker = CrossEncoderReranker(active.reranker)
    return Index(path, embedder, options_of(s, SearchOptions), reranker=reranker,
                 layout=options_of(settings.storage, SegmentOptions))


def embedding_runtime(settings: Settings) -> str:
    """The runtime the embedder computes on: the setting, else (auto) the fastest the machine's
    self-test recorded, of the family of vectors that built the index (the self-test runs when a
    data folder builds its first index; an existing index never waits for one)."""
    chosen = settings.embedder.runtime
    model = settings.embedder.model
    if chosen != "auto":
        return chosen
    if model not in ("all-MiniLM-L6-v2", "minilm", "default"):
        return "torch"  # the self-test and the int8 file are MiniLM's; any other model is fp32 on torch
    import logging

    from retrieval import runtime_choice
    from retrieval.embedder import packaged_minilm_path

    built_with = recorded_embedder(settings.index_dir)
    return runtime_choice.chosen_runtime(
        embedding_runtime_record(settings), packaged_minilm_path(),
        family=runtime_choice.family_of(built_with) if built_with else None, may_measure=not built_with,
        cache_dir=runtime_cache_dir(settings), log=logging.getLogger("archivist.embedding").info)


def runtime_cache_dir(settings: Settings) -> Path:
    """Where what a runtime builds once from shipped weights is kept (the fp32 embedding graph, the
    widened generator)."""
    return Path(settings.data_dir) / "models" / "runtime"


def embedding_runtime_record(settings: Settings) -> Path:
    return Path(settings.data_dir) / "models" / "embedding-runtime.json"


def recorded_embedder(index_dir: Path) -> str | None:
    """The embedder name an existing index records, read without opening the index."""
    import sqlite3

    from retrieval import store
    from retrieval.index import DB_NAME

    db = Path(index_dir) / DB_NAME
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            return store.get_meta(con, "embedder")
    except sqlite3.Error:
        return None


def offline_env() -> dict:
    """The environment variables that keep every library offline, for a child process."""
    import os

    from ingest._offline import set_offline_env

    set_offline_env()
    return {k: v for k, v in os.environ.items() if k.startswith(("HF_", "TRANSFORMERS_", "DO_NOT", "SCARF", "UNSTRUCTURED"))}


def model_versions(settings: Settings):
    from qa.model_versions import ModelVersions

    return ModelVersions(Path(settings.data_dir) / "models")


def make_ingestor(settings: Settings, index: Index, *, ray_address: str | None = None):
    """The ingestion job's components; with ``ray_address`` (else ``ingest.ray_address``; "" for
    none) parsing and embedding run on that Ray cluster."""
    from ingest import Chunker, ChunkingOptions, Ingestor, Parser

    emb = index.embedder
    opts = ChunkingOptions(
        max_tokens=emb.max_tokens,
        target_tokens=min(settings.ingest.chunk_tokens, emb.max_tokens),
        min_tokens=settings.ingest.min_chunk_tokens,
    )
    from ingest.jobs import JobLog
    from ingest.limits import ParseLimits

    i = settings.ingest
    limits = options_of(i, ParseLimits)
    address = i.ray_address if ray_address is None else ray_address
    embedder = None
    if address:
        from ingest.ray_cluster import RayCluster, RayEmbedder, RayOptions, RayParser

        cluster = RayCluster(RayOptions(address, workers=i.ray_workers, retries=i.ray_retries))
        try:
            embedder = RayEmbedder(emb, cluster)
            parser = RayParser(cluster, timeout=i.parse_timeout, ocr=i.ocr, limits=limits)  # leaves it on close
        except BaseException:
            cluster.close()
            raise
    else:
        parser = Parser(timeout=i.parse_timeout, ocr=i.ocr, isolate=i.isolate_parser, limits=limits)
    return Ingestor(index, Chunker(emb.count_tokens, opts), parser, jobs=JobLog(index.path),
                    commit_every=settings.ingest.commit_every, groups_for=make_policy(settings).groups_for,
                    follow_symlinks=settings.ingest.follow_symlinks, embedder=embedder)


def make_policy(settings: Settings):
    """Who may read what: the [access] rules of the settings, sidecars, and the default."""
    from ingest.access import AccessPolicy, AccessRule

    a = settings.access
    return AccessPolicy([AccessRule(r.path, tuple(r.groups)) for r in a.rules], default=a.default, sidecars=a.sidecars)


def user_store(settings: Settings):
    from ui.auth import UserStore

    return UserStore(settings.users_path, settings.auth.admin_group)


def open_audit(settings: Settings):
    from qa.audit import AuditLog, NullAudit

    if not settings.audit.enabled:
        return NullAudit()
    return AuditLog(settings.audit_path, settings.audit.retention_days)


def operator_name() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name (a container): still say it was the command line
        return "cli"


def source_specs(settings: Settings):
    from ingest.sources import SourceSpec

    return [SourceSpec(path=Path(s.path).expanduser(), name=s.name, include=list(s.include), exclude=list(s.exclude))
            for s in settings.sources]


def make_generator(settings: Settings):
    """The generator the settings name; with the default model, the promoted fine-tuned version
    where there is one. ``auto`` runs GGUF models on llama.cpp when it is installed."""
    from qa import FakeGenerator, LlamaCppGenerator, OpenAIGenerator, TransformersGenerator

    g = settings.generator
    if g.backend == "fake":
        return FakeGenerator()
    if g.backend == "openai":
        return OpenAIGenerator(g.base_url, g.model, api_key=g.api_key, timeout=g.timeout)
    model = served_model(settings)
    if g.backend == "llama-cpp" or (g.backend == "auto" and _runs_on_llama(model)):
        return LlamaCppGenerator(model, threads=g.threads or None, weights=g.weights,
                                 cache_dir=runtime_cache_dir(settings))
    return TransformersGenerator(model, cache_dir=settings.data_dir / "models")


def served_model(settings: Settings) -> str:
    """generator.model, or the promoted version's generator folder (exported to GGUF when the
    llama.cpp backend will run it and it was not yet)."""
    from qa import DEFAULT_GENERATOR

    g = settings.generator
    if not (g.use_finetuned and g.model in (DEFAULT_GENERATOR, "default", "smollm2")):
        return g.model
    active = model_versions(settings).active
    if active is None or active.generator is None:
        return g.model
    if g.backend in ("auto", "llama-cpp"):
        export_generator(active)
    return str(active.generator)


def _runs_on_llama(model: str) -> bool:
    from qa.generators import gguf_of, llama_cpp_available

    if not llama_cpp_available():
        return False
    try:
        gguf_of(model)
        return True
    except ArchivistError:  # a transformers folder: the transformers backend runs it
        return False


def export_generator(version):
    """The version's generator as GGUF for llama.cpp, exported once (qa.gguf_export); None where it
    cannot be (a base that is not a llama-architecture GGUF): it then runs on transformers."""
    import logging

    from qa.generators import llama_cpp_available, packaged_smollm2_dir, SMOLLM2_GGUF
    from qa.gguf_export import ExportError, export_gguf

    if version.generator is None or not llama_cpp_available():
        return None
    if version.generator_gguf is not None:
        return version.generator_gguf
    base = version.record.get("base_gguf") or str(packaged_smollm2_dir() / SMOLLM2_GGUF)
    try:
        report = export_gguf(version.generator, base)
    except (ExportError, OSError, ValueError) as exc:  # ValueError: weights that do not fit the base
        logging.getLogger(__name__).warning("%s stays on the transformers backend: %s", version.id, exc)
        return None
    logging.getLogger(__name__).info("exported %s's generator to %s (%d of %d tensors fine-tuned)",
                                     version.id, report.path, report.changed, report.tensors)
    return report.path


def finetune(settings: Settings, *, budget_minutes: float | None = None, max_steps: int | None = None,
             generator: bool | None = None, reranker: bool | None = None, embedder: bool | None = None, questions=(),
             use_feedback: bool = True, on_stage=None):
    """Build data from the index, fine-tune, evaluate before/after; returns the new (unpromoted) version."""
    from dataclasses import replace

    from qa import TransformersGenerator
    from qa.feedback import FeedbackStore
    from qa.finetune_job import FinetuneOptions, run_finetune
    from retrieval import SearchFilter

    f = settings.finetune
    index = open_index(settings, create=False).with_reranker(None)  # train and compare against plain retrieval
    local = settings.generator.backend in ("auto", "llama-cpp", "transformers")  # trained on the transformers copy
    base = TransformersGenerator(settings.generator.model, cache_dir=settings.data_dir / "models") \
        if local else make_generator(settings)
    flags = {"budget_minutes": budget_minutes, "max_steps": max_steps, "generator": generator, "reranker": reranker,
             "embedder": embedder}
    options = replace(options_of(f, FinetuneOptions), **{k: v for k, v in flags.items() if v is not None})
    teacher = None
    if f.teacher_base_url:
        from qa import OpenAIGenerator

        teacher = OpenAIGenerator(f.teacher_base_url, f.teacher_model, timeout=settings.generator.timeout)
    elif f.teacher_model:
        teacher = TransformersGenerator(f.teacher_model)
    writes = options.writing_minutes and not teacher and settings.generator.backend != "fake"
    writer = make_generator(settings) if writes else None  # the served model writes the embedder's queries
    feedback = FeedbackStore(settings.data_dir / "feedback.sqlite").list(100000) if use_feedback and \
        (settings.data_dir / "feedback.sqlite").exists() else []
    readers = SearchFilter.for_groups([]) if f.train_on == "everyone" else None
    version = run_finetune(index, base, model_versions(settings), answer_options=answer_options(settings),
                           options=options, readers=readers, admin_questions=questions, feedback=feedback,
                           teacher=teacher, writer=writer, on_stage=on_stage)
    if settings.generator.backend in ("auto", "llama-cpp"):
        export_generator(version)  # ready to serve on llama.cpp once promoted
    return version


def use_embedder_of(settings: Settings, version, *, on_progress=None) -> int | None:
    """Re-embed the index in the space of ``version``'s embedder (None, or a version without one: the
    shipped embedder) unless it is there already: one commit, while readers keep searching the old
    vectors; then the abstention threshold is fitted again for the new space. The new generation, or
    None when nothing had to change."""
    from qa.retriever_tuning import known_vectors
    from retrieval.spaces import tuned_embedder

    index = open_index(settings, create=False)
    current = index.space()
    if current is None:
        return None  # nothing indexed yet: the first ingest embeds in the settings' space
    folder = version.embedder if version is not None else None
    if folder is not None:
        if current.name == version.space:
            return None
        embedder, known = tuned_embedder(folder, version.space), known_vectors(folder)
    else:
        if current.name == index.base_embedder.name:
            return None
        embedder, known = index.base_embedder, {}
    with index.writer() as writer:
        gen = writer.reembed(embedder, known=known, on_progress=on_progress)
    calibrate(settings, index, force=False)
    return gen


def launch_finetune(settings: Settings, budget_minutes: float) -> int:
    """``archivist finetune`` in a process (and session) of its own, logging to <data_dir>/finetune.log;
    its id, also kept in <data_dir>/finetune.pid."""
    import os
    import subprocess
    import sys

    data = Path(settings.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, ARCHIVIST_INDEX=str(settings.index_dir.resolve()), ARCHIVIST_DATA_DIR=str(data.resolve()))
    with open(data / "finetune.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "finetune", "--budget-minutes", str(budget_minutes)],
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=os.getcwd())
    (data / "finetune.pid").write_text(str(proc.pid))
    return proc.pid


def answer_options(settings: Settings):
    """The [answer] section is the answerer's own options (qa.AnswerOptions) plus the calibration's."""
    from qa import AnswerOptions

    return options_of(settings.answer, AnswerOptions)


def options_of(section, options_type):
    """A settings section as the component's own options type: the section is that type plus
    the settings only the faces use, so the fields are taken over as they are (no copy by hand)."""
    import dataclasses

    return options_type(**{f.name: getattr(section, f.name) for f in dataclasses.fields(options_type)})


def make_answerer(settings: Settings, index: Index, generator=None):
    from qa import Answerer

    return Answerer(index, generator if generator is not None else make_generator(settings), answer_options(settings))


def calibrate(settings: Settings, index: Index, *, on_progress=None, force: bool = True):
    """Fit the index's abstention threshold on questions drawn from its own chunks (qa.calibration)
    and store it in the index. Without ``force``, only when none was fitted yet, or the index has
    grown or shrunk by 5 % of its chunks since (a fit takes a second or so per 4 questions: a
    one-file change to a large index keeps the fit it has). Returns the new calibration, or None."""
    from qa.calibration import calibrate as fit, stored
    from qa import FakeGenerator

    if not force:
        current = stored(index)
        if current is not None and current.embedder == (index.built_with or index.embedder.name) and \
                abs(len(index) - current.chunks) < max(1.0, 0.05 * current.chunks):
            return None
    if index.generation == 0:
        return None
    a = settings.answer
    answerer = make_answerer(settings, index, generator=FakeGenerator())  # only retrieval is scored: no model
    return fit(answerer, questions=a.calibration_questions, max_false_abstain=a.max_false_abstain,
               max_false_answer=a.max_false_answer, on_progress=on_progress)


class ProgressBar:
    """An ``on_progress(done, total)`` callback drawing a bar on stderr, made on the first report;
    draws nothing when not ``shown``. Close it when the work is done."""

    def __init__(self, desc: str, shown: bool = True):
        self.desc, self.shown, self._bar = desc, shown, None

    def __call__(self, done: int, total: int) -> None:
        if not self.shown:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self.desc, unit="q", leave=False)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def after_ingest(settings: Settings, index: Index, *, progress: bool = False):
    """What follows every ingest or reindex commit: the segments that are due merged (a commit
    of its own: see retrieval/segments.py), then the abstention threshold refitted when the
    index changed (``answer.calibrate_after_ingest``)."""
    optimize(index)
    if not settings.answer.calibrate_after_ingest:
        return None
    bar = ProgressBar("calibrating abstention", progress)
    try:
        return calibrate(settings, index, on_progress=bar, force=False)
    finally:
        bar.close()


def optimize(index: Index, *, full: bool = False) -> int | None:
    """Merge the index's segments that are due (all into one with ``full``); returns the
    generation, or None when another job holds the index (its own end merges them)."""
    from retrieval.errors import IndexLockedError

    if index.generation == 0:
        return 0
    try:
        with index.writer() as w:
            return w.optimize(full=full)
    except IndexLockedError:
        if full:
            raise
        return None
