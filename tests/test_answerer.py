import pytest

from qa import ABSTAIN_TEXT, Answer, Answerer, AnswerOptions, FakeGenerator
from qa.answer import Evidence
from qa.evidence import EvidenceOptions
from retrieval import Chunk, DocumentInfo, SearchFilter

LEAVE_Q = "How many days of paid annual leave does every employee get?"


@pytest.fixture
def index(make_index):
    idx = make_index()
    docs = {
        "hr/leave.txt": ["Every employee receives 25 days of paid annual leave per year. Unused days expire in March.",
                         "Sick leave needs a doctor's note from the fourth day."],
        "it/vpn.txt": ["Connect to the VPN with your badge and PIN. The VPN is required outside the office."],
        "board/salaries.txt": ["The executive salary table lists the chief executive at 4 million."],
    }
    with idx.writer() as w:
        for doc, texts in docs.items():
            groups = ("board",) if doc.startswith("board/") else ("everyone",)
            chunks = [Chunk(id=f"{doc}#{i}", doc=doc, text=t, ordinal=i, groups=groups) for i, t in enumerate(texts)]
            w.add_document(DocumentInfo(doc=doc), chunks)
        w.commit()
    return idx


def _answerer(index, gen=None, **opts):
    # the fake embedder's cosines are lower than a real model's: threshold scaled for it, and the
    # sentence match (built on the same cosines) left out; the real-model tier checks the default
    options = AnswerOptions(min_confidence=0.3, match_weight=0.0, **opts)
    return Answerer(index, gen or FakeGenerator(), options)


def test_a_question_dressed_in_instructions_is_answered_as_asked(index):
    """"Answer in USD millions." and "Give a response to the question ..." are not what is asked: the
    capital "Give" and the currency "USD" were taken for names no document uses, and the question refused."""
    plain = _answerer(index).ask(LEAVE_Q)
    for dressed in (f"{LEAVE_Q} Give a response to the question by relying on the details shown in the documents.",
                    f"Assume that you are an HR adviser. Answer the following question: {LEAVE_Q} Answer in USD."):
        ans = _answerer(index).ask(dressed)
        assert not ans.abstained, ans.reason
        assert (ans.answer, ans.citations[0].chunk.doc) == (plain.answer, plain.citations[0].chunk.doc)
        assert ans.question == dressed


def test_an_answer_in_three_parts(index):
    ans = _answerer(index).ask(LEAVE_Q)
    assert not ans.abstained
    assert "25 days" in ans.answer and "25 days" in ans.quote
    assert ans.citations[0].chunk.doc == "hr/leave.txt"
    assert "(answer '25 days')" in ans.reason
    data = ans.to_json("q1")
    assert list(data) == ["id", "question", "answer", "quote", "abstained", "citations", "timings", "reason"]
    assert data["id"] == "q1" and data["citations"][0]["n"] == 1 and data["citations"][0]["doc"] == "hr/leave.txt"
    assert set(data["citations"][0]) == {"n", "doc", "page", "section", "chunk_id", "text", "score"}
    assert ans.text.startswith(ans.answer) and "“" in ans.text  # everything shown: answer, then the quote


def test_abstains_on_an_unrelated_question_but_lists_closest(index):
    gen = FakeGenerator()
    ans = _answerer(index, gen, phrasing="model").ask("What is the incubation period of influenza viruses in ferrets?")
    assert ans.abstained and ans.answer == ABSTAIN_TEXT and ans.citations == [] and ans.quote == ""
    assert ans.hits  # the closest passages are still there to read
    assert gen.calls == []  # the model was not even asked


def test_a_wrong_draft_is_never_streamed_nor_shown(index):
    invented = FakeGenerator(reply="Employees receive 40 days of leave and a free car [1].")
    events = list(_answerer(index, invented, phrasing="model").stream(LEAVE_Q))
    assert isinstance(events[0], Evidence) and "25 days" in events[0].quote  # the quote first
    assert isinstance(events[-1], Answer) and len(events) == 2  # then the checked answer; nothing between
    for e in events:
        shown = e.quote if isinstance(e, Evidence) else e.text
        assert "40" not in shown and "car" not in shown
    assert "25 days" in events[-1].answer and "lacks the answer '25 days'" in events[-1].reason


def test_the_model_phrases_the_answer_when_it_holds_the_span(index):
    good = FakeGenerator(reply="Each employee gets 25 days of paid annual leave a year [1]. And a long story after.")
    ans = _answerer(index, good, phrasing="model").ask(LEAVE_Q)
    assert ans.answer == "Each employee gets 25 days of paid annual leave a year."  # first sentence, no citation mark
    assert ans.reason.startswith("phrased by the model")
    assert ans.quote.startswith("Every employee receives 25 days")


@pytest.mark.parametrize("reply, why", [
    ("I could not find this in the documents.", "found no answer"),
    ("The passages do not mention it.", "found no answer"),
    ("Employees get 25 days plus a company car, yacht, horse, villa and helicopter [1].", "not supported"),
    ("How many days of paid annual leave does every employee get 25 days?", "only restated"),
    ("", "found no answer"),
])
def test_every_rejected_phrasing_explains_itself(index, reply, why):
    ans = _answerer(index, FakeGenerator(reply=reply), phrasing="model").ask(LEAVE_Q)
    if "restated" in why:  # holds the span and is backed, but says nothing the question did not
        reply_terms = "restated" in ans.reason or ans.reason.startswith("phrased")
        assert reply_terms
    else:
        assert why in ans.reason
    assert not ans.abstained and "25 days" in ans.answer and ans.citations


def test_a_number_from_the_wrong_row_is_not_shown(make_index):
    idx = make_index()
    table = ("The birth parent is entitled to 18 weeks of parental leave at full pay.\n"
             "| Parent | Weeks at full pay | Notice required |\n| --- | --- | --- |\n"
             "| Other parent | 12 | 4 weeks |")
    with idx.writer() as w:
        w.add_document(DocumentInfo(doc="leave.docx"), [Chunk(id="p1", doc="leave.docx", text=table)])
        w.commit()
    q = "How many weeks of paid parental leave does the birth parent get?"
    wrong = FakeGenerator(reply="The birth parent gets 4 weeks of paid parental leave [1].")
    ans = _answerer(idx, wrong, phrasing="model").ask(q)
    assert "4 weeks" not in ans.answer and "18 weeks" in ans.answer
    right = FakeGenerator(reply="The birth parent gets 18 weeks of paid parental leave [1].")
    ans = _answerer(idx, right, phrasing="model").ask(q)
    assert ans.answer.startswith("The birth parent gets 18 weeks") and ans.reason.startswith("phrased")


def _table_index(make_index, doc: str, table: str):
    """An index of one document that is one table chunk."""
    idx = make_index()
    with idx.writer() as w:
        w.add_document(DocumentInfo(doc=doc), [Chunk(id="t1", doc=doc, text=table, kind="table")])
        w.commit()
    return idx


def test_a_table_answer_is_quoted_as_a_table(make_index):
    table = ("Parental leave by parent.\n| Parent | Weeks at full pay | Notice required |\n| --- | --- | --- |\n"
             "| Birth parent | 18 | 8 weeks |\n| Other parent | 12 | 4 weeks |")
    idx = _table_index(make_index, "leave.docx", table)
    ans = _answerer(idx).ask("How many weeks at full pay does the other parent get?")
    assert ans.quote.splitlines()[0] == "| Parent | Weeks at full pay | Notice required |"
    assert ans.quote.splitlines()[1] == "| --- | --- | --- |"
    assert "| Other parent | 12 | 4 weeks |" in ans.quote.splitlines()
    assert ans.answer == "Parent: Other parent; Weeks at full pay: 12; Notice required: 4 weeks"


def test_a_table_answer_gives_the_column_of_the_period_asked(make_index):
    """A statement holds this year and the one before side by side: asked for one year, the short
    answer reads that column alone; asked for none, every column."""
    table = ("| | Year Ended December 31, 2023 | Year Ended December 31, 2022 |\n| --- | --- | --- |\n"
             "| Net income | 570.6 | 523.4 |\n| Diluted earnings per share | 6.01 | 5.51 |")
    idx = _table_index(make_index, "annual.pdf", table)
    answerer = _answerer(idx)
    assert answerer.ask("What were the diluted earnings per share in fiscal 2022?").answer == (
        "Diluted earnings per share; Year Ended December 31, 2022: 5.51")
    assert answerer.ask("What were the diluted earnings per share for FY2023?").answer == (
        "Diluted earnings per share; Year Ended December 31, 2023: 6.01")
    assert answerer.ask("What were the diluted earnings per share?").answer == (
        "Diluted earnings per share; Year Ended December 31, 2023: 6.01; Year Ended December 31, 2022: 5.51")


def test_the_row_named_by_what_is_asked_answers_not_a_row_that_says_more(make_index):
    """Asked for revenue, the "Revenue" row answers, not "Cost of revenue" above it: both hold every
    word asked, but only one names nothing else."""
    table = ("| | Three Months Ended June 30, 2023 | Three Months Ended June 30, 2022 |\n| --- | --- | --- |\n"
             "| Cost of revenue | 408.5 | 422.7 |\n| Revenue | 752.7 | 704.5 |\n| Cost of revenue growth | 3.1 | 2.0 |")
    idx = _table_index(make_index, "q2.pdf", table)
    ans = _answerer(idx).ask("What was revenue for the three months ended June 30, 2023?")
    assert ans.answer == "Revenue; Three Months Ended June 30, 2023: 752.7"


def _filings(make_index, q2: str, q3: str):
    """An index of two quarterly filings of one company, worded alike: revenue 41 (``q2``) and 47 (``q3``)."""
    idx = make_index()
    text = "Revenue for the quarter was {} million euros, driven by licence sales."
    with idx.writer() as w:
        for doc, amount in ((q2, "41"), (q3, "47")):
            w.add_document(DocumentInfo(doc=doc), [Chunk(id=doc, doc=doc, text=text.format(amount))])
        w.commit()
    return idx


def test_the_sibling_document_named_in_the_question_is_cited(make_index):
    idx = _filings(make_index, "filings/acme-q2-2023.txt", "filings/acme-q3-2023.txt")
    for quarter, amount in (("Q3", "47"), ("Q2", "41")):
        ans = _answerer(idx).ask(f"What was Acme's revenue in {quarter} 2023?")
        assert ans.citations[0].chunk.doc == f"filings/acme-{quarter.lower()}-2023.txt"
        assert amount in ans.answer


def test_a_period_spelt_another_way_still_names_the_sibling(make_index):
    """Filings named 2023Q2 / 2023Q3, asked about "the third quarter of fiscal 2023" or "Q2'23"."""
    idx = _filings(make_index, "filings/ACME_2023Q2_10-Q.txt", "filings/ACME_2023Q3_10-Q.txt")
    for question, doc, amount in (
            ("What was Acme's revenue in the third quarter of fiscal 2023?", "filings/ACME_2023Q3_10-Q.txt", "47"),
            ("What was Acme's revenue in Q2'23?", "filings/ACME_2023Q2_10-Q.txt", "41"),
            ("What was Acme's revenue in 3Q23?", "filings/ACME_2023Q3_10-Q.txt", "47")):
        ans = _answerer(idx).ask(question)
        assert ans.citations[0].chunk.doc == doc, question
        assert amount in ans.answer


@pytest.mark.parametrize("text,periods", [
    ("What did they report for the third quarter of fiscal 2023?", {"q3", "2023"}),
    ("ACME_2023Q3_10-Q.pdf", {"q3", "2023"}),
    ("Q3'23 earnings call", {"q3", "2023"}),
    ("3Q23 results", {"q3", "2023"}),
    ("Q3 FY23", {"q3", "2023"}),
    ("FY2022 annual report", {"2022"}),
    ("first half of 2024", {"h1", "2024"}),
    ("H1N1 influenza in 23 patients", set()),  # a virus and a count, not periods
    ("Q4 12 stores opened", {"q4"}),  # two digits after a space are not a year
    ("For the quarterly period ended September 30, 2023", {"q3", "2023"}),
    ("three months ended Jun. 30, 2024", {"q2", "2024"}),
    ("six months ended June 30, 2024", {"h1", "2024"}),
    ("nine months ended September 30, 2023", {"2023"}),  # a span of three quarters: its year only
])
def test_periods_are_read_in_one_spelling(text, periods):
    from retrieval.periods import period_terms

    assert period_terms(text) == periods


def test_the_words_spelling_a_period_count_as_the_period_alone():
    from qa.evidence import terms_with_periods

    assert terms_with_periods("What was revenue in the second quarter of 2023?") == {"revenu", "q2", "2023"}
    assert terms_with_periods("Revenue in Q2 2023") == terms_with_periods("revenue for the second quarter of 2023")
    # "quarterly" in a name is a word; "quarterly period ended June 30, 2023" is a period
    assert terms_with_periods("Quarterly report for the quarterly period ended June 30, 2023.") == \
        {"quarter", "report", "q2", "2023"}
    assert terms_with_periods("H1N1 in 2019") == {"h1n1", "2019"}


def test_an_opening_names_what_the_document_is_about():
    from ingest.opening import opening_names

    cover = ("UNITED STATES SECURITIES AND EXCHANGE COMMISSION\nFORM 10-Q\nFor the quarterly period ended "
             "June 30, 2023\nNORTHSTAR ROBOTICS, INC.\nTrading symbol: NSTR. The registrant files reports.")
    names = opening_names(cover)
    assert {"FORM", "10-Q", "NORTHSTAR", "ROBOTICS", "NSTR"} <= set(names)
    assert "The" not in names and "For" not in names  # capitals that only open a sentence of plain words
    assert opening_names("Northwind Health Plus Benefits Details\nThe plan covers you.")[:3] == \
        ["Northwind", "Health", "Plus"]  # a title in capitals is a name, from its first word
    assert len(opening_names(" ".join(f"Name{i}x" for i in range(100)))) == 40  # at most MAX_NAMES


def test_the_names_are_read_from_the_front_matter_not_the_contents():
    from ingest import Block
    from ingest.opening import opening_meta

    policy = [Block("title", "Parental Leave Policy"), Block("text", "Brightwater Instruments supports parents."),
              Block("title", "Entitlement"), Block("table", "| Parent | Weeks |\n| --- | --- |\n| Other | 12 |")]
    assert opening_meta(policy) == {"names": ["Parental", "Leave", "Policy", "Brightwater", "Instruments"]}
    filing = [Block("title", "FORM 10-Q", 1), Block("text", "ACME CORP. For the quarterly period ended June 30, 2023.", 1),
              Block("title", "Results", 2), Block("text", "Revenue in Oslo was 5.", 2)]
    assert opening_meta(filing) == {"periods": ["2023", "q2"], "names": ["FORM", "10-Q", "ACME", "CORP", "June"]}


def test_an_opening_states_its_periods_but_a_lone_year_is_not_one():
    from retrieval.periods import stated_periods

    assert stated_periods("ACME Corp. Form 10-Q. For the quarterly period ended June 30, 2023. "
                          "Incorporated in 1985. Copyright 2023.") == ["2023", "q2"]
    assert stated_periods("Incorporated in 1985. Copyright 2023.") == []
    assert stated_periods("x" * 3000 + " Q3 2023") == []  # only the opening is read
    # the document's own period comes first; a comparison with last year's does not make it that year's
    assert stated_periods("Q3 2026 Results\n| Product line | Q3 2025 (NOK m) | Q3 2026 (NOK m) |") == ["2026", "q3"]
    assert stated_periods("Carriers of the H1 and H3 haplotypes were followed in 2019.") == []  # H1 with no year


def test_filings_with_names_that_say_nothing_are_told_apart_by_the_period_their_cover_states(make_index):
    """Two quarterly filings of one company under code names, chunked as ingest chunks them: the cover
    states the quarter, the revenue pages are worded alike."""
    from ingest import Block, Chunker, ChunkingOptions, ParsedDocument
    from retrieval import FakeEmbedder

    chunker = Chunker(FakeEmbedder().count_tokens, ChunkingOptions(max_tokens=64, target_tokens=30, min_tokens=4))
    idx = make_index()
    filings = {"filings/0000950170-23-035122.txt": ("June 30, 2023", "41"),
               "filings/0000950170-23-054321.txt": ("September 30, 2023", "47")}
    with idx.writer() as w:
        for doc, (ended, amount) in filings.items():
            parsed = ParsedDocument(blocks=[
                Block("title", "Form 10-Q", 1), Block("text", f"For the quarterly period ended {ended}.", 1),
                Block("title", "Results of operations", 2),
                Block("text", f"Revenue for the quarter was {amount} million euros, driven by licence sales.", 2)])
            chunks = chunker.chunk(doc, parsed)
            assert {tuple(c.meta["periods"]) for c in chunks} == {("2023", "q2" if amount == "41" else "q3")}
            w.add_document(DocumentInfo(doc=doc), chunks)
        w.commit()
    for question, amount in (("What was revenue in Q3 2023?", "47"), ("What was revenue in the second quarter of 2023?", "41")):
        ans = _answerer(idx).ask(question)
        doc = next(d for d, (_, a) in filings.items() if a == amount)
        assert ans.citations[0].chunk.doc == doc and amount in ans.answer, question


def _covered_filings(make_index, filings: dict[str, tuple[str, str, str]]):
    """Quarterly filings chunked as ingest chunks them (doc -> company, quarter, revenue): the cover names
    the company and the date the quarter ends, the results page the quarter in words, worded alike in all."""
    from ingest import Block, Chunker, ChunkingOptions, ParsedDocument
    from retrieval import FakeEmbedder

    ends = {"second": "June 30", "third": "September 30"}
    chunker = Chunker(FakeEmbedder().count_tokens, ChunkingOptions(max_tokens=64, target_tokens=30, min_tokens=4))
    idx = make_index()
    with idx.writer() as w:
        for doc, (company, quarter, amount) in filings.items():
            parsed = ParsedDocument(blocks=[
                Block("title", "Form 10-Q", 1),
                Block("text", f"{company.upper()}. Quarterly report for the quarterly period ended {ends[quarter]}, 2023.", 1),
                Block("title", "Results of operations", 2),
                Block("text", f"Revenue for the {quarter} quarter of 2023 was {amount} million euros, driven by "
                              "strong licence sales.", 2)])
            w.add_document(DocumentInfo(doc=doc), chunker.chunk(doc, parsed))
        w.commit()
    return idx


def test_the_page_that_answers_speaks_for_the_company_and_quarter_its_cover_names(make_index):
    """The question names the company and the quarter; only the covers name the company, and the answer
    is on the results page: the right filing's results page is cited, not its cover, which holds more
    of the question's words, nor the other company's page for the same quarter."""
    filings = {"filings/a.txt": ("Northstar Robotics", "second", "41"),
               "filings/b.txt": ("Northstar Robotics", "third", "47"),
               "filings/c.txt": ("Pinecrest Energy", "second", "88")}
    idx = _covered_filings(make_index, filings)
    questions = (("What was Northstar Robotics' revenue in Q3 2023?", "filings/b.txt", "47"),
                 ("What was Northstar Robotics' revenue in the second quarter of 2023?", "filings/a.txt", "41"),
                 ("What was Pinecrest Energy's revenue in Q2 2023?", "filings/c.txt", "88"),
                 ("What drove Pinecrest Energy's revenue growth in Q2 2023?", "filings/c.txt", "licence sales"))
    for question, doc, answer in questions:
        ans = _answerer(idx).ask(question)
        assert ans.citations[0].chunk.doc == doc, question
        assert answer in ans.answer and ans.quote.startswith("Revenue"), (question, ans.quote)



def test_what_a_document_is_about_counts_only_beside_what_the_sentence_says_of_the_question():
    from qa.evidence import held

    asked = dict.fromkeys(["northstar", "robot", "revenu", "q2", "2023"], 1.0)  # Northstar Robotics' revenue in Q2 2023
    about = {"northstar", "robot", "q2", "2023"}  # the Q2 filing's name and cover
    cover, results = {"northstar", "robot", "q2", "2023"}, {"revenu", "q2", "2023"}
    assert held(asked, cover, about, 0.5) == 0.0  # names the filing, says nothing of revenue
    assert held(asked, results, about, 0.5) == (3 + 0.5 * 2) / 5
    assert held(asked, results, set(), 0.5) == 3 / 5 < held(asked, cover, set(), 0.5)  # by words alone the cover won
    assert held(asked, {"revenu"}, {"q2", "2023"}, 0.5) == (1 + 0.5 * 2) / 5  # another company's Q2 page
    assert held({"northstar": 1.0}, {"northstar"}, {"northstar"}, 0.5) == 1.0  # nothing but the name asked


def test_a_cover_saying_quarterly_holds_nothing_of_a_question_about_the_quarter():
    from qa.evidence import held

    # "What revenue range did Northstar Robotics guide to for the quarter after Q2 2023 on its earnings call?"
    asked = dict.fromkeys(["revenu", "rang", "guid", "quarter", "northstar", "robot", "q2", "2023", "earn", "call"], 1.0)
    about = {"northstar", "robot", "q2", "2023"}
    cover = {"quarter", "northstar", "robot", "q2", "2023"}  # "QUARTERLY REPORT ... June 30, 2023 NORTHSTAR ROBOTICS"
    guidance = {"quarter", "revenu"}  # "For the next quarter we expect revenue between $461 million and $485 million."
    assert held(asked, cover, about, 0.5) == 0.0  # a kind of period is no word of what is asked
    assert held(asked, guidance, about, 0.5) == (2 + 0.5 * 4) / 10
    assert held({"quarter": 1.0, "dividend": 1.0}, {"quarter"}, set(), 0.5) == 0.0  # "quarterly results": no dividend
    assert held({"quarter": 1.0, "dividend": 1.0}, {"quarter", "dividend"}, set(), 0.5) == 1.0


def test_a_word_naming_a_kind_of_document_tells_transcripts_from_filings():
    from qa.evidence import kind_words

    filing = Chunk(id="f", doc="NSTR_2023Q2_10-Q.pdf", text="Revenue for the second quarter of 2023 was $442.5 million.")
    call = Chunk(id="c", doc="NSTR_Q2_2023_Earnings_Call.pdf", text="For the next quarter we expect revenue between "
                 "$461 million and $485 million.")
    question = "What revenue range did Northstar guide to for the quarter after Q2 2023 on its earnings call?"
    assert kind_words(question, [filing, call]) == {"earn", "call"}
    said = Chunk(id="g", doc="NSTR_2023Q2_10-Q.pdf", text="Diluted earnings per share were 0.31; see the call report.")
    assert kind_words(question, [filing, said, call]) == set()  # the filing speaks of earnings and of a call too
    assert kind_words(question, [call]) == set()  # one document: nothing to tell apart


def test_the_call_a_question_names_answers_it_not_the_filing_of_the_same_quarter(make_index):
    """The filing's results sentence says the quarter the question names, the call's guidance sentence
    only "the next quarter": the question's "earnings call" names the call, and its sentence is cited."""
    idx = make_index()
    docs = {"Northstar_2023Q2_10-Q.pdf": "Revenue for the second quarter of 2023 was 442.5 million dollars, at the top "
                                         "of its range.",
            "Northstar_Q2_2023_Earnings_Call.pdf": "For the next quarter we expect revenue between 461 million and 485 "
                                              "million dollars."}
    with idx.writer() as w:
        for doc, text in docs.items():
            w.add_document(DocumentInfo(doc=doc), [Chunk(id=doc, doc=doc, text=text, meta={"periods": ["2023", "q2"]})])
        w.commit()
    ans = _answerer(idx).ask("What revenue range did Northstar guide to for the quarter after Q2 2023 on its earnings call?")
    assert ans.citations[0].chunk.doc == "Northstar_Q2_2023_Earnings_Call.pdf", (ans.quote, ans.reason)
    assert "461 million" in ans.answer


def test_the_source_a_question_names_is_read_before_any_other_kind_of_document(make_index):
    """"according to the earnings call": the filing's exhibit says more of the question (the company,
    "CFO", the quarter) than the call's turn does, and names the officer who signed it; the question
    asks the call."""
    from qa.evidence import named_sources

    question = "Who is Harbor Foods' CFO, according to the Q2 2024 earnings call?"
    assert named_sources(question, {"call"}) == {"call"}
    assert named_sources("What is the call rate of the options?", {"call"}) == set()  # no source named
    assert named_sources(question, set()) == set()  # nothing tells the documents' kinds apart
    idx = make_index()
    docs = {"Harbor Foods 10-Q Q2 2024.pdf": "31.2 Certification of Tomas Reyes, the CFO of Harbor Foods, for the "
                                             "second quarter of 2024, as Chief Financial Officer.",
            "Harbor Foods Q2 2024 earnings call transcript.pdf": "Priya Raman, Chief Financial Officer: Thanks, Maria."}
    with idx.writer() as w:
        for doc, text in docs.items():
            w.add_document(DocumentInfo(doc=doc), [Chunk(id=doc, doc=doc, text=text, meta={"periods": ["2024", "q2"]})])
        w.commit()
    ans = _answerer(idx).ask(question)
    assert ans.citations[0].chunk.doc == "Harbor Foods Q2 2024 earnings call transcript.pdf", (ans.quote, ans.reason)
    assert "Priya Raman" in ans.answer


def test_another_companys_call_never_goes_before_the_filing_of_the_company_asked_about():
    from qa.evidence import source_rank

    def chunk(doc, names, periods):
        return Chunk(id=doc, doc=doc, text="Thanks.", meta={"names": names, "periods": periods})

    filing = chunk("pinecrest-quarterly-03.pdf", ["Pinecrest", "Energy", "Partners"], ["2023", "q3"])
    own_call = chunk("pinecrest-call-05.pdf", ["Pinecrest", "Energy"], ["2023", "q3"])
    other_call = chunk("NSTR_Q3_2023_Earnings_Call.pdf", ["Northstar", "Robotics"], ["2023", "q3"])
    question = "Who is Pinecrest Energy's CFO, according to the Q3 2023 earnings call?"
    rank = source_rank(question, {"call", "earn"}, [other_call, filing, own_call])
    assert sorted(range(3), key=lambda i: rank[i]) == [2, 1, 0]
    assert source_rank("Who is Pinecrest Energy's CFO?", {"call"}, [filing, own_call]) == [(), ()]


def test_a_plain_word_tells_siblings_apart_only_when_the_others_never_use_it(make_index):
    from qa.evidence import name_match
    from retrieval import Hit

    plans = {"Northwind_Health_Plus_Benefits_Details.pdf": "30", "Northwind_Standard_Benefits_Details.pdf": "50"}
    text = "Northwind Health members pay a copay of {} dollars for each specialist visit in the network."
    chunks = {doc: Chunk(id=doc, doc=doc, text=text.format(amount)) for doc, amount in plans.items()}
    hits = [Hit(chunk=c, score=1.0, rank=i + 1) for i, c in enumerate(chunks.values())]
    # "health" is in one plan's name, but both plans' text say "Northwind Health": it tells nothing
    assert name_match("What is the specialist copay at Northwind Health?", hits) == [0.0, 0.0]
    assert name_match("What is the specialist copay under the Northwind Standard plan?", hits) == [0.0, 1.0]
    idx = make_index()
    with idx.writer() as w:
        for doc, c in chunks.items():
            w.add_document(DocumentInfo(doc=doc), [c])
        w.commit()
    for plan, doc in (("Standard", "Northwind_Standard_Benefits_Details.pdf"),
                      ("Health Plus", "Northwind_Health_Plus_Benefits_Details.pdf")):
        ans = _answerer(idx).ask(f"What is the copay for a specialist visit under the Northwind {plan} plan?")
        assert ans.citations[0].chunk.doc == doc and plans[doc] in ans.quote


def test_what_a_documents_opening_names_counts_as_its_name_whatever_the_chunks_heading(make_index):
    """Calls with opaque file names, told apart by the period their openings state: the Q2 call's chunk
    under a heading of one word ("Call") holds the company through its opening, as the Q3 call's chunk
    does through its heading, and the question's "Q2" only the Q2 call of that company holds."""
    from qa.evidence import document_coverage, name_match
    from retrieval import Hit

    def call(doc, section, period, company):
        meta = {"periods": ["2023", period], "names": company.split() + ["Quarter", "Earnings", "Conference", "Call"]}
        return Chunk(id=doc, doc=doc, text="Tomas Reyes, Chief Financial Officer: Thanks.", section=section, meta=meta)

    q3 = call("acme-call-05.pdf", "Acme Energy Third Quarter 2023 Earnings Conference Call", "q3", "Acme Energy")
    q2 = call("acme-call-04.pdf", "Call", "q2", "Acme Energy")
    other = call("NSTR_Q2_2023_Earnings_Call.pdf", "Call", "q2", "Northstar Robotics")
    filing = Chunk(id="f", doc="acme-quarterly-02.pdf", text="31.2 Certification of the Chief Financial Officer.",
                   section="Exhibits", meta={"periods": ["2023", "q2"], "names": ["ACME", "ENERGY", "QUARTERLY", "REPORT"]})
    hits = [Hit(chunk=c, score=1.0, rank=i) for i, c in enumerate([q3, filing, q2, other], start=1)]
    asked = "Who is Acme Energy's CFO, according to the Q2 2023 earnings call?"
    on_q3, on_filing, on_q2, on_other = name_match(asked, hits)
    assert on_q2 == 1.0 and max(on_q3, on_filing, on_other) < on_q2
    covered = document_coverage(asked, hits)
    assert covered["acme-call-04.pdf"] > covered["acme-quarterly-02.pdf"]  # "call": the call's name says it


def test_misspelt_words_are_read_as_the_documents_words(make_index):
    idx = make_index()
    with idx.writer() as w:
        w.add_document(DocumentInfo(doc="plan.txt"), [
            Chunk(id="g", doc="plan.txt", text="The plan covers gender affirming care, including surgery.", ordinal=0),
            Chunk(id="h", doc="plan.txt", text="Hearing aids are covered once every three years.", ordinal=1)])
        w.commit()
    assert idx.correct("Does it cover gendr affirming care?") == "Does it cover gendr gender affirming care?"
    assert idx.correct("How often are hearin aids paid?").startswith("How often are hearin hear aids")
    assert idx.correct("Does it cover gender care?") == "Does it cover gender care?"  # known words stay
    ans = _answerer(idx).ask("Does the plan cover gendr affirming care?")
    assert not ans.abstained and "gender affirming care" in ans.quote
    assert ans.search_query == "Does the plan cover gendr gender affirming care?"


def _board_and_everyone(make_index, everyone_text="The canteen opens at noon."):
    """An index of one board document (the Zentrix merger) and one everyone may read."""
    idx = make_index()
    with idx.writer() as w:
        w.add_document(DocumentInfo(doc="board/m.txt"), [Chunk(id="b", doc="board/m.txt", text="The merger with Zentrix closes.",
                                                             groups=("board",))])
        w.add_document(DocumentInfo(doc="all/n.txt"), [Chunk(id="n", doc="all/n.txt", text=everyone_text,
                                                           groups=("everyone",))])
        w.commit()
    return idx


def test_a_correction_never_comes_from_a_document_the_reader_may_not_read(make_index):
    idx = _board_and_everyone(make_index)
    assert idx.correct("Zentrx merger", filter=SearchFilter.for_groups(["board"])) == "Zentrx zentrix merger"
    assert idx.correct("Zentrx merger", filter=SearchFilter.for_groups(["staff"])) == "Zentrx merger"


def test_known_words_are_the_readers_own_and_read_through_misspellings(make_index):
    idx = _board_and_everyone(make_index, "Hearing aids for every employee.")
    words = ["hearing", "employes", "Zentrix", "Kubernetes"]
    assert idx.known_words(words) == {"hearing", "employes", "Zentrix"}  # "employes": one letter from "employee"
    assert idx.known_words(words, filter=SearchFilter.for_groups(["everyone"])) == {"hearing", "employes"}


def test_an_acronym_the_documents_spell_out_is_read_as_they_write_it(make_index):
    """"Who is the CFO?" of documents that only write "Chief Financial Officer" was refused ("None of
    them mentions CFO"); the acronym is read in the words the chunks a search finds spell it out
    in, the one beside the question's own words where there are several ("diluted EPS")."""
    from qa.names import spelt_out

    idx = make_index()
    texts = {"call.txt": "Operator: Welcome to the call. Dana Reyes, Chief Financial Officer: Thanks. Revenue grew 8%.",
             "10-q.txt": "Income statement (in millions, except per share amounts). Diluted earnings per share was 0.94."}
    with idx.writer() as w:
        for doc, text in texts.items():
            w.add_document(DocumentInfo(doc=doc), [Chunk(id=f"{doc}#0", doc=doc, text=text)])
        w.commit()
    answerer = _answerer(idx)
    assert answerer._spelt_out("Who is the CFO of the company?", None) == (
        "Who is the Chief Financial Officer of the company?")
    assert answerer._spelt_out("What was the diluted EPS?", None) == "What was the diluted earnings per share?"
    assert answerer._spelt_out("What is the VPN policy?", None) == "What is the VPN policy?"  # nothing spells it
    ans = answerer.ask("Who is the CFO of the company?")
    assert not ans.abstained, ans.reason
    assert "Dana Reyes" in ans.answer and ans.citations[0].chunk.doc == "call.txt"
    assert _answerer(idx, check_names=True).ask("What is the VPN policy?").abstained  # still never named
    assert spelt_out("IRO", "the internal review office. The Independent Review Organization (IRO) decides") == (
        "Independent Review Organization")
    assert spelt_out("YoY", "growth year-over-year") == "year over year" and spelt_out("CFO", "no such words") is None
    with pytest.raises(ValueError, match="acronym_pool = 0; use a count of chunks"):
        AnswerOptions(acronym_pool=0)


def test_access_filter_reaches_the_answer(index):
    q = "What is the executive salary of the chief executive?"
    allowed = _answerer(index).ask(q, filter=SearchFilter.for_groups(["board"]))
    assert "4 million" in allowed.text
    denied = _answerer(index).ask(q, filter=SearchFilter.for_groups(["staff"]))
    assert "4 million" not in denied.text
    assert all(h.chunk.doc != "board/salaries.txt" for h in denied.hits)


def test_bad_questions_and_options_are_value_errors(index):
    with pytest.raises(ValueError, match="empty"):
        _answerer(index).ask("   ")
    with pytest.raises(ValueError, match="too long"):
        _answerer(index).ask("why " * 1000)
    with pytest.raises(ValueError, match="phrasing"):
        AnswerOptions(phrasing="poem")
    with pytest.raises(ValueError, match="identity_weight = 2; use a share between 0 and 1"):
        AnswerOptions(evidence=EvidenceOptions(identity_weight=2))


def test_many_sessions_asking_at_once(index):
    from concurrent.futures import ThreadPoolExecutor

    answerer = _answerer(index)
    questions = [LEAVE_Q, "How do I connect to the VPN?"] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(answerer.ask, questions))
    for q, a in zip(questions, answers):
        assert a.question == q and not a.abstained
        assert ("25 days" in a.text) if "leave" in q else ("VPN" in a.text)


def test_an_announcing_sentence_runs_on_but_never_becomes_the_whole_quote(make_index):
    idx = make_index()
    text = ("Baculoviruses have a number of advantages as vaccine vectors. "
            "They are readily manipulated and accommodate large gene insertions.")
    with idx.writer() as w:
        w.add_document(DocumentInfo(doc="vectors.txt"), [Chunk(id="v#0", doc="vectors.txt", text=text)])
        w.commit()
    ans = _answerer(idx).ask("What is the advantage of baculovirus vectors?")
    assert not ans.abstained and "readily manipulated" in ans.quote
    # the announcement and what follows is the whole quote: the short answer is the sentence alone, not ""
    assert ans.answer == "Baculoviruses have a number of advantages as vaccine vectors."


def test_a_question_naming_what_no_document_names_is_refused_and_says_which(index):
    ans = _answerer(index).ask("How many days of paid annual leave does Kubernetes get?")
    assert ans.abstained and ans.citations == [] and ans.quote == ""
    assert "“Kubernetes”" in ans.answer and ans.answer.startswith(ABSTAIN_TEXT)
    assert ans.reason == "the documents never mention “Kubernetes”"
    assert ans.hits  # the closest passages are still listed
    # the same question without the name, or with a name the documents use, is answered
    assert not _answerer(index).ask(LEAVE_Q).abstained
    assert not _answerer(index).ask("Do I need the VPN outside the office? Connect with PIN?").abstained
    # and the check can be turned off
    assert not _answerer(index, check_names=False).ask("How many days of paid annual leave does Kubernetes get?").abstained


def test_a_name_only_a_restricted_document_uses_does_not_count_as_named(index):
    q = "What is the executive salary of the chief executive at Zentrix?"
    with index.writer() as w:
        w.add_document(DocumentInfo(doc="board/zentrix.txt"), [
            Chunk(id="z", doc="board/zentrix.txt", text="Zentrix pays its chief executive 2 million.", groups=("board",))])
        w.commit()
    staff = _answerer(index).ask(q, filter=SearchFilter.for_groups(["everyone"]))
    assert staff.abstained and staff.reason == "the documents never mention “Zentrix”"
    board = _answerer(index).ask(q, filter=SearchFilter.for_groups(["board"]))
    assert not board.abstained


def test_a_question_typed_in_lower_case_is_answered_as_the_capitalised_one(make_index):
    """Typed without capitals, "northstar robotics" shows no name by its case: read as the passages write
    it ("NORTHSTAR ROBOTICS" on the cover), the revenue page speaks of Northstar as its cover does, and
    it answers, not the cover that says the company and the quarter and nothing of revenue."""
    from qa.evidence import cased_as_written

    assert cased_as_written("northstar robotics revenue", ["NORTHSTAR ROBOTICS, INC.", "Revenue grew; revenue fell."]) == (
        "Northstar Robotics revenue")
    idx = make_index()
    meta = {"periods": ["2023", "q1"], "names": ["NORTHSTAR", "ROBOTICS", "INC", "QUARTERLY", "REPORT"]}
    pages = ["QUARTERLY REPORT PURSUANT TO SECTION 13 for the quarterly period ended March 31, 2023 of NORTHSTAR "
             "ROBOTICS, INC., 157 million shares outstanding",
             "Revenue for the first quarter of 2023 was 454.3 million dollars."]
    with idx.writer() as w:
        w.add_document(DocumentInfo(doc="NSTR_2023Q1_10-Q.pdf"),
                       [Chunk(id=f"p{i}", doc="NSTR_2023Q1_10-Q.pdf", text=t, page=i + 1, ordinal=i, meta=meta)
                        for i, t in enumerate(pages)])
        w.commit()
    cased = _answerer(idx).ask("What was Northstar Robotics' revenue in Q1 2023?")
    lower = _answerer(idx).ask("what was northstar robotics' revenue in q1 2023?")
    assert "454.3" in cased.answer
    assert (lower.answer, lower.citations[0].chunk.page) == (cased.answer, cased.citations[0].chunk.page)
