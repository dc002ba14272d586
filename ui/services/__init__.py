"""The application layer and what it is built from.

Faces (``ui/cli.py``, ``ui/web/``, ``ui/api.py``) import from here and from ``ui.auth`` /
``ui.settings`` only: :class:`Archivist` holds every operation; the names below are the
records and helpers those operations hand back, so a face never reaches into ``retrieval``,
``qa`` or ``ingest`` itself (``tests/test_layers.py`` checks it).
"""

from ingest import SUPPORTED
from ingest.pipeline import plural
from ingest.schedule import cron_trigger, run_schedule
from qa import ABSTAIN_TEXT, Answer
from qa.answer import Evidence
from qa.audit import printable
from qa.evaluate import METRIC_LABELS, QuestionSet, load_question_set, parse_questions
from retrieval.errors import ArchivistError, ConfigError, EmptyIndexError
from retrieval.filters import EVERYONE
from ui.services.archivist import Archivist, EvalResult, PermissionDenied, Upload, UploadResult, safe_name
from ui.services.compose import ProgressBar

__all__ = [
    "ABSTAIN_TEXT",
    "Answer", "Archivist", "ArchivistError", "ConfigError", "EVERYONE", "EmptyIndexError", "EvalResult", "Evidence", "METRIC_LABELS",
    "PermissionDenied", "ProgressBar", "QuestionSet", "SUPPORTED", "Upload", "UploadResult", "cron_trigger", "load_question_set",
    "parse_questions", "plural", "printable", "run_schedule", "safe_name",
]
