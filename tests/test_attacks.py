"""What an insider's attacks broke (issue 19), each kept as a regression test."""

import json
import os
import resource
import subprocess
import sys

import pytest

from conftest import ROOT, web_app_env
from ui.cli import main


@pytest.fixture
def cli(fake_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(tmp_path / "data"))  # the users and audit log these tests read
    return fake_cli


def _notes(folder, n, text="Note {i}: the ferry to island {i} leaves at nine.", prefix="n"):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"{prefix}{i}.txt").write_text(text.format(i=i))
    return folder


def _one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


# --- 1. disk full during a commit ---------------------------------------------------------------------


def _limit_file_size(kib: int):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (kib * 1024, kib * 1024))
    return limit


def test_a_disk_full_commit_fails_loudly_keeps_the_last_generation_and_the_next_run_recovers(tmp_path):
    env = dict(os.environ, ARCHIVIST_EMBEDDER__MODEL="fake:1024", ARCHIVIST_DATA_DIR=str(tmp_path / "data"),
               PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "ui.cli"]
    index = str(tmp_path / "idx")

    def run(*args, limit=None):
        return subprocess.run(cmd + list(args) + ["--index", index], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=180, preexec_fn=limit)

    assert run("ingest", str(_notes(tmp_path / "a", 5)), "--no-progress").returncode == 0
    big = _notes(tmp_path / "b", 60, "Report {i}: harbour crane {i} lifts containers every morning.", prefix="r")
    failed = run("ingest", str(big), "--no-progress", limit=_limit_file_size(136))  # the vectors file passes 136 KiB
    assert failed.returncode != 0 and "is the disk full?" in failed.stderr and "Traceback" not in failed.stderr
    served = run("search", "ferry island", "--json")
    assert served.returncode == 0, served.stderr
    assert json.loads(served.stdout)["results"][0]["doc"].startswith("n")
    stats = json.loads(run("stats", "--json").stdout)
    assert stats["documents"] == 5 and stats["generation"] == 1
    jobs = json.loads(run("jobs", "--json").stdout)
    assert jobs[0]["status"] == "failed" and "disk" in jobs[0]["message"]
    again = run("ingest", str(big), "--no-progress")  # room again: the files are not "unchanged"
    assert again.returncode == 0 and "60 added" in again.stderr
    assert json.loads(run("stats", "--json").stdout)["documents"] == 65


def test_a_generation_whose_vectors_were_cut_short_is_never_published(tmp_path, monkeypatch, make_index):
    """faiss's writer only prints 'close error' on a full disk; the commit reads its files back."""
    from retrieval import Chunk, DocumentInfo
    from retrieval.errors import IndexWriteError
    import retrieval.integrity as integrity

    index = make_index()

    def add(writer, doc, text):
        chunk = Chunk(id=Chunk.make_id(doc, 0, text), doc=doc, text=text)
        writer.add_document(DocumentInfo(doc=doc), [chunk], index.embedder.embed([text]))

    with index.writer() as w:
        add(w, "a.txt", "The ferry leaves at nine.")
        w.commit()
    real_open = open

    def short_writes(path, mode="r", *a, **kw):  # the disk takes half of what is written, silently
        fh = real_open(path, mode, *a, **kw)
        if "w" in mode and str(path).endswith("vectors.npy.tmp"):
            write = fh.write
            fh.write = lambda data: write(data[: len(data) // 2])
        return fh

    monkeypatch.setattr(integrity, "open", short_writes, raising=False)
    with pytest.raises(IndexWriteError, match="not written in full"):
        with index.writer() as w:
            add(w, "b.txt", "The crane lifts containers.")
            w.commit()
    monkeypatch.undo()
    assert index.generation == 1 and [h.chunk.doc for h in index.search("ferry", 3)] == ["a.txt"]


# --- 7. broken index files -----------------------------------------------------------------------------


@pytest.fixture
def two_generations(cli, tmp_path):
    index = tmp_path / "idx"
    assert cli("ingest", str(_notes(tmp_path / "a", 3)), "--no-progress", "--index", str(index))[0] == 0
    assert cli("ingest", str(_notes(tmp_path / "b", 3, "Crane {i} lifts containers.", prefix="c")), "--no-progress",
               "--index", str(index))[0] == 0
    return index


@pytest.mark.parametrize("damage", ["truncate vectors", "remove vectors", "truncate counts", "bad vocab",
                                    "remove ok.json"])
def test_a_damaged_file_of_the_latest_generation_falls_back_to_the_one_before(cli, two_generations, damage, caplog):
    index = two_generations
    segment = index / "segments" / "seg-000002-1"  # what the second commit wrote
    lexical = segment / "lexical"
    target = {"truncate vectors": segment / "vectors.npy", "remove vectors": segment / "vectors.npy",
              "truncate counts": lexical / "rows.npy", "bad vocab": lexical / "terms.json",
              "remove ok.json": segment / "ok.json"}[damage]
    if damage.startswith("remove"):
        target.unlink()
    elif damage == "bad vocab":
        target.write_text("{not json")
    else:
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    code, out, err = cli("search", "crane lifts containers", "--index", str(index), "--json")
    assert code == 0, err
    docs = [r["doc"] for r in json.loads(out)["results"]]
    assert docs and not any(d.startswith("c") for d in docs)  # generation 1 serves: it has no crane notes yet
    assert target.name in caplog.text and "serving the generation before it" in caplog.text


def test_damage_with_no_generation_left_names_the_file_in_one_line(cli, tmp_path):
    index = tmp_path / "idx"
    assert cli("ingest", str(_notes(tmp_path / "a", 3)), "--no-progress", "--index", str(index))[0] == 0
    (index / "segments" / "seg-000001-1" / "vectors.npy").write_bytes(b"\0" * 10)
    code, out, err = cli("search", "ferry", "--index", str(index))
    assert code == 2 and "vectors.npy" in err and "rebuild" in err and _one_line(err)


def test_a_corrupt_database_is_named_in_one_line(cli, tmp_path):
    index = tmp_path / "idx"
    assert cli("ingest", str(_notes(tmp_path / "a", 3)), "--no-progress", "--index", str(index))[0] == 0
    for suffix in ("-wal", "-shm"):
        (index / f"archivist.sqlite{suffix}").unlink(missing_ok=True)
    (index / "archivist.sqlite").write_bytes(b"this is not a database" * 100)
    for command in (["search", "ferry"], ["stats"], ["docs"], ["jobs"]):
        code, out, err = cli(*command, "--index", str(index))
        assert code == 2 and "archivist.sqlite" in err and "not a readable index database" in err, command
        assert _one_line(err), err


def test_a_read_only_index_folder_still_answers_searches_and_listings_as_any_user(cli, tmp_path, monkeypatch):
    """Root ignores permissions, so the read-only mount is simulated where the index asks."""
    from retrieval import store

    index = tmp_path / "idx"
    assert cli("ingest", str(_notes(tmp_path / "a", 3)), "--no-progress", "--index", str(index))[0] == 0
    for suffix in ("-wal", "-shm"):
        assert not (index / f"archivist.sqlite{suffix}").exists() or \
            (index / f"archivist.sqlite{suffix}").stat().st_size <= 32768
    monkeypatch.setattr(store, "is_read_only", lambda path: True)
    for name in os.listdir(index):
        if name.startswith("archivist.sqlite-"):
            os.remove(index / name)  # what a read-only copy of the folder holds: the database alone
    code, out, err = cli("search", "ferry island", "--index", str(index), "--json")
    assert code == 0 and json.loads(out)["results"], err
    for command in (["stats"], ["docs"], ["jobs"]):
        code, out, err = cli(*command, "--index", str(index))
        assert code == 0 and out, (command, err)


# --- 2. symbolic links -------------------------------------------------------------------------------


def _share(tmp_path):
    share = tmp_path / "share"
    (share / "hr").mkdir(parents=True)
    (share / "finance").mkdir()
    (share / "hr" / ".groups").write_text("hr\n")
    (share / "finance" / ".groups").write_text("finance\n")
    (share / "hr" / "leave.md").write_text("# Leave\n\nEmployees get 25 days of annual leave.")
    (share / "finance" / "budget-2027.md").write_text("# Budget\n\nThe 2027 marketing budget is 4.2 million euros.")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "salaries.md").write_text("# Salaries\n\nThe chief executive earns 900,000 euros.")
    (share / "hr" / "budget-link.md").symlink_to(share / "finance" / "budget-2027.md")
    (share / "hr" / "salaries-link.md").symlink_to(outside / "salaries.md")
    return share


def _docs(cli, index, *user):
    code, out, err = cli("docs", "--index", str(index), "--json", *user)
    return {d["doc"]: d["groups"] for d in json.loads(out)}


def test_a_link_never_lends_its_folder_readers_to_its_target(cli, tmp_path):
    from ui.auth import UserStore

    share = _share(tmp_path)
    index = tmp_path / "idx"
    code, out, err = cli("ingest", str(share), "--index", str(index), "--no-progress", "-v")
    assert code == 0, err
    assert "skipped  hr/budget-link.md: a symbolic link to finance/budget-2027.md" in err
    assert "skipped  hr/salaries-link.md: a symbolic link out of the source folder" in err
    docs = _docs(cli, index)
    assert docs == {"finance/budget-2027.md": ["finance"], "hr/leave.md": ["hr"]}
    UserStore(tmp_path / "data" / "users.json").add("hana", "a long password here", ["hr"])
    code, out, err = cli("search", "2027 marketing budget million", "--index", str(index), "--user", "hana", "--json")
    assert all("budget" not in r["doc"] for r in json.loads(out)["results"])


def test_following_links_out_of_a_source_takes_the_targets_own_readers(cli, tmp_path, monkeypatch):
    share = _share(tmp_path)
    (tmp_path / "outside" / "salaries.md.groups").write_text("board\n")
    monkeypatch.setenv("ARCHIVIST_INGEST__FOLLOW_SYMLINKS", "true")
    index = tmp_path / "idx"
    assert cli("ingest", str(share), "--index", str(index), "--no-progress")[0] == 0
    assert _docs(cli, index)["hr/salaries-link.md"] == ["board"]  # not hr: the link's folder does not decide


# --- 3. a file name that is not UTF-8 ----------------------------------------------------------------


def test_a_file_name_in_another_encoding_is_reported_and_the_rest_is_committed(cli, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "menu.md").write_text("# Menu\n\nFish soup on Fridays.")
    bad = os.fsencode(folder) + b"/caf\xe9.md"
    with open(bad, "wb") as fh:
        fh.write(b"# Cafe\n\nCoffee is free before nine.")
    index = tmp_path / "idx"
    for _ in range(2):  # and every later run too
        code, out, err = cli("ingest", str(folder), "--index", str(index), "--no-progress")
        assert code == 1 and "caf\\xe9.md" in err and "not valid UTF-8" in err and "rename" in err
        assert "Traceback" not in err
    assert list(_docs(cli, index)) == ["menu.md"]


# --- 4. a revoked user's open session ----------------------------------------------------------------


@pytest.fixture
def web(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from ui.auth import UserStore
    from ui.web import resources

    docs = tmp_path / "docs"
    (docs / "finance").mkdir(parents=True)
    (docs / "finance" / ".groups").write_text("finance\n")
    (docs / "finance" / "q3-results.md").write_text("# Q3\n\nThe third quarter revenue was 48 million euros.")
    (docs / "handbook.md").write_text("# Handbook\n\nEmployees get 25 days of annual leave.")
    (docs / "handbook.md.groups").write_text("everyone\n")
    web_app_env(monkeypatch, tmp_path)
    assert main(["ingest", str(docs), "--no-progress"]) == 0
    users = UserStore(tmp_path / "data" / "users.json")
    users.add("fin", "fin's long password", ["finance"])
    resources._services.clear()

    def start():
        from conftest import sign_in

        at = AppTest.from_file(str(ROOT / "ui" / "web" / "app.py"), default_timeout=60)
        at.run()
        return sign_in(at, "fin", "fin's long password")

    yield start, users
    resources._services.clear()


def _ask_text(at, question):
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return " ".join(m.value for m in at.markdown)


@pytest.mark.parametrize("revoke", ["remove", "set-groups", "passwd"])
def test_a_revoked_user_is_cut_off_on_the_next_request(web, revoke):
    start, users = web
    at = start()
    assert "48 million" in _ask_text(at, "What was the third quarter revenue?")
    if revoke == "remove":
        users.remove("fin")
    elif revoke == "set-groups":
        users.set_groups("fin", ["engineering"])
    else:
        users.set_password("fin", "a brand new password")
    at.chat_input[0].set_value("What was the third quarter revenue in million euros?").run()
    assert not at.exception, at.exception
    if revoke == "set-groups":  # still signed in, with the groups of now
        assert at.session_state["identity"].groups == frozenset({"engineering"})
        after = " ".join(m.value for m in at.markdown).split("in million euros?")[-1]  # the answer to the second
        assert after.strip() and "48 million" not in after
    else:
        assert "identity" not in at.session_state and not at.chat_input
        assert any("signed out" in i.value for i in at.info)


# --- 5. the lockout under parallel guesses -----------------------------------------------------------


def test_twenty_wrong_passwords_at_once_are_locked_out_after_five(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from ui.auth import AuthError, UserStore

    users = UserStore(tmp_path / "users.json", max_failures=5, lockout_s=60)
    users.add("fin", "fin's long password", ["finance"])

    def guess(i):
        try:
            users.authenticate("fin", f"wrong guess {i}")
        except AuthError as exc:
            return "locked" if "too many" in str(exc) else "wrong"

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(guess, range(20)))
    assert results.count("wrong") <= 5 and results.count("locked") >= 15
    with pytest.raises(AuthError, match="too many"):
        users.authenticate("fin", "fin's long password")  # locked even with the right one, for now


# --- 6. log forging ----------------------------------------------------------------------------------


def test_control_characters_cannot_forge_or_hide_audit_lines(cli, tmp_path):
    from qa.audit import AuditLog

    audit = AuditLog(tmp_path / "data" / "audit.sqlite")
    forged = "mallory\x1b[1A\x1b[2K\n2026-12-01T10:00:00Z  adm              sign-in"
    audit.record(forged, "sign-in-failed")
    audit.record("eve", "ask", question="what\x1b]0;owned\x07 is \x9b31m this?")
    audit.record("eve", "ask", question="=HYPERLINK(\"http://evil\",\"click\")")
    audit.close()
    code, out, err = cli("audit", "--index", str(tmp_path / "idx"))
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3 and not any(line.lstrip().startswith("2026-12-01T10:00:00Z  adm") for line in lines)
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    assert "mallory\\x1b[1A\\x1b[2K\\n2026" in out
    export = tmp_path / "audit.csv"
    assert cli("audit", "--index", str(tmp_path / "idx"), "--export", str(export))[0] == 0
    import csv

    rows = list(csv.reader(export.open()))
    assert any(r[3] == "'=HYPERLINK(\"http://evil\",\"click\")" for r in rows)  # text, not a formula
    assert not any(cell.startswith(("=", "+", "@")) for r in rows for cell in r)


def test_a_document_name_with_a_newline_stays_on_one_line_of_docs(cli, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "two\nlines.md").write_text("# Two\n\nSplit names.")
    (folder / "two\nlines.md.groups").write_text("everyone\n")
    assert cli("ingest", str(folder), "--index", str(tmp_path / "idx"), "--no-progress")[0] == 0
    code, out, err = cli("docs", "--index", str(tmp_path / "idx"))
    assert out.splitlines() == ["two\\nlines.md\tmd\t-\t1 chunk\treaders: everyone"]


# --- 8. fine-tuning must not learn a restricted document through feedback ----------------------------


def test_feedback_citing_a_restricted_chunk_anywhere_is_not_learned(make_index):
    from types import SimpleNamespace

    from qa.training_data import build_training_set
    from retrieval import Chunk, DocumentInfo, SearchFilter

    idx = make_index()
    with idx.writer() as w:
        w.add_document(DocumentInfo(doc="handbook.txt"), [Chunk(id="h", doc="handbook.txt", groups=("everyone",),
                       text="Employees get 25 days of annual leave each calendar year.")])
        w.add_document(DocumentInfo(doc="q3-results.txt"), [Chunk(id="q", doc="q3-results.txt", groups=("finance",),
                       text="The third quarter revenue was 48 million euros.")])
        w.commit()
    feedback = [SimpleNamespace(rating=1, abstained=False, question="Leave and revenue?",
                                answer="25 days [1]; revenue 48 million euros [2].",
                                chunks=[{"chunk_id": "h"}, {"chunk_id": "q"}]),
                SimpleNamespace(rating=1, abstained=False, question="How much leave?", answer="25 days [1].",
                                chunks=[{"chunk_id": "h"}])]
    ts = build_training_set(idx, readers=SearchFilter.for_groups([]), heldout=0.0, feedback=feedback, round_trip_k=3)
    learned = [e for e in ts.examples if e.kind == "feedback"]
    assert [e.question for e in learned] == ["How much leave?"]
    assert not any("48 million" in (e.answer + e.support) for e in ts.examples)


# --- 9. Markdown in a document's name ----------------------------------------------------------------


def test_markdown_in_a_document_name_is_shown_as_text(tmp_path, monkeypatch):
    import shutil

    from streamlit.testing.v1 import AppTest

    from conftest import SAMPLES, sign_in
    from ui.auth import UserStore
    from ui.web import resources

    docs = tmp_path / "docs"
    docs.mkdir()
    name = "[Click to renew](evil.example) *now*.pdf"
    shutil.copy(SAMPLES / "docs" / "hr" / "employee-handbook.pdf", docs / name)
    (docs / (name + ".groups")).write_text("everyone\n")
    web_app_env(monkeypatch, tmp_path)
    assert main(["ingest", str(docs), "--no-progress"]) == 0
    UserStore(tmp_path / "data" / "users.json").add("erin", "erin's long password", ["staff"])
    resources._services.clear()
    try:
        at = AppTest.from_file(str(ROOT / "ui" / "web" / "app.py"), default_timeout=60)
        at.run()
        at = sign_in(at, "erin", "erin's long password")
        at.chat_input[0].set_value("How many days of paid annual leave does an employee get?").run()
        toggle = next(t for t in at.toggle if t.label.startswith("Show page"))
        toggle.set_value(True).run()
        assert not at.exception, at.exception
        captions = [i.caption for img in at.get("image") for i in img.proto.imgs]
        labels = [e.label for e in at.expander] + [c.value for c in at.caption] + captions
        assert captions and any("Click to renew" in t for t in labels)
        for text in labels:  # every place the name shows: escaped, so no link and no emphasis
            assert "](evil" not in text and "*now*" not in text, text
    finally:
        resources._services.clear()


# --- 10. bombs ---------------------------------------------------------------------------------------


def test_an_office_file_that_expands_past_the_limit_is_refused_by_name(cli, tmp_path, monkeypatch):
    import zipfile

    folder = tmp_path / "docs"
    folder.mkdir()
    bomb = folder / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document>" + " " * 30_000_000 + "</w:document>")
    (folder / "fine.md").write_text("# Fine\n\nThe ferry leaves at nine.")
    assert bomb.stat().st_size < 200_000
    monkeypatch.setenv("ARCHIVIST_INGEST__MAX_UNZIPPED_MB", "10")
    code, out, err = cli("ingest", str(folder), "--index", str(tmp_path / "idx"), "--no-progress")
    assert code == 1 and "bomb.docx: expands to 30 MB when unpacked" in err and "ingest.max_unzipped_mb" in err
    assert "1 added" in err


def _pdf(path, pages=1, size=(612, 792)):
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    for _ in range(pages):
        pdf.new_page(*size)
    pdf.save(str(path))
    pdf.close()
    return path


def test_a_pdf_with_more_pages_than_the_limit_is_refused_before_any_is_read(cli, tmp_path, monkeypatch):
    folder = tmp_path / "docs"
    folder.mkdir()
    _pdf(folder / "endless.pdf", pages=60)
    monkeypatch.setenv("ARCHIVIST_INGEST__MAX_PAGES", "50")
    code, out, err = cli("ingest", str(folder), "--index", str(tmp_path / "idx"), "--no-progress")
    assert code == 1 and "endless.pdf: 60 pages, more than ingest.max_pages (50)" in err


def test_a_giant_page_is_rendered_for_ocr_within_the_pixel_limit(tmp_path, monkeypatch):
    from PIL import Image

    import ingest.pdf as pdf_module
    from ingest.limits import ParseLimits

    giant = _pdf(tmp_path / "giant.pdf", size=(14400, 14400))  # 200 x 200 inches: 3.6 gigapixels at 300 dpi
    assert giant.stat().st_size < 2000
    rendered = []

    def fake_tesseract(cmd, **kw):
        with Image.open(cmd[1]) as image:
            rendered.append(image.size)
        return subprocess.CompletedProcess(cmd, 0, stdout="", stderr="")

    monkeypatch.setattr(pdf_module, "tesseract_available", lambda: True)
    monkeypatch.setattr(pdf_module.subprocess, "run", fake_tesseract)
    pdf_module.parse_pdf(giant, limits=ParseLimits(ocr_megapixels=4))
    [(w, h)] = rendered
    assert w * h <= 4.1e6 and w > 1000
    assert ParseLimits().ocr_scale(612, 792) == 300 / 72  # an ordinary page keeps its 300 dpi


def test_a_file_past_the_chunk_limit_is_refused_and_the_job_goes_on(cli, tmp_path, monkeypatch):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "long.txt").write_text("\n\n".join(f"Paragraph {i} says the ferry {i} leaves at nine with "
                                                 "a long explanation of why." * 3 for i in range(40)))
    (folder / "short.txt").write_text("The crane lifts containers.")
    monkeypatch.setenv("ARCHIVIST_INGEST__MAX_CHUNKS_PER_FILE", "5")
    code, out, err = cli("ingest", str(folder), "--index", str(tmp_path / "idx"), "--no-progress")
    assert code == 1 and "long.txt:" in err and "more than ingest.max_chunks_per_file (5)" in err and "1 added" in err


def test_the_parser_process_is_held_to_its_memory_limit(tmp_path):
    from ingest.blocks import ParseError
    from ingest.limits import ParseLimits
    from ingest.worker import Parser

    bomb = tmp_path / "bomb.txt"
    bomb.write_bytes(b"a\n\n" * 7_000_000)  # 21 MB on disk, gigabytes as paragraphs in memory
    small = tmp_path / "small.txt"
    small.write_text("The ferry leaves at nine.")
    with Parser(limits=ParseLimits(parser_memory_mb=300)) as parser:
        with pytest.raises(ParseError, match="more than 300 MB of memory"):
            parser.parse(bomb)
        assert parser.parse(small).blocks[0].text == "The ferry leaves at nine."  # a fresh worker reads on
        (tmp_path / "limits").write_text(open(f"/proc/{parser._proc.pid}/limits").read())
    assert "Max address space         314572800" in (tmp_path / "limits").read_text()


# --- the weaker points -------------------------------------------------------------------------------


def test_a_sign_in_header_sent_twice_is_refused():
    from ui.auth import AuthError, identify_from_proxy

    kw = dict(user_header="X-Forwarded-User", groups_header="X-Forwarded-Groups", trusted_proxies=["10.0.0.5"])
    with pytest.raises(AuthError, match="more than once"):
        identify_from_proxy({"X-Forwarded-User": ["root", "eve"], "X-Forwarded-Groups": "staff"}, "10.0.0.5", **kw)
    with pytest.raises(AuthError, match="more than once"):
        identify_from_proxy({"X-Forwarded-User": "eve", "x-forwarded-groups": ["admin", "staff"]}, "10.0.0.5", **kw)
    assert identify_from_proxy({"X-Forwarded-User": ["eve"], "Accept": ["a", "b"]}, "10.0.0.5", **kw).user == "eve"


def test_the_files_of_an_index_and_its_data_are_for_the_service_account_only(cli, tmp_path):
    import stat

    old = os.umask(0o022)
    try:
        index = tmp_path / "idx"
        assert cli("ingest", str(_notes(tmp_path / "a", 2)), "--index", str(index), "--no-progress")[0] == 0
        cli("search", "ferry", "--index", str(index))
    finally:
        os.umask(old)
    made = [index, *index.rglob("*"), tmp_path / "data", *(tmp_path / "data").rglob("*")]
    assert any(p.name == "audit.sqlite" for p in made) and any(p.name == "archivist.sqlite" for p in made)
    for p in made:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode & 0o077 == 0, f"{p} is {oct(mode)}"


def test_the_web_server_never_sends_tracebacks_to_the_browser():
    from ui.cli import streamlit_command
    from ui.settings import load_settings

    cmd = streamlit_command(ROOT / "ui" / "web" / "app.py", load_settings(env={}))
    assert "--client.showErrorDetails=none" in cmd and "--server.enableXsrfProtection=true" in cmd


def test_one_over_long_question_does_not_stop_a_batch(cli, tmp_path):
    index = tmp_path / "idx"
    assert cli("ingest", str(_notes(tmp_path / "a", 2)), "--index", str(index), "--no-progress")[0] == 0
    batch = tmp_path / "q.jsonl"
    batch.write_text("\n".join(json.dumps(q) for q in [
        {"id": "a", "question": "When does the ferry leave?"}, {"id": "b", "question": "why " * 900},
        {"id": "c", "question": "When does the ferry to island 1 leave?"}]))
    code, out, err = cli("ask", "--questions", str(batch), "--index", str(index))
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c"] and "too long" in rows[1]["error"]
    assert "answer" in rows[2] and code == 1 and "1 of 3" in err
    code, out, err = cli("search", "--queries", str(batch), "--index", str(index))
    assert [json.loads(x)["id"] for x in out.splitlines()] == ["a", "b", "c"]


def test_user_management_model_removal_and_exports_are_audited(cli, tmp_path, monkeypatch):
    import io

    from qa.audit import AuditLog
    from qa.model_versions import ModelVersions

    index = str(tmp_path / "idx")
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough password\n"))
    assert cli("users", "add", "fin", "--groups", "finance", "--password-stdin", "--index", index)[0] == 0
    assert cli("users", "set-groups", "fin", "finance,hr", "--index", index)[0] == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("another long password\n"))
    assert cli("users", "passwd", "fin", "--password-stdin", "--index", index)[0] == 0
    assert cli("users", "remove", "fin", "--index", index)[0] == 0
    versions = ModelVersions(tmp_path / "data" / "models")
    vid, _folder = versions.new_folder()
    versions.register(vid, {})
    assert cli("models", "remove", vid, "--index", index)[0] == 0
    assert cli("audit", "--export", str(tmp_path / "a.csv"), "--index", index)[0] == 0
    entries = AuditLog(tmp_path / "data" / "audit.sqlite").entries()
    actions = {e.action for e in entries}
    assert {"user-add", "user-groups", "user-passwd", "user-remove", "model-remove", "export"} <= actions
    assert not any("password" in (e.detail or "") for e in entries)


def test_page_views_downloads_and_sign_out_are_audited(web):
    from ui.web import resources

    start, _users = web
    at = start()
    _ask_text(at, "How many days of annual leave?")
    svc = resources.services()
    actions = [e.action for e in svc.audit.entries(user="fin")]
    assert "view" in actions and "sign-in" in actions
    at.sidebar.button[[b.label for b in at.sidebar.button].index("Sign out")].click().run()
    assert "sign-out" in [e.action for e in svc.audit.entries(user="fin")]
