"""A small client of the HTTP API: ``archivist ask --server URL``, and ``ask`` / ``search`` through
the server running on this machine (:mod:`ui.presence`)."""

from __future__ import annotations

import httpx

from ui.services import ArchivistError


class ServerUnreachable(ArchivistError):
    """No server answers at that address."""


class ApiClient:
    def __init__(self, base_url: str, token: str, *, timeout: float = 120.0):
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.token, self.timeout = token, timeout

    def _post(self, path: str, body: dict) -> dict:
        try:
            r = httpx.post(self.base_url + path, json=body, timeout=httpx.Timeout(self.timeout, connect=2.0),
                           headers={"Authorization": f"Bearer {self.token}"})
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ServerUnreachable(f"cannot reach the API at {self.base_url} ({exc}); is 'archivist serve' or "
                                    "'archivist api' running there?") from None
        except httpx.HTTPError as exc:
            raise ArchivistError(f"cannot reach the API at {self.base_url} ({exc}); is 'archivist serve' or "
                                 "'archivist api' running there?") from None
        try:
            data = r.json()
        except ValueError:
            raise ArchivistError(f"{self.base_url} did not answer as an Archivist API (HTTP {r.status_code})") from None
        if r.status_code >= 400:
            message = (data.get("error") or {}).get("message") if isinstance(data, dict) else None
            raise ArchivistError(f"the API refused: {message or r.status_code}")
        return data

    def ask(self, question: str) -> dict:
        """{"content": the chat text, "archivist": the answer as data}."""
        data = self._post("/chat/completions", {"model": "archivist", "messages": [{"role": "user", "content": question}]})
        message = data["choices"][0]["message"]
        return {"content": message["content"], "archivist": message["archivist"]}

    def search(self, query: str, k: int = 5, doc_prefix: str | None = None) -> list[dict]:
        return self._post("/search", {"query": query, "k": k, "doc_prefix": doc_prefix})["results"]
