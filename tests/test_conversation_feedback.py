import pytest

from qa import Answer, Passage
from qa.conversation import is_followup, rewrite_followup
from qa.feedback import FeedbackStore
from retrieval import Chunk


def test_followups_are_rewritten_with_the_previous_question():
    history = ["How many days of annual leave do employees get?"]
    assert rewrite_followup("and for part-time staff?", history) == (
        "How many days of annual leave do employees get? and for part-time staff?")
    assert rewrite_followup("What about sick leave?", history).startswith(history[0])
    assert rewrite_followup("Who approves it?", history).startswith(history[0])
    standalone = "What is the mileage rate for private cars in Norway?"
    assert rewrite_followup(standalone, history) == standalone
    assert rewrite_followup("and for part-time staff?", []) == "and for part-time staff?"
    assert not is_followup("How long is the probation period for new employees?")


def test_feedback_is_stored_with_question_answer_and_chunks(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    chunk = Chunk(id="c1", doc="hr/leave.pdf", text="25 days", page=2)
    ans = Answer("How much leave?", "25 days", "You get 25 days.", False, [Passage(1, chunk, "25 days", 1.0)],
                 search_query="How much leave?")
    fid = store.add(ans, -1, "  should mention carry-over ", user="ann")
    [entry] = store.list()
    assert entry.id == fid and entry.rating == -1 and entry.comment == "should mention carry-over"
    assert entry.question == "How much leave?" and entry.answer == "25 days\n\n“You get 25 days.” [1]" and entry.user == "ann"
    assert entry.chunks == [{"chunk_id": "c1", "doc": "hr/leave.pdf", "page": 2}]
    with pytest.raises(ValueError):
        store.add(ans, 5)
