"""The HTTP API: ``archivist api`` (and ``archivist serve`` beside the web app).

OpenAI's chat shapes (``POST /v1/chat/completions``, streaming as server-sent events, and
``GET /v1/models``) so that chat front ends, IDE plug-ins and LangChain's ``ChatOpenAI`` work
unchanged; the citations, the quote and the short answer ride along in an ``archivist`` field
of the message (and of the last streamed chunk). Beside them: search, documents, jobs,
feedback, ``/healthz`` and ``/metrics`` (Prometheus text). The OpenAPI spec is at ``/docs``.

Every ``/v1`` request signs in with ``Authorization: Bearer TOKEN`` (``archivist tokens``), or,
with ``auth.mode = "proxy"``, with the trusted proxy's headers; it then reads and is audited
as that user, through the same application layer as the web app and the command line.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from typing import Any, Iterator, Literal

from fastapi import Depends, FastAPI, File, Form, Path, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ui.auth import AuthError, Identity
from ui.services import Answer, Archivist, ArchivistError, EmptyIndexError, Evidence, PermissionDenied, Upload

from ui.presence import SECRET_ENV
from ui.settings import load_settings

MODEL = "archivist"  # the model name every client may use: the models in use now


# -- errors -------------------------------------------------------------------------------------
class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", headers=None):
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers or {}


def _error(status: int, message: str, kind: str, headers=None) -> JSONResponse:
    """OpenAI's error shape, which its clients read: {"error": {"message", "type", "code"}}."""
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status,
                        headers=headers)


#: what each error of the layer is to a caller: (error, HTTP status, OpenAI error type, headers)
ERRORS = [
    (AuthError, 401, "authentication_error", {"WWW-Authenticate": "Bearer"}),
    (PermissionDenied, 403, "permission_error", None),
    (EmptyIndexError, 409, "empty_index", None),
    (ArchivistError, 400, "invalid_request_error", None),
    (ValueError, 400, "invalid_request_error", None),
]


def _install_error_handlers(api: FastAPI) -> None:
    @api.exception_handler(ApiError)
    async def api_error(_request, exc: ApiError):
        return _error(exc.status, exc.message, exc.kind, exc.headers)

    def plain(status: int, kind: str, headers=None):
        async def handler(_request, exc: Exception):
            return _error(status, str(exc), kind, headers)

        return handler

    for error, status, kind, headers in ERRORS:  # an error is served by the handler of its nearest class
        api.add_exception_handler(error, plain(status, kind, headers))

    @api.exception_handler(RequestValidationError)
    async def invalid(_request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "the request"
        return _error(422, f"{where}: {first.get('msg', 'invalid')}; see the spec at /docs", "invalid_request_error")

    @api.exception_handler(StarletteHTTPException)
    async def http_error(_request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "see the spec at /docs"
        if exc.status_code == 404:
            message = "no such endpoint; the endpoints are listed at /docs"
        elif exc.status_code == 405:
            message = "this endpoint does not take that method; see /docs"
        return _error(exc.status_code, message, "invalid_request_error")

    @api.exception_handler(Exception)
    async def unexpected(_request, exc: Exception):  # never a traceback to the caller
        import logging

        logging.getLogger("archivist.api").exception("request failed")
        return _error(500, f"the server failed on this request ({type(exc).__name__}); its log says more", "server_error")


# -- who is asking, and how often -------------------------------------------------------------------
class RateLimiter:
    """At most ``per_minute`` requests per key in any 60 seconds (0: no limit)."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.per_minute, self.clock = per_minute, clock
        self._seen: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        if not self.per_minute:
            return
        now = self.clock()
        with self._lock:
            seen = self._seen[key]
            while seen and now - seen[0] >= 60:
                seen.popleft()
            if len(seen) >= self.per_minute:
                wait = max(1, int(60 - (now - seen[0])) + 1)
                raise ApiError(429, f"more than {self.per_minute} requests a minute with this token; wait {wait} s "
                               "(api.rate_per_minute)", "rate_limit_error", {"Retry-After": str(wait)})
            seen.append(now)


def _bearer(request: Request) -> str | None:
    values = request.headers.getlist("authorization")
    if len(values) > 1:
        raise AuthError("the request carries more than one Authorization header")
    if not values:
        return None
    scheme, _, token = values[0].partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("send the API token as 'Authorization: Bearer TOKEN'")
    return token.strip()


# -- metrics ---------------------------------------------------------------------------------------
class Metrics:
    """Counters in Prometheus' text format: requests, latency, tokens, jobs."""

    BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)

    def __init__(self):
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[str, list] = {}
        self.tokens: dict[str, int] = defaultdict(int)
        self.answers: dict[str, int] = defaultdict(int)
        self.jobs = 0

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, method, status)] += 1
            counts = self.latency.setdefault(route, [0] * (len(self.BUCKETS) + 1) + [0.0])
            for i, edge in enumerate(self.BUCKETS):
                if seconds <= edge:
                    counts[i] += 1
            counts[len(self.BUCKETS)] += 1
            counts[-1] += seconds

    def answered(self, answer: Answer, prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            self.tokens["prompt"] += prompt_tokens
            self.tokens["completion"] += completion_tokens
            self.answers["abstained" if answer.abstained else "answered"] += 1

    def job_started(self) -> None:
        with self._lock:
            self.jobs += 1

    def text(self) -> str:
        out = ["# HELP archivist_requests_total HTTP requests by route, method and status",
               "# TYPE archivist_requests_total counter"]
        with self._lock:
            for (route, method, status), n in sorted(self.requests.items()):
                out.append(f'archivist_requests_total{{route="{route}",method="{method}",status="{status}"}} {n}')
            out += ["# HELP archivist_request_seconds Time to the response's first byte",
                    "# TYPE archivist_request_seconds histogram"]
            for route, counts in sorted(self.latency.items()):
                for i, edge in enumerate(self.BUCKETS):
                    out.append(f'archivist_request_seconds_bucket{{route="{route}",le="{edge}"}} {counts[i]}')
                n = counts[len(self.BUCKETS)]
                out.append(f'archivist_request_seconds_bucket{{route="{route}",le="+Inf"}} {n}')
                out.append(f'archivist_request_seconds_sum{{route="{route}"}} {counts[-1]:.6f}')
                out.append(f'archivist_request_seconds_count{{route="{route}"}} {n}')
            out += ["# HELP archivist_tokens_total Tokens of questions (prompt) and answers (completion)",
                    "# TYPE archivist_tokens_total counter"]
            out += [f'archivist_tokens_total{{kind="{k}"}} {v}' for k, v in sorted(self.tokens.items())]
            out += ["# HELP archivist_answers_total Answers given and abstentions", "# TYPE archivist_answers_total counter"]
            out += [f'archivist_answers_total{{outcome="{k}"}} {v}' for k, v in sorted(self.answers.items())]
            out += ["# HELP archivist_jobs_started_total Ingestion jobs started through the API",
                    "# TYPE archivist_jobs_started_total counter", f"archivist_jobs_started_total {self.jobs}"]
        return "\n".join(out) + "\n"


# -- request and response bodies ----------------------------------------------------------------------
class ContentPart(BaseModel):
    type: str = "text"
    text: str = ""


class Message(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return " ".join(p.text for p in self.content if p.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model: str = MODEL
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    # accepted for compatibility; the answer is extracted and checked, not sampled
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    n: int | None = Field(default=None, ge=1, le=1)
    stop: str | list[str] | None = None
    user: str | None = None
    stream_options: dict[str, Any] | None = None


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4000)
    k: int = Field(default=5, ge=1, le=1000)
    doc_prefix: str | None = Field(default=None, max_length=1000)


class FeedbackRequest(BaseModel):
    answer_id: str = Field(min_length=1, max_length=100, description="the archivist.answer_id of a chat answer")
    rating: Literal[1, -1]
    comment: str = Field(default="", max_length=2000)


# -- what a chat answer looks like ---------------------------------------------------------------------
def _where(chunk) -> str:
    return chunk.doc + (f", page {chunk.page}" if chunk.page else "") + (f" — {chunk.section}" if chunk.section else "")


def quote_text(quote: str, citations) -> str:
    n = f" [{citations[0].n}]" if citations else ""
    if quote.startswith("|"):  # a table quote: its rows as they are
        return f"From the table{n}:\n\n{quote}"
    return f"“{' '.join(quote.split())}”{n}"


def chat_text(answer: Answer) -> str:
    """The answer as a chat message: the quote with its citation, the short answer, the sources
    (the same order as when it streams: the quote is known first)."""
    if answer.abstained:
        return answer.answer
    parts = [quote_text(answer.quote, answer.citations)]
    if answer.answer:
        parts.append(f"Answer: {answer.answer}")
    if answer.citations:
        parts.append("Sources:\n" + "\n".join(f"[{p.n}] {_where(p.chunk)}" for p in answer.citations))
    return "\n\n".join(parts)


def answer_fields(answer: Answer, answer_id: str) -> dict:
    """The ``archivist`` field: what a client needs to show the answer as the web app does
    (with a refusal, the closest passages it found)."""
    closest = [h.to_json() for h in answer.hits[:3]] if answer.abstained else []
    return {"answer_id": answer_id, **answer.to_json(None), "search_query": answer.search_query, "closest": closest}


def _event(body: dict) -> str:
    """One server-sent event of a streamed reply."""
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def _question_and_history(messages: list[Message]) -> tuple[str, list[str]]:
    users = [m.text().strip() for m in messages if m.role == "user"]
    users = [u for u in users if u]
    if not users:
        raise ApiError(400, "the messages hold no question: send a message with role 'user'")
    return users[-1], users[:-1]


# -- the application ------------------------------------------------------------------------------------
def create_app(app: Archivist | None = None, *, operator_secret: str | None = None) -> FastAPI:
    """The API over ``app``; without one (``uvicorn ui.api:create_app --factory``), over the
    settings of $ARCHIVIST_CONFIG / $ARCHIVIST_INDEX, as ``archivist api`` starts it.
    ``operator_secret`` (from its parent, :mod:`ui.presence`) signs in the command line of this
    machine as the operator."""
    if app is None:
        operator_secret = os.environ.get(SECRET_ENV) or None
        settings = load_settings(os.environ.get("ARCHIVIST_CONFIG") or None,
                                 **({"index": os.environ["ARCHIVIST_INDEX"]} if os.environ.get("ARCHIVIST_INDEX") else {}))
        if settings.private_files:
            os.umask(0o077)
        app = Archivist(settings)
        app.warm_up()
    settings = app.settings
    limiter = RateLimiter(settings.api.rate_per_minute)
    metrics = Metrics()
    api = FastAPI(title="Archivist", version="1",
                  description="Question answering over the company's documents, with citations. Sign in with "
                              "'Authorization: Bearer TOKEN' (archivist tokens create USER).")
    _install_error_handlers(api)

    @api.middleware("http")
    async def observe(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.observe(getattr(route, "path", "unmatched"), request.method, response.status_code,
                        time.perf_counter() - started)
        return response

    def identity(request: Request) -> Identity:
        token = _bearer(request)
        if token is not None and operator_secret and hmac.compare_digest(token, operator_secret):
            return app.operator()  # the command line on this machine, as it acts without a server
        if token is not None:
            ident = app.from_token(token)
            limiter.check("token:" + token[:16])
            return ident
        if settings.auth.mode == "proxy":
            headers = {k: request.headers.getlist(k) for k in request.headers.keys()}
            ident = app.from_proxy(headers, request.client.host if request.client else None)
            limiter.check("proxy:" + ident.user)
            return ident
        raise AuthError("sign in with 'Authorization: Bearer TOKEN'; an administrator makes tokens with "
                        "'archivist tokens create USER'")

    def model_ids() -> list[str]:
        versions = app.model_versions()
        return [MODEL] + [v.id for v in versions.list()]

    @api.get("/healthz", tags=["service"])
    def healthz() -> dict:
        """Whether the service is up, and which index generation it serves (no sign-in)."""
        ready = (settings.index_dir / "archivist.sqlite").exists()
        return {"status": "ok", "index": "ready" if ready else "empty"}

    @api.get("/metrics", tags=["service"], response_class=PlainTextResponse)
    def prometheus() -> str:
        """Prometheus text: requests, latency, tokens, answers, jobs (no sign-in; counts only)."""
        return metrics.text()

    @api.get("/v1/models", tags=["chat"])
    def models(who: Identity = Depends(identity)) -> dict:
        """'archivist' (the models in use now) and the fine-tuned versions."""
        versions = app.model_versions()
        active = versions.active
        data = [{"id": MODEL, "object": "model", "created": 0, "owned_by": "archivist",
                 "active_version": active.id if active else None}]
        data += [{"id": v.id, "object": "model", "created": 0, "owned_by": "archivist",
                  "in_use": bool(active and v.id == active.id)} for v in versions.list()]
        return {"object": "list", "data": data}

    @api.post("/v1/chat/completions", tags=["chat"])
    def chat(body: ChatRequest, who: Identity = Depends(identity)):
        """OpenAI's chat completion: the last user message is the question, the earlier ones its
        conversation. The answer cites its sources; ``archivist`` holds them as data."""
        if body.model not in (MODEL, *model_ids()):
            raise ApiError(404, f"no model {body.model!r}: use 'archivist' (GET /v1/models lists them)",
                           "model_not_found")
        question, history = _question_and_history(body.messages)
        if len(question) > 4000:
            raise ApiError(400, "the question is longer than 4,000 characters; ask it in fewer words")
        completion_id = "chatcmpl-" + secrets.token_hex(12)
        created = int(time.time())
        if body.stream:
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            return StreamingResponse(_stream(who, question, history, body.model, completion_id, created, include_usage),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        content, extra, usage = _finished(who, question, app.ask(who, question, history=history))
        return {"id": completion_id, "object": "chat.completion", "created": created, "model": body.model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content, "archivist": extra}}],
                "usage": usage, "archivist": extra}

    def _finished(who, question: str, answer: Answer) -> tuple[str, dict, dict]:
        """A given answer as a chat reply: (its text, the ``archivist`` field, the usage), remembered
        for feedback and counted in the metrics."""
        content = chat_text(answer)
        count = app.index.embedder.count_tokens
        p, c = count(question), count(content)
        usage = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
        metrics.answered(answer, p, c)
        return content, answer_fields(answer, app.remember(who, answer)), usage

    def _stream(who, question, history, model, completion_id, created, include_usage) -> Iterator[str]:
        def chunk(delta: dict | None, finish=None, **extra) -> str:
            choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
            return _event({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": choices, **extra})

        yield chunk({"role": "assistant", "content": ""})
        sent = ""
        try:
            for event in app.stream(who, question, history=history):
                if isinstance(event, Evidence):  # the quote and its source, before the short answer is checked
                    sent = quote_text(event.quote, event.citations)
                    yield chunk({"content": sent})
                elif isinstance(event, Answer):
                    full, extra, usage = _finished(who, question, event)
                    rest = full[len(sent):] if full.startswith(sent) else ("\n\n" if sent else "") + full
                    if rest:
                        yield chunk({"content": rest})
                    yield chunk({"archivist": extra}, "stop", archivist=extra)
                    if include_usage:
                        yield chunk(None, usage=usage)
        except (ArchivistError, ValueError) as exc:  # after the headers: the error goes in the stream
            yield _event({"error": {"message": str(exc), "type": "invalid_request_error"}})
        except Exception as exc:  # never a traceback
            import logging

            logging.getLogger("archivist.api").exception("streamed answer failed")
            yield _event({"error": {"message": f"the answer failed ({type(exc).__name__})", "type": "server_error"}})
        yield "data: [DONE]\n\n"

    @api.post("/v1/search", tags=["search"])
    def search(body: SearchRequest, who: Identity = Depends(identity)) -> dict:
        """The best passages for a query, among those the caller may read."""
        hits = app.search(who, body.query, body.k, doc_prefix=body.doc_prefix)
        return {"query": body.query, "results": [h.to_json() for h in hits]}

    @api.get("/v1/documents", tags=["documents"])
    def documents(who: Identity = Depends(identity)) -> dict:
        """The documents the caller may read."""
        if not (settings.index_dir / "archivist.sqlite").exists():
            return {"object": "list", "data": []}
        return {"object": "list", "data": [
            {"doc": d.doc, "format": d.format, "pages": d.pages, "chunks": d.chunks, "readers": list(d.groups),
             "indexed_at": d.indexed_at} for d in app.documents(who)]}

    @api.post("/v1/documents", tags=["documents"], status_code=202)
    def upload(files: list[UploadFile] = File(description="the files to add"),
               readers: str = Form(description="who may read them: groups, comma-separated, or 'everyone'"),
               who: Identity = Depends(identity)) -> dict:
        """Add files (administrators): they are saved with their readers and ingested by a job;
        watch it at /v1/jobs/{id}."""
        groups = [g.strip() for g in readers.split(",") if g.strip()]
        limit = settings.api.max_upload_mb
        uploads, too_big = [], []
        for f in files:
            data = f.file.read(limit * 1_000_000 + 1)
            if len(data) > limit * 1_000_000:
                too_big.append({"file": f.filename or "upload", "reason": f"larger than {limit} MB (api.max_upload_mb)"})
            else:
                uploads.append(Upload(f.filename or "upload", data))
        sources, rejected, what = app.save_uploads(who, uploads, groups, max_mb=limit)
        rejected = too_big + [{"file": name, "reason": why} for name, why in rejected]
        if not sources:
            return {"job": None, "rejected": rejected}
        job_id = app.start_in_background(lambda on_start: app.ingest(who, sources, what=what, on_start=on_start))
        metrics.job_started()
        return {"job": job_id, "rejected": rejected}

    @api.delete("/v1/documents/{doc:path}", tags=["documents"])
    def remove(doc: str, who: Identity = Depends(identity)) -> dict:
        """Remove a document from the index (administrators)."""
        app.remove(who, [doc])
        return {"removed": doc}

    @api.get("/v1/jobs", tags=["jobs"])
    def jobs(n: int = Query(20, ge=1, le=1000), who: Identity = Depends(identity)) -> dict:
        """The last ingestion jobs (administrators)."""
        return {"object": "list", "data": [j.__dict__ for j in app.jobs(who, n)]}

    @api.get("/v1/jobs/{job_id}", tags=["jobs"])
    def job(job_id: int = Path(ge=1, le=2**62), who: Identity = Depends(identity)) -> dict:
        """One job: its status, counts and per-file errors (administrators)."""
        found = app.job(who, job_id)
        if found is None:
            raise ApiError(404, f"no job {job_id}; GET /v1/jobs lists them", "not_found")
        return found.__dict__

    @api.post("/v1/feedback", tags=["chat"])
    def feedback(body: FeedbackRequest, who: Identity = Depends(identity)) -> dict:
        """Rate an answer you were given (+1 helpful, -1 not), by its ``archivist.answer_id``."""
        return {"id": app.feedback(who, body.answer_id, body.rating, body.comment)}

    return api
