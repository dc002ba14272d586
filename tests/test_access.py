"""Access control, attacked: readers try to get at documents they may not read through every
face (search, ask, batch ask, docs, stats, eval, the web app), and through the side doors
(scores, counts, follow-ups, forged proxy headers, guessing passwords, page switching).

The corpus: a handbook everyone may read, board minutes (group board, by a settings rule)
and a salary table (group hr, by a sidecar). The secrets below must never reach eve.
"""

import json
import os
import shutil
import time

import pytest

from conftest import ROOT, sign_in, without_echoed_names
from ui.cli import main

SECRETS = ("Nightingale", "Harbour Logistics", "91 million", "4,100,000", "912000", "Lovelace", "874000")
HANDBOOK = ("# Employee handbook\n\nAnnual leave is 25 days per year. Salaries are reviewed every April by "
            "the board. The chief executive chairs the staff meeting every Monday.\n")
MINUTES = ("# Board minutes, 3 March\n\nProject Nightingale: the board approved buying Harbour Logistics for "
           "91 million euros. The chief executive salary rises to 4,100,000 kroner from 1 July.\n")
SALARIES = "name,role,salary\nAda Lovelace,engineer,912000\nAlan Turing,analyst,874000\n"
PASSWORD = "a long enough password"
ATTACKS = [
    "What did the board approve about Project Nightingale?",
    "How much is Harbour Logistics bought for?",
    "What is the chief executive salary?",
    "What is the salary of Ada Lovelace?",
    "salary",
    "Nightingale Harbour Logistics 91 million",
]
CONFIG = """
[access]
default = "deny"
[[access.rules]]
path = "**"
groups = ["everyone"]
[[access.rules]]
path = "board/**"
groups = ["board"]
"""


def _write_corpus(docs, with_restricted=True):
    (docs / "board").mkdir(parents=True, exist_ok=True)
    (docs / "hr").mkdir(exist_ok=True)
    (docs / "handbook.md").write_text(HANDBOOK)
    if with_restricted:
        (docs / "board" / "minutes.md").write_text(MINUTES)
        (docs / "hr" / "salaries.csv").write_text(SALARIES)
        (docs / "hr" / "salaries.csv.groups").write_text("# pay data\nhr\n")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """An ingested corpus with users eve (staff), bob (board), hana (hr), root (admin only)."""
    base = tmp_path_factory.mktemp("access")
    (base / "archivist.toml").write_text(CONFIG)
    _write_corpus(base / "docs")
    env = {"ARCHIVIST_EMBEDDER__MODEL": "fake", "ARCHIVIST_GENERATOR__BACKEND": "fake",
           "ARCHIVIST_ANSWER__MIN_CONFIDENCE": "0.3", "ARCHIVIST_ANSWER__MATCH_WEIGHT": "0", "ARCHIVIST_DATA_DIR": str(base / "data"),
           "ARCHIVIST_CONFIG": str(base / "archivist.toml"), "ARCHIVIST_INDEX": str(base / "data" / "index")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert main(["ingest", str(base / "docs"), "--no-progress"]) == 0
        from ui.auth import UserStore

        users = UserStore(base / "data" / "users.json")
        for name, groups in {"eve": ["staff"], "bob": ["board"], "hana": ["hr"], "root": ["admin"]}.items():
            users.add(name, PASSWORD, groups)
        yield base
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run(capsys, *argv):
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _no_secrets(text):
    """No secret in ``text`` beyond the attacker's own questions echoed back."""
    from ui.web.render import escape_md

    asked = ATTACKS + ["and how much was it?"]
    for q in asked:
        text = text.replace(escape_md(q), "").replace(json.dumps(q), "").replace(q, "")
    text = without_echoed_names(text, asked)
    leaked = [s for s in SECRETS if s.lower() in text.lower()]
    assert not leaked, f"leaked {leaked}: {text[:500]}"


# -- the policy ------------------------------------------------------------------------


def test_policy_sidecars_rules_and_default(tmp_path):
    from ingest.access import AccessPolicy, AccessRule

    root = tmp_path / "src"
    (root / "hr" / "pay").mkdir(parents=True)
    for f in ("a.txt", "hr/b.txt", "hr/pay/c.txt", "hr/pay/d.txt"):
        (root / f).write_text("x")
    policy = AccessPolicy([AccessRule("**", ("everyone",)), AccessRule("hr/**", ("hr",))])
    assert policy.groups_for("a.txt", root / "a.txt", root) == ("everyone",)
    assert policy.groups_for("hr/b.txt", root / "hr/b.txt", root) == ("hr",)  # the last matching rule wins
    (root / "hr" / "pay" / ".groups").write_text("payroll, hr-leads # the pay folder\n")
    assert policy.groups_for("hr/pay/c.txt", root / "hr/pay/c.txt", root) == ("hr-leads", "payroll")
    (root / "hr" / "pay" / "d.txt.groups").write_text("")  # an empty sidecar: nobody
    assert policy.groups_for("hr/pay/d.txt", root / "hr/pay/d.txt", root) == ()
    assert AccessPolicy().groups_for("x.txt") == ()  # no rule: deny
    assert AccessPolicy(default="everyone").groups_for("x.txt") == ("everyone",)
    (root / "hr" / ".groups").write_text("not/a group\n")
    with pytest.raises(ValueError, match="not a group name"):
        policy.groups_for("hr/b.txt", root / "hr/b.txt", root)


def test_a_malformed_sidecar_fails_the_file_closed_and_sidecars_are_not_indexed(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ARCHIVIST_EMBEDDER__MODEL", "fake")
    docs = tmp_path / "docs"
    _write_corpus(docs)
    (docs / "board" / ".groups").write_text("board members\n")  # fine: two groups
    (docs / "board" / "minutes.md.groups").write_text("board/secret\n")  # not a group name
    code, out, err = _run(capsys, "ingest", str(docs), "--index", str(tmp_path / "index"), "--no-progress", "--json")
    report = json.loads(out)
    status = {r["doc"]: r for r in report["files"]}
    assert status["board/minutes.md"]["status"] == "failed" and "access groups" in status["board/minutes.md"]["reason"]
    assert not any(d.endswith(".groups") for d in status)
    assert code == 1


def test_a_policy_change_regroups_without_re_embedding(tmp_path, capsys, monkeypatch):
    from retrieval import Index, SearchFilter
    from retrieval.embedder import FakeEmbedder

    monkeypatch.setenv("ARCHIVIST_EMBEDDER__MODEL", "fake")
    docs, index = tmp_path / "docs", tmp_path / "index"
    _write_corpus(docs)
    cfg = tmp_path / "a.toml"
    cfg.write_text(CONFIG)
    assert main(["ingest", str(docs), "--index", str(index), "--no-progress", "--config", str(cfg)]) == 0
    idx = Index(index, FakeEmbedder())
    gen = idx.generation
    staff = SearchFilter.for_groups(["staff"])
    assert not [h for h in idx.search("Nightingale", 5, filter=staff) if h.chunk.doc.startswith("board/")]
    calls = []
    monkeypatch.setattr(FakeEmbedder, "embed", lambda self, texts: calls.append(texts) or (_ for _ in ()).throw(AssertionError("re-embedded")))
    cfg.write_text(CONFIG.replace('groups = ["board"]', 'groups = ["board", "staff"]'))
    code, out, _ = _run(capsys, "ingest", str(docs), "--index", str(index), "--no-progress", "--config", str(cfg), "--json")
    assert code == 0 and not calls
    status = {r["doc"]: r["status"] for r in json.loads(out)["files"]}
    assert status == {"handbook.md": "unchanged", "board/minutes.md": "regrouped", "hr/salaries.csv": "unchanged"}
    idx = Index(index, FakeEmbedder())
    assert idx.generation == gen
    assert [h.chunk.doc for h in idx.search("Nightingale", 5, mode="lexical", filter=staff)][0] == "board/minutes.md"
    cfg.write_text(CONFIG)  # and back: taken away again
    assert main(["ingest", str(docs), "--index", str(index), "--no-progress", "--config", str(cfg)]) == 0
    assert not [h for h in Index(index, FakeEmbedder()).search("Nightingale", 5, filter=staff) if h.chunk.doc.startswith("board/")]


# -- the command line ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_search_as_eve_never_shows_restricted_chunks(site, capsys, mode):
    for q in ATTACKS:
        code, out, _ = _run(capsys, "search", q, "--json", "--mode", mode, "-k", "10", "--user", "eve")
        assert code == 0
        docs = {r["doc"] for r in json.loads(out)["results"]}
        assert docs <= {"handbook.md"}, (q, docs)
        _no_secrets(out)
    code, out, _ = _run(capsys, "search", "salary", "--json", "--doc-prefix", "board/", "--user", "eve")
    assert json.loads(out)["results"] == []
    code, out, _ = _run(capsys, "search", "Nightingale", "--json", "--mode", mode, "--user", "bob")
    assert json.loads(out)["results"][0]["doc"] == "board/minutes.md"


def test_ask_as_eve_is_built_from_nothing_restricted(site, capsys, tmp_path):
    for q in ATTACKS:
        code, out, _ = _run(capsys, "ask", q, "--json", "--user", "eve")
        assert code == 0
        ans = json.loads(out)
        assert {c["doc"] for c in ans["citations"]} <= {"handbook.md"}
        _no_secrets(out)
    batch = tmp_path / "q.jsonl"
    batch.write_text("".join(json.dumps({"id": str(i), "question": q}) + "\n" for i, q in enumerate(ATTACKS)))
    code, out, _ = _run(capsys, "ask", "--questions", str(batch), "--json", "--user", "eve")
    assert code == 0 and len(out.splitlines()) == len(ATTACKS)
    _no_secrets(out)
    # the readers who may: answered from their documents
    code, out, _ = _run(capsys, "ask", "What did the board approve about Project Nightingale?", "--json", "--user", "bob")
    ans = json.loads(out)
    assert not ans["abstained"] and ans["citations"][0]["doc"] == "board/minutes.md" and "Harbour Logistics" in out
    code, out, _ = _run(capsys, "ask", "What is the salary of Ada Lovelace?", "--json", "--user", "hana")
    assert "hr/salaries.csv" in {c["doc"] for c in json.loads(out)["citations"]} and "912000" in out


def test_docs_and_stats_count_only_what_the_reader_may_read(site, capsys):
    code, out, _ = _run(capsys, "docs", "--json", "--user", "eve")
    assert [d["doc"] for d in json.loads(out)] == ["handbook.md"]
    code, out, _ = _run(capsys, "stats", "--json", "--user", "eve")
    eve = json.loads(out)
    code, out, _ = _run(capsys, "stats", "--json", "--user", "bob")
    bob = json.loads(out)
    code, out, _ = _run(capsys, "stats", "--json")  # the operator
    everything = json.loads(out)
    assert (eve["documents"], bob["documents"], everything["documents"]) == (1, 2, 3)
    assert eve["chunks"] < bob["chunks"] < everything["chunks"]
    assert eve["size_bytes"] is None and everything["size_bytes"] > 0  # the folder's size counts every document
    code, out, _ = _run(capsys, "docs", "--json", "--user", "root")  # admin is not a master key
    assert [d["doc"] for d in json.loads(out)] == ["handbook.md"]


def test_eval_as_eve_finds_and_cites_nothing_restricted(site, capsys, tmp_path):
    qset = tmp_path / "set"
    shutil.copytree(site / "docs", qset / "docs")
    rows = [{"id": "n1", "question": ATTACKS[0], "answers": ["Harbour Logistics"], "answerable": True,
             "evidence": [{"doc": "board/minutes.md", "page": None}]},
            {"id": "s1", "question": ATTACKS[3], "answers": ["912000"], "answerable": True,
             "evidence": [{"doc": "hr/salaries.csv", "page": None}]}]
    (qset / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, _ = _run(capsys, "eval", str(qset), "--json", "--user", "eve", "--out", str(tmp_path / "eve"))
    assert code == 0
    report = json.loads((tmp_path / "eve" / "report.json").read_text())
    for r in report["rows"]["base"]:
        _no_secrets(json.dumps({k: v for k, v in r.items() if k != "gold"}))  # the gold answers are the set's own
        assert not r["evidence_doc"] and not any(r["cited_ok"])
        assert not any(c["doc"] != "handbook.md" for c in r["citations"])
    code, out, _ = _run(capsys, "eval", str(qset), "--json", "--user", "bob", "--out", str(tmp_path / "bob"))
    bob = json.loads((tmp_path / "bob" / "report.json").read_text())
    assert any(r["citations"] and r["citations"][0]["doc"] == "board/minutes.md" for r in bob["rows"]["base"])


def test_scores_and_order_do_not_depend_on_restricted_documents(site, tmp_path, capsys, monkeypatch):
    """A restricted chunk cannot even shift what eve sees: her results are the same, scores
    included, as on an index that never held the restricted documents."""
    monkeypatch.setenv("ARCHIVIST_EMBEDDER__MODEL", "fake")
    monkeypatch.delenv("ARCHIVIST_INDEX")
    docs = tmp_path / "public"
    _write_corpus(docs, with_restricted=False)
    assert main(["ingest", str(docs), "--index", str(tmp_path / "public-index"), "--no-progress"]) == 0
    for mode in ("hybrid", "dense", "lexical"):
        for q in ATTACKS + ["annual leave days", "who chairs the staff meeting"]:
            _, full, _ = _run(capsys, "search", q, "--json", "--mode", mode, "--user", "eve", "--index", str(site / "data" / "index"))
            _, clean, _ = _run(capsys, "search", q, "--json", "--mode", mode, "--user", "eve", "--index", str(tmp_path / "public-index"))
            strip = lambda out: [(r["chunk_id"], r["score"]) for r in json.loads(out)["results"]]  # noqa: E731
            assert strip(full) == strip(clean), (mode, q)


def test_users_file_keeps_only_salted_slow_hashes(site, tmp_path, capsys, monkeypatch):
    from ui.auth import AuthError, UserStore, verify_password

    path = site / "data" / "users.json"
    text = path.read_text()
    assert PASSWORD not in text and "scrypt$" in text
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    hashes = [u["hash"] for u in json.loads(text)["users"].values()]
    assert len(set(hashes)) == len(hashes)  # the same password, four different salts
    assert verify_password(PASSWORD, hashes[0]) and not verify_password(PASSWORD + "x", hashes[0])
    store = UserStore(tmp_path / "u.json", max_failures=3, lockout_s=60)
    store.add("mallory-target", PASSWORD, ["hr"])
    for _ in range(3):
        with pytest.raises(AuthError, match="unknown user name or wrong password"):
            store.authenticate("mallory-target", "guess")
    with pytest.raises(AuthError, match="too many failed"):
        store.authenticate("mallory-target", PASSWORD)  # locked, even with the right password
    with pytest.raises(AuthError, match="unknown user name or wrong password"):
        store.authenticate("nobody", PASSWORD)  # the same message for an unknown name
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("short\n"))
    code, _, err = _run(capsys, "users", "add", "zed", "--password-stdin", "--config", str(site / "archivist.toml"))
    assert code == 2 and "at least" in err


def test_audit_log_records_who_asked_what_and_what_was_cited(site, capsys, tmp_path):
    from qa.audit import AuditLog

    _run(capsys, "ask", "What did the board approve about Project Nightingale?", "--json", "--user", "bob")
    _run(capsys, "ask", "How many days of annual leave?", "--json", "--user", "eve")
    code, out, _ = _run(capsys, "audit", "--json", "--action", "ask", "-n", "2")
    entries = [json.loads(line) for line in out.splitlines()]
    eve, bob = entries
    assert eve["user"] == "eve" and "annual leave" in eve["question"] and eve["retrieved"]
    assert bob["user"] == "bob" and bob["cited"] and bob["answer"]
    assert all(not c.startswith("board/") for c in eve["retrieved"])
    export = tmp_path / "audit.csv"
    assert main(["audit", "--export", str(export), "--user", "eve"]) == 0
    import csv

    rows = list(csv.DictReader(export.open()))
    assert rows and {r["user"] for r in rows} == {"eve"} and any("annual leave" in r["question"] for r in rows)
    log = AuditLog(site / "data" / "audit.sqlite", retention_days=30)
    log._con.execute("UPDATE audit SET ts = ? WHERE user = 'eve'", (time.time() - 40 * 86400,))
    assert log.purge() >= 1 and not log.entries(user="eve")
    assert oct((site / "data" / "audit.sqlite").stat().st_mode & 0o777) == "0o600"


def test_audit_can_be_switched_off(site, capsys, monkeypatch):
    from qa.audit import AuditLog

    before = len(AuditLog(site / "data" / "audit.sqlite", 0).entries(limit=None))
    monkeypatch.setenv("ARCHIVIST_AUDIT__ENABLED", "false")
    _run(capsys, "ask", "How many days of annual leave?", "--json", "--user", "eve")
    assert len(AuditLog(site / "data" / "audit.sqlite", 0).entries(limit=None)) == before


def test_proxy_identity_is_believed_only_from_the_proxy():
    from ui.auth import AuthError, identify_from_proxy

    kw = dict(user_header="X-Forwarded-User", groups_header="X-Forwarded-Groups", trusted_proxies=["10.0.0.5", "192.168.7.0/24"])
    headers = {"x-forwarded-user": "bob", "X-Forwarded-Groups": "board, staff"}
    ident = identify_from_proxy(headers, "10.0.0.5", **kw)
    assert ident.user == "bob" and ident.groups == {"board", "staff"} and not ident.is_admin
    assert identify_from_proxy(headers, "192.168.7.44", **kw).user == "bob"
    for peer in ("10.0.0.6", "8.8.8.8", None, "not-an-ip", "::1"):
        with pytest.raises(AuthError, match="only from the company's sign-in proxy"):
            identify_from_proxy(headers, peer, **kw)
    with pytest.raises(AuthError, match="did not pass a valid user"):
        identify_from_proxy({"X-Forwarded-Groups": "admin"}, "10.0.0.5", **kw)


# -- the web app ---------------------------------------------------------------------


@pytest.fixture
def web(site, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from ui.web import resources

    data = tmp_path / "data"
    shutil.copytree(site / "data", data)
    monkeypatch.setenv("ARCHIVIST_DATA_DIR", str(data))
    monkeypatch.setenv("ARCHIVIST_INDEX", str(data / "index"))
    resources._services.clear()

    def make():
        at = AppTest.from_file(str(ROOT / "ui" / "web" / "app.py"), default_timeout=60)
        at.run()
        assert not at.exception, at.exception
        return at

    yield make
    resources._services.clear()


def _sign_in(at, user, password=PASSWORD):
    return sign_in(at, user, password)


def _page_text(at) -> str:
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "subheader"):
        parts += [str(getattr(e, "value", "")) for e in at.get(kind)]
    parts += [e.label for e in at.expander]
    for df in at.dataframe:
        parts.append(df.value.to_csv())
    return "\n".join(parts)


def test_every_page_needs_sign_in(web):
    for page in ("Ask", "Admin", "Evaluate", "Audit log"):
        at = web()
        at.session_state["page"] = page
        at.run()
        assert at.text_input(key="signin_user") is not None
        assert not at.chat_input and not at.metric and not at.dataframe
        assert [t.value for t in at.title] == ["Archivist"]


def test_wrong_password_is_refused_and_audited(web, site):
    at = _sign_in(web(), "eve", "not the password")
    assert any("wrong password" in e.value for e in at.error)
    assert not at.chat_input


def test_eve_in_the_web_app_sees_nothing_restricted(web):
    at = _sign_in(web(), "eve")
    assert not at.sidebar.radio  # the Ask page alone: no Admin, Evaluate or Audit log, and no menu
    assert any("1 document you may read" in c.value for c in at.caption)
    for q in ATTACKS[:4] + ["and how much was it?"]:  # the last one a follow-up of the ones before
        at.chat_input[0].set_value(q).run()
        assert not at.exception, at.exception
    _no_secrets(_page_text(at))
    # a session that asks for an admin page from the start gets the Ask page
    forced = web()
    forced.session_state["identity"] = at.session_state["identity"]
    forced.session_state["page"] = "Admin"
    forced.run()
    assert not forced.exception and [t.value for t in forced.title] == ["Ask the company documents"] and not forced.metric


def test_a_non_admin_cannot_reach_admin_pages_even_when_called(web):
    """Each admin page checks the identity itself, not only the menu."""
    from ui.auth import Identity
    from ui.web import admin_page, audit_page, eval_page

    for render in (admin_page.render, eval_page.render, audit_page.render):
        with pytest.raises(PermissionError):
            render(None, Identity("eve", frozenset({"staff"})))


def test_bob_in_the_web_app_gets_the_board_answer_and_the_admin_sees_the_audit(web):
    at = _sign_in(web(), "bob")
    at.chat_input[0].set_value(ATTACKS[0]).run()
    assert "Harbour Logistics" in _page_text(at)
    admin = _sign_in(web(), "root")
    assert list(admin.sidebar.radio[0].options) == ["Ask", "Admin", "Evaluate", "Audit log"]
    admin.sidebar.radio[0].set_value("Audit log").run()
    assert not admin.exception, admin.exception
    table = admin.dataframe[0].value
    assert "bob" in set(table["user"]) and "ask" in set(table["action"])
    assert any(b.label == "Export CSV" for b in admin.get("download_button"))
    # the admin's own counts are filtered too: root (admin only) reads the handbook alone
    admin.sidebar.radio[0].set_value("Admin").run()
    assert next(m for m in admin.metric if m.label == "Documents").value == "1"


def test_proxy_mode_refuses_forged_headers_from_elsewhere(web, monkeypatch):
    from ui.web import signin

    monkeypatch.setenv("ARCHIVIST_AUTH__MODE", "proxy")
    monkeypatch.setenv("ARCHIVIST_AUTH__TRUSTED_PROXIES", "10.0.0.5")
    monkeypatch.setattr(signin, "_request_headers", lambda: {"X-Forwarded-User": "bob", "X-Forwarded-Groups": "board,admin"})
    monkeypatch.setattr(signin, "_peer_address", lambda: "10.66.6.6")
    at = web()
    assert any("Not signed in" in e.value for e in at.error)
    assert not at.chat_input and not at.sidebar.radio
    monkeypatch.setattr(signin, "_peer_address", lambda: "10.0.0.5")
    at = web()
    assert at.chat_input and "Admin" in at.sidebar.radio[0].options
    at.chat_input[0].set_value(ATTACKS[0]).run()
    assert "Harbour Logistics" in _page_text(at)


def test_document_text_is_shown_as_text_never_as_html(web, site, tmp_path, monkeypatch):
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    (hostile / "note.md").write_text("# Canteen\n\nThe canteen menu <script>alert(1)</script> is "
                                     "<img src=x onerror=alert(2)> at [the link](javascript:alert(3)) today.\n")
    monkeypatch.setenv("ARCHIVIST_ACCESS__DEFAULT", "everyone")
    assert main(["ingest", str(hostile), "--no-progress"]) == 0
    at = _sign_in(web(), "eve")
    at.chat_input[0].set_value("What is on the canteen menu today?").run()
    shown = [m.value for m in at.markdown]
    assert any("canteen menu" in m for m in shown)
    for m in shown:
        assert "<script" not in m and "<img" not in m and "](javascript" not in m


def test_uploads_over_the_limit_or_of_unknown_types_are_refused(web, monkeypatch):
    monkeypatch.setenv("ARCHIVIST_WEB__MAX_UPLOAD_MB", "1")
    at = _sign_in(web(), "root")
    at.sidebar.radio[0].set_value("Admin").run()
    at.file_uploader(key="uploads").set_value([
        ("big.txt", b"x" * 1_500_000, "text/plain"),
        ("tool.exe", b"MZ...", "application/octet-stream"),
    ]).run()
    at.button[[b.label for b in at.button].index("Ingest the uploaded files")].click().run()
    errors = " ".join(e.value for e in at.error)
    assert "larger than 1 MB" in errors and "not a supported file type" in errors
