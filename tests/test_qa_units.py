from qa.evidence import select_evidence
from qa.grounding import cited_numbers, is_abstention, strip_citations, support
from qa.metrics import contained, content_recall, token_f1
from qa.text import content_terms, sentences
from retrieval import Chunk, Hit


def test_token_f1_is_squad_style():
    assert token_f1("The 25 days", ["25 days"]) == 1.0
    assert 0 < token_f1("25 days of leave per year", ["25 days"]) < 1
    assert token_f1("nothing", ["25 days"]) == 0.0
    assert token_f1("25 days", ["no", "25 days"]) == 1.0


def test_containment_short_and_long_gold():
    assert contained("Employees get 25 days [1].", ["25 days"])
    assert not contained("Employees get 250 days.", ["25 days"])
    long_gold = "Choosing an out-of-network provider can be significantly more expensive than in-network providers"
    assert contained("An out-of-network provider is significantly more expensive than in-network providers.", [long_gold])
    assert not contained("It is more expensive.", [long_gold])
    assert content_recall("expensive providers", [long_gold]) > 0


def test_sentences_and_terms():
    assert sentences("One. Two! Three?\n| a | b |") == ["One.", "Two!", "Three?", "| a | b |"]
    assert "leav" in content_terms("How many days of leave do I get?")
    assert "how" not in content_terms("How many days of leave do I get?")


def _hit(text, doc="d.txt", rank=1, dense=0.8):
    return Hit(Chunk(id=f"{doc}-{rank}", doc=doc, text=text), 1.0 / rank, rank, dense=dense)


def _passage(text, doc="d.txt"):
    """One retrieved passage whose text is its whole chunk, as the extraction reads it."""
    from qa.answer import Passage

    return Passage(1, Chunk(id=f"{doc}-1", doc=doc, text=text), text, 1.0)


def test_evidence_keeps_the_best_sentence_with_neighbours():
    text = "Intro sentence here. The canteen opens at noon. Employees get 25 days of annual leave. Carry-over is five days. Unrelated closing."
    [p] = select_evidence("How many days of annual leave?", [_hit(text)])
    assert p.best_sentence == "Employees get 25 days of annual leave."
    assert p.text == "The canteen opens at noon. Employees get 25 days of annual leave. Carry-over is five days."
    assert p.n == 1


def test_support_counts_words_and_numbers():
    ev = "Employees get 25 days of annual leave."
    assert support("Employees get 25 days of leave [1].", ev).ok
    assert support("Employees get 25 days of leave [1].", ev).score == 1.0
    s = support("Employees get 30 days of leave.", ev)
    assert not s.ok and s.missing_numbers == {"30"}
    assert support("Bananas are yellow fruit.", ev).score == 0.0
    assert cited_numbers("a [1] b [3]") == [1, 3] and strip_citations("a [1].") == "a ."
    assert is_abstention("I could not find this in the documents.") and is_abstention("The passages do not mention it.")
    assert not is_abstention("Employees get 25 days.")


def test_table_rows_keep_their_column_names():
    text = "Intro.\n| Parent | Weeks | Notice |\n| --- | --- | --- |\n| Birth | 18 | 8 weeks |\n| Other | 12 | 4 weeks |\nAfter."
    assert sentences(text) == ["Intro.", "| Parent | Weeks | Notice | | Birth | 18 | 8 weeks |",
                               "| Parent | Weeks | Notice | | Other | 12 | 4 weeks |", "After."]
    [p] = select_evidence("How much notice must the other parent give?", [_hit(text)])
    assert "| Other | 12 | 4 weeks |" in p.best_sentence and "Notice" in p.best_sentence


def test_rescoring_puts_the_chunk_with_the_answering_sentence_first():
    from qa.evidence import rescore
    from retrieval.embedder import FakeEmbedder

    spread = Chunk(id="a", doc="a.txt", text="Parental leave is a topic. Many parents ask. Weeks vary by country. "
                   "Other parents take leave too. The policy covers parents and leave.")
    answering = Chunk(id="b", doc="b.txt", text="Office hours are nine to five. The other parent receives 12 weeks "
                      "of paid parental leave. Parking is free.")
    hits = [Hit(spread, 1.0, 1), Hit(answering, 0.9, 2)]
    got = rescore("How many weeks of paid parental leave does the other parent receive?", hits, FakeEmbedder())
    assert [h.chunk.id for h in got] == ["b", "a"] and [h.rank for h in got] == [1, 2]
    assert 0.0 <= got[1].score <= got[0].score <= 1.0
    # a sentence budget of zero leaves only the scores and word overlap: the same order here
    assert rescore("weeks of paid parental leave other parent", hits, FakeEmbedder(), sentences_embedded=0)[0].chunk.id == "b"
    # one hit is scored too (its sentence match feeds the answerer's confidence)
    [only] = rescore("weeks of paid parental leave", hits[1:], FakeEmbedder())
    assert only.chunk.id == "b" and only.rank == 1 and 0.5 < only.score <= 1.0
    assert rescore("anything", [], FakeEmbedder()) == []


def test_the_document_covering_the_question_across_its_chunks_is_preferred():
    """An article about the question's virus, host and country has them in different chunks; a
    neighbour has one chunk naming the virus and host well and nothing else of the question."""
    from qa.evidence import document_coverage, rescore
    from retrieval.embedder import FakeEmbedder

    question = "Which MERS-CoV outbreak among camels was reported in Saudi Arabia in 2014?"
    a1 = Chunk(id="a1", doc="article.txt", text="MERS-CoV circulates among dromedary camels.")
    a2 = Chunk(id="a2", doc="article.txt", text="In 2014 an outbreak was reported in Saudi Arabia.")
    b1 = Chunk(id="b1", doc="review.txt", text="MERS-CoV outbreak among camels: camels carry MERS-CoV.")
    pool = [Hit(b1, 1.0, 1), Hit(a1, 0.95, 2), Hit(a2, 0.9, 3)]
    covered = document_coverage(question, pool)
    assert covered["article.txt"] == 1.0 and covered["review.txt"] < 0.7
    plain = rescore(question, pool[:2], FakeEmbedder())
    assert plain[0].chunk.id == "b1"  # by the chunk alone, the neighbour wins
    weighed = rescore(question, pool[:2], FakeEmbedder(), pool=pool, document_weight=1.0)
    assert [h.chunk.id for h in weighed] == ["a1", "b1"]
    # each chunk's own match is kept beside its score (abstention reads it)
    assert {h.chunk.id: h.own for h in weighed} == {h.chunk.id: h.score for h in plain}
    assert all(h.score > h.own for h in weighed)
    # abstention reads the best own match among the hits, whichever the coverage put first
    from qa.answerer import AnswerOptions, confidence

    assert confidence(question, weighed, AnswerOptions()).match == max(h.score for h in plain)
    assert document_coverage("", pool) == {} and document_coverage(question, []) == {}


def test_a_long_sentence_is_never_cut_inside_brackets():
    from qa.extract import clauses_of, short_form

    sentence = ("A rAd5-HA vaccine expressing the HA from A/Puerto Rico/8/1934 (H1N1; PR8) was given twice to "
                "mice and ferrets in this study: it was well tolerated by every animal, and it induced "
                "seroconversion; the intranasal route gave a higher conversion rate than the others did in all tests.")
    assert clauses_of(sentence)[0].endswith("(H1N1; PR8) was given twice to mice and ferrets in this study:")
    assert "(H1N1; PR8)" in short_form(sentence, "PR8")


def test_a_question_asking_what_a_term_is_names_the_term():
    from qa.question import shape

    assert (shape("What is prior-authorization?").kind, shape("What is prior-authorization?").subject) == (
        "definition", "prior-authorization")
    assert shape("What are nuclear receptors (NRs)?").subject == "nuclear receptors"
    assert shape("What does HTS stand for?").subject == "HTS"
    # about something else than a term's meaning
    for question in ("What is the size of a flavivirus?", "What is discussed in this publication?",
                     "What are the most common viruses?", "What is it?", "What are some non-drug interventions?"):
        assert shape(question).kind != "definition", question


def test_the_sentence_that_defines_the_term_is_the_answer():
    from qa.extract import choose, defines
    from retrieval import FakeEmbedder

    assert defines("Sporulation is an adaptive strategy that lets bacteria survive.", "sporulation")
    assert defines("Samples were tested by quantitative real-time PCR (qRT-PCR) as before.", "qRT-PCR")
    assert defines("Nuclear receptors (NRs) are ligand-activated transcription factors.", "nuclear receptor")
    assert defines("Listeria species are Gram-positive food-borne pathogens.", "Listeria")
    assert defines("EGR1, also known as Zif268 and NGF1-A, is a zinc finger protein.", "EGR1")
    assert not defines("Spo0A is the key regulator for sporulation.", "sporulation")
    assert not defines("The advantages of Listeria are that it can invade many cells.", "Listeria")
    assert not defines("Sporulation is not seen in these cells.", "sporulation")
    text = ("Spo0A is the key regulator for sporulation in many species. "
            "Sporulation is an adaptive strategy that lets bacteria survive harsh conditions. "
            "Several genes control sporulation timing.")
    passage = _passage(text, "b.txt")
    ex = choose("What is sporulation?", [passage], FakeEmbedder())
    assert ex.sentence.startswith("Sporulation is an adaptive strategy")


def test_a_sentence_saying_nothing_of_the_question_is_not_its_answer():
    """The exhibit list's "32.1 Certifications pursuant to 18 U.S.C." holds a name and none of the question's
    words: it is not chosen over the sentence that says the title asked about, name or not."""
    from qa.extract import choose
    from retrieval import FakeEmbedder

    text = ("31.2 Certification of the Chief Financial Officer. 32.1 Certifications pursuant to 18 U.S.C. "
            "101 Inline XBRL documents.")
    ex = choose("Who is the Chief Financial Officer of Harbor Foods this quarter?", [_passage(text, "10-Q.pdf")], FakeEmbedder())
    assert ex.sentence == "31.2 Certification of the Chief Financial Officer." and ex.span is None


def test_a_sentence_that_only_announces_the_answer_is_shown_with_what_follows():
    from qa.extract import announces, choose
    from qa.question import shape

    q = shape("What is the advantage of baculovirus vectors?")
    assert announces("Baculoviruses have a number of advantages as vaccine vectors.", q)
    assert announces("The vectors have these properties:", q)
    assert not announces("Several recent studies looked at other compounds.", q)
    text = ("Baculoviruses have a number of advantages as vaccine vectors. "
            "They are readily manipulated and accommodate large gene insertions. "
            "Insect promoters are not effective in mammals.")
    passage = _passage(text, "v.txt")
    from retrieval import FakeEmbedder

    ex = choose("What is the advantage of baculovirus vectors?", [passage], FakeEmbedder())
    assert ex.sentence == "Baculoviruses have a number of advantages as vaccine vectors."
    assert "readily manipulated" in ex.short and ex.short.startswith(ex.sentence)


def test_a_sentence_opening_on_they_speaks_of_what_the_sentence_before_named():
    from qa.extract import choose
    from retrieval import FakeEmbedder

    def best(second_subject):
        text = ("Rotavirus A is widespread and infects humans, bovines and birds. "
                f"{second_subject} have a double-stranded RNA genome divided into eleven segments. "
                "Rotavirus vaccines are given orally.")
        passage = _passage(text, "r.txt")
        return choose("Is Rotavirus single or double-stranded?", [passage], FakeEmbedder())

    they = best("They")
    assert they.sentence.startswith("They have a double-stranded RNA genome")
    # "Cattle" does not open on the sentence before: the same words score lower without its "Rotavirus"
    assert best("Cattle").score < they.score


def test_a_bullet_inside_a_line_starts_a_sentence_of_its_own():
    text = "It detected 6 more cases [25] • The real time PCR has a threshold sensitivity of 10 copies. Done."
    assert sentences(text) == ["It detected 6 more cases [25]",
                               "• The real time PCR has a threshold sensitivity of 10 copies.", "Done."]
    from qa.extract import short_form

    assert short_form("• The real time PCR has a threshold sensitivity of 10 copies.", None).startswith("The real")


def test_how_many_counts_a_rate_and_not_a_share():
    from qa.extract import best_span
    from qa.question import shape

    q = shape("In 2010, how many cases of tuberculosis were estimated in China?")
    assert best_span("China had a prevalence of all TB cases of 108 per 100,000 in 2010.", q) == "108 per 100,000"
    from qa.extract import _in_unit

    assert not _in_unit("70% case detection", q)
    assert _in_unit("1,200 cases", q)
    assert _in_unit("3 weeks", shape("How long does approval take?"))


def test_a_range_question_is_answered_with_both_ends_not_one_amount():
    from qa.extract import _kind_part, best_span
    from qa.question import shape

    q = shape("What revenue range did Harbor Foods guide to for the next quarter?")
    assert (q.kind, q.focus) == ("quantity", "range")
    guidance = "For the next quarter we expect revenue between $1,509 million and $1,604 million."
    results = "Revenue in the quarter was $1,485.6 million, up 15% year over year."
    assert best_span(guidance, q) == "between $1,509 million and $1,604 million"
    assert _kind_part(guidance, q)[0] > _kind_part(results, q)[0]  # one amount is not a range
    days = shape("How many days does the incubation period last?")
    assert best_span("The incubation period lasts 2 to 14 days after exposure.", days) == "2 to 14 days"
    assert best_span("Sales grew from 2019 to 2021 by 5 to 7 percent.", shape("What growth range?")) == "5 to 7 percent"
    # a hyphen after a number word is no range to clean: the sentence is read, not a ValueError raised
    hiv = "Both peptides reacted with the antibodies in sera from five HIV-1-infected patients."
    assert best_span(hiv, shape("How many patients' sera reacted?")) is not None


def test_a_speakers_turn_opens_on_no_name():
    from qa.extract import best_span
    from qa.question import shape

    q = shape("Who is the Chief Financial Officer of Northstar?")
    assert best_span("David Okafor, Chief Financial Officer: Thanks.", q) == "David Okafor"
    assert best_span("Operator: Good day, and welcome to the conference call.", q) is None



def test_who_is_not_answered_by_what_the_question_names_nor_by_a_numbered_item():
    from qa.extract import best_span
    from qa.question import shape

    q = shape("Who is Pinecrest Energy's Chief Financial Officer, according to the earnings call?")
    notes = "The statements of Pinecrest Energy Partners have been prepared on a going-concern basis."
    assert best_span(notes, q) is None  # the company asked about is no answer to "who"
    assert best_span("31.2 Certification of the Chief Financial Officer.", q) is None  # an item's first word
    assert best_span("Tomas Reyes, Chief Financial Officer: Thanks.", q) == "Tomas Reyes"
    assert best_span("On the call, Chief Financial Officer Tomas Reyes spoke first.", q) == "Tomas Reyes"
    assert best_span("PINECREST ENERGY PARTNERS (Exact name of registrant as specified in its charter).", q) is None
    assert best_span("The statements of Northstar Robotics, Inc. are unaudited.", shape("Who is Northstar's auditor?")) is None
    assert best_span("4. Smith and Jones approve every purchase.", shape("Who approves purchases?")) == "Smith and Jones"

def test_the_names_a_question_uses():
    from qa.names import named_terms

    assert named_terms("How can the study of B-cells help treat autoimmune diseases?") == ["B-cells"]
    assert named_terms("What was Acme's revenue in Q3 2023 compared with 3Q22?") == ["Acme"]  # periods aside
    assert named_terms("What is the role of covid-19 and H7N9 in the 5th report of Details.pdf?") == ["covid-19", "H7N9"]
    assert named_terms("How many days of leave do I get?") == []  # the first word and "I" are no names
    assert named_terms("My partner is having a baby - how much time off as the non-birth parent?") == []
    assert named_terms("What was revenue? Include the segments. Answer in USD.") == []  # sentence starts, a currency
    assert named_terms("What did Dr. Feng Gao report?") == ["Dr", "Feng", "Gao"]  # an abbreviation starts nothing


def test_the_instructions_around_a_question_are_not_what_it_asks():
    from qa.question import without_instructions

    assert without_instructions("Assume that you are a public equities analyst. Answer the following question by "
                                "primarily using information that is shown in the income statement: what was "
                                "Acme's revenue in Q1 2023? Answer in USD millions.") == "what was Acme's revenue in Q1 2023?"
    assert without_instructions("What is the Q2 2023 diluted EPS? Please round to two decimal places.") == (
        "What is the Q2 2023 diluted EPS?")
    assert without_instructions("Describe the appeals process. Answer briefly.") == "Describe the appeals process."
    for kept in ("Provide the FY2018 capital expenditure for 3M.",  # a request, all of it asked
                 "If you are part-time, how many days do you get?",  # "you" inside a question is the asker
                 "Which question types does the exam cover?",
                 "Answer in one sentence."):  # nothing but instructions: kept whole
        assert without_instructions(kept) == kept


def test_a_name_counts_as_used_when_found_spelt_close_or_of_the_same_family():
    from qa.names import absent_names

    vocabulary = {"sars", "related", "health", "northwind", "cells"}

    def known(words):
        return {w for w in words if w.lower() in vocabulary or w.lower() == "helth"}  # "helth": a close spelling

    found = ["Dendritic cell-specific DC-SIGNR is expressed in the placenta.", "Northwind Health | Plan\nBenefits"]
    assert absent_names("How does Northwind Helth cover SARS-related care?", found, known) == []
    assert absent_names("What is DC-GENR?", found, known) == []  # a slip for DC-SIGNR, not another thing
    assert absent_names("How can the study of B-cells help?", found, known) == ["B-cells"]  # no "b-cell" anywhere
    assert absent_names("What does Kubernetes run on at Northwind?", found, known) == ["Kubernetes"]
    assert absent_names("Where is dc-signrs expressed?", found, known) == []  # case, hyphens, a plural aside
    # an acronym the passages spell out is used; letters beginning words across a full stop are not
    said = ["Our Chief Executive Officer approved the Research and Development budget. Earnings per share rose "
            "year-over-year. Funds. Onward."]
    assert absent_names("What did the CEO say about R&D, EPS and YoY growth?", said, known) == []
    assert absent_names("What did the CFO approve?", said, known) == ["CFO"]  # "Funds. Onward." is no spelling


def test_a_sentence_loses_the_asides_it_closes_on_but_never_its_list():
    from qa.extract import without_trailing_asides
    from qa.text import content_terms

    terms = set(content_terms("What makes the phage an attractive vaccine carrier?"))
    assert without_trailing_asides("Its low cost made the phage attractive as a vaccine carrier, especially during "
                                   "the early stages of recombinant technology.", terms) == \
        "Its low cost made the phage attractive as a vaccine carrier"
    # an aside that names what was asked stays; a list after ':' or ', and' is the answer and stays
    kept = "Its low cost made it attractive, especially as a vaccine carrier."
    assert without_trailing_asides(kept, terms) == kept
    listed = "The carrier has two advantages: low cost, and high stability."
    assert without_trailing_asides(listed, terms) == listed


def test_the_word_asking_for_a_quantity_is_not_a_word_the_documents_must_hold():
    from qa.question import asked_terms

    assert asked_terms("How much is the home office allowance?") == {"home", "offic", "allow"}
    assert asked_terms("How many weeks of leave do I get?") == {"week", "leav", "get"}
    assert "long" in asked_terms("What is the long-term disability benefit?")  # only "how long" asks


def test_coverage_counts_what_the_answering_document_is_about():
    from qa.grounding import question_coverage

    meta = {"names": ["Brightwater", "Instruments", "Employee", "Handbook", "Bergen", "Norway"]}
    paragraph = Chunk(id="h-3", doc="hr/employee-handbook.pdf", text="Brightwater provides a one-time home office "
                      "allowance of NOK 5,000.", page=3, meta=meta)
    hits = [Hit(paragraph, 1.0, 1, dense=0.5)]
    # "Bergen" is in the handbook's opening, not in its allowance paragraph; "much" is in no document
    assert question_coverage("How much is the home office allowance in Bergen?", hits) == 1.0
    elsewhere = [Hit(Chunk(id="x", doc="finance/policy.pdf", text=paragraph.text), 1.0, 1, dense=0.5)]
    assert question_coverage("How much is the home office allowance in Bergen?", elsewhere) == 0.75
