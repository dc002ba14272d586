"""The web app, driven with Streamlit's AppTest (no browser), on fakes."""

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, SAMPLES
from conftest import sign_in as conftest_sign_in
from ui.cli import main

APP = str(ROOT / "ui" / "web" / "app.py")


@pytest.fixture(scope="module")
def samples_index(tmp_path_factory):
    import os

    base = tmp_path_factory.mktemp("web")
    os.environ["ARCHIVIST_EMBEDDER__MODEL"] = "fake"
    try:
        assert main(["ingest", str(SAMPLES / "docs"), "--no-progress", "--index", str(base / "index")]) == 0
    finally:
        os.environ.pop("ARCHIVIST_EMBEDDER__MODEL")
    return base / "index"


@pytest.fixture
def app(tmp_path, samples_index, monkeypatch):
    from ui.web import resources

    index = tmp_path / "index"
    shutil.copytree(samples_index, index)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARCHIVIST_EMBEDDER__MODEL", "fake")
    monkeypatch.setenv("ARCHIVIST_GENERATOR__BACKEND", "fake")
    monkeypatch.setenv("ARCHIVIST_ANSWER__MIN_CONFIDENCE", "0.45")  # the fake embedder's scale
    monkeypatch.setenv("ARCHIVIST_ANSWER__MATCH_WEIGHT", "0")  # its sentence match is on that scale too
    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ARCHIVIST_INDEX", str(index))
    monkeypatch.delenv("ARCHIVIST_CONFIG", raising=False)
    resources._services.clear()
    from ui.auth import UserStore

    UserStore(tmp_path / "data" / "users.json").add("alice", PASSWORD, ["admin", "finance", "hr"])
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    sign_in(at, "alice")
    yield at
    resources._services.clear()


PASSWORD = "correct horse battery"


def sign_in(at, user, password=PASSWORD):
    return conftest_sign_in(at, user, password)


def _ask(at, question):
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


def test_ask_gets_a_cited_answer_with_its_source(app):
    _ask(app, "How many days of paid annual leave does an employee get?")
    messages = app.chat_message
    assert len(messages) == 2
    text = " ".join(m.value for m in app.markdown)
    assert "25 days" in text
    assert any(c.value.replace("\\", "").startswith("[1] hr/employee") for c in app.caption)  # the quote card names its source
    assert any(m.value.startswith("**") and "25 days" in m.value for m in app.markdown)  # the short answer, bold
    labels = [e.label for e in app.expander]
    assert any("hr/employee-handbook.pdf, page 2" in label.replace("\\", "") for label in labels)
    # the source card: the passage with the supporting sentence in bold
    assert any("**" in m.value and "annual leave" in m.value for m in app.markdown)
    # open the PDF page
    toggle = next(t for t in app.toggle if t.label.startswith("Show page"))
    toggle.set_value(True).run()
    assert not app.exception and len(app.get("image")) == 1
    assert any(b.label == "Download the document" for b in app.get("download_button"))


def test_unanswerable_question_abstains_and_shows_closest(app):
    _ask(app, "What is the incubation period of influenza viruses in ferrets?")
    assert any("do not answer" in i.value for i in app.info)
    assert len(app.expander) >= 1


def test_a_question_naming_what_no_document_names_says_so(app):
    _ask(app, "Which version of Kubernetes does the data platform run?")
    assert any("None of them mentions “Kubernetes”" in i.value for i in app.info)
    assert len(app.expander) >= 1  # the closest passages, as for any refusal


def test_followup_question_is_rewritten_and_visible(app):
    _ask(app, "How many weeks of paid parental leave does the birth parent get?")
    app.sidebar.toggle[0].set_value(True).run()
    _ask(app, "and the other parent?")
    captions = " ".join(c.value for c in app.caption)
    assert "Searched for: How many weeks of paid parental leave does the birth parent get? and the other parent?" in captions


def test_feedback_is_stored(app, tmp_path):
    from qa.feedback import FeedbackStore

    _ask(app, "What is the mileage rate for a private car in Norway?")
    app.radio(key="fbr-0").set_value("Not helpful")
    app.text_input(key="fbc-0").set_value("missing the UK rate")
    app.button[[b.label for b in app.button].index("Send")].click().run()
    assert not app.exception
    [entry] = FeedbackStore(tmp_path / "data" / "feedback.sqlite").list()
    assert entry.rating == -1 and entry.comment == "missing the UK rate" and "mileage" in entry.question
    assert entry.chunks and entry.chunks[0]["doc"]


def test_admin_ingests_a_folder_and_reports_a_failing_file(app, tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "canteen.txt").write_text("The canteen serves fish soup on Fridays.")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 broken")
    app.sidebar.radio[0].set_value("Admin").run()
    assert not app.exception
    assert any(m.label == "Documents" for m in app.metric)
    app.text_input[0].set_value(str(folder)).run()
    app.button[[b.label for b in app.button].index("Ingest the folder")].click().run()
    assert not app.exception
    assert any("1 added" in w.value and "1 failed" in w.value for w in app.warning)
    results = app.dataframe[0].value
    assert set(results["document"]) == {"canteen.txt", "broken.pdf"}
    assert results.set_index("document").loc["broken.pdf", "result"] == "failed"


def test_admin_removes_a_document(app):
    app.sidebar.radio[0].set_value("Admin").run()
    app.selectbox(key="remove_doc").set_value("hr/holiday-calendar-2026.csv").run()
    app.button[[b.label for b in app.button].index("Remove")].click().run()
    assert not app.exception
    docs = app.dataframe[0].value["document"].tolist()
    assert "hr/holiday-calendar-2026.csv" not in docs and len(docs) == 20


def test_evaluate_runs_and_shows_metrics(app):
    app.sidebar.radio[0].set_value("Evaluate").run()
    app.number_input[0].set_value(6).run()
    app.selectbox[1].set_value("short answer phrased by the model (checked)").run()
    app.button[[b.label for b in app.button].index("Run the evaluation")].click().run()
    assert not app.exception
    metrics = app.dataframe[0].value
    assert {"short answer contains the gold answer", "gold-answer containment (all shown)"} <= set(metrics["metric"].tolist())
    assert {"as configured", "short answer phrased by the model (checked)"} <= set(metrics.columns)
    assert len(app.dataframe[1].value) == 6


def test_upload_names_cannot_escape_the_upload_folder():
    from ui.web.admin_page import safe_name

    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("..\\..\\boot.ini") == "boot.ini"
    assert safe_name("<script>.pdf") == "_script_.pdf"
    assert safe_name("..") == "upload"


def test_admin_upload_job_reports_each_file(app, tmp_path):
    app.sidebar.radio[0].set_value("Admin").run()
    app.file_uploader(key="uploads").set_value([
        ("../../canteen.txt", b"The canteen serves fish soup on Fridays.", "text/plain"),
        ("broken.pdf", b"%PDF-1.4 broken", "application/pdf"),
    ]).run()
    app.button[[b.label for b in app.button].index("Ingest the uploaded files")].click().run()
    assert not app.exception
    assert any("1 added" in w.value and "1 failed" in w.value for w in app.warning)
    results = app.dataframe[0].value.set_index("document")
    assert results.loc["uploads/canteen.txt", "result"] == "added"
    assert results.loc["uploads/broken.pdf", "result"] == "failed" and results.loc["uploads/broken.pdf", "reason"]
    assert (tmp_path / "data" / "uploads" / "canteen.txt").is_file()
    assert not (tmp_path / "canteen.txt").exists()  # the name could not climb out of the upload folder


def test_admin_promotes_and_rolls_back_a_model_version_and_starts_fine_tuning(app, tmp_path, monkeypatch):
    from qa.model_versions import ModelVersions
    from ui.services import compose

    versions = ModelVersions(tmp_path / "data" / "models")
    vid, folder = versions.new_folder()
    versions.register(vid, {"eval": {"before": {"containment": 0.1}, "after": {"containment": 0.3}}})
    started = []
    monkeypatch.setattr(compose, "launch_finetune", lambda settings, budget: started.append(budget) or 4242)
    app.sidebar.radio[0].set_value("Admin").run()
    table = next(d.value for d in app.dataframe if "version" in d.value.columns)
    assert list(table["version"]) == ["v1"] and table["containment after"][0] == 0.3
    app.button(key="promote").click().run()
    assert not app.exception and versions.active.id == "v1"
    app.button(key="rollback").click().run()
    assert versions.active is None
    app.number_input(key="ft_budget").set_value(5.0)
    app.button(key="ft_start").click().run()
    assert started == [5.0]
    from qa.audit import AuditLog

    log = AuditLog(tmp_path / "data" / "audit.sqlite")
    actions = [e.action for e in log.entries(limit=50) if e.action in ("promote", "rollback", "finetune")]
    log.close()
    assert actions[:3] == ["finetune", "rollback", "promote"]  # the layer wrote each, newest first


def test_a_wrong_draft_never_reaches_the_page(app, monkeypatch):
    """The model writes a wrong draft: neither the stream nor the page ever shows it."""
    import streamlit
    from streamlit.delta_generator import DeltaGenerator

    from qa import FakeGenerator
    from ui.web import resources

    shown: list[str] = []
    real_dg_markdown = DeltaGenerator.markdown

    def spy(self, body, *a, **kw):
        shown.append(str(body))
        return real_dg_markdown(self, body, *a, **kw)

    monkeypatch.setattr(DeltaGenerator, "markdown", spy)
    monkeypatch.setattr(streamlit, "markdown", lambda body, *a, **kw: spy(streamlit._main, body, *a, **kw))
    svc = resources.services()
    wrong = FakeGenerator(reply="Employees get 40 days of paid annual leave and a company car [1].")
    monkeypatch.setattr(svc, "answerer", type(svc.answerer)(svc.index, wrong, type(svc.answerer.options)(
        **{**svc.answerer.options.__dict__, "phrasing": "model"})))
    _ask(app, "How many days of paid annual leave does an employee get?")
    assert wrong.calls, "the model was asked to phrase the answer"
    page = " ".join(m.value for m in app.markdown)
    assert "25 days" in page
    for text in shown + [page]:
        assert "40 days" not in text and "company car" not in text
