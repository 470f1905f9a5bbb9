"""Graders of ``routoo label``: planted answers against references, and judges' verdicts fed in."""

from __future__ import annotations

import json
import math

import pytest

from routoo.errors import ConfigError
from routoo.labelling.graders import (
    DEFAULT_RUBRIC,
    FEEDBACK,
    SPEC_FORMS,
    ChoiceMatch,
    ExactMatch,
    Grader,
    NumericMatch,
    PairwiseJudge,
    RegexMatch,
    RubricJudge,
    UserFeedback,
    final_number,
    normalise_answer,
    parse_grader,
)
from routoo.labelling.tasks import Grade, LabelTask


def task(reference: str | None = None, prompt: object = "What is the capital of France?") -> LabelTask:
    return LabelTask("t1", prompt, reference)  # type: ignore[arg-type]


def assert_valid(grade: Grade) -> Grade:
    """Every grade: a score in [0, 1] or None with a reason, and a detail that is strict JSON."""
    json.dumps(grade.detail, allow_nan=False)
    if grade.score is None:
        assert grade.detail["reason"]
    else:
        assert 0.0 <= grade.score <= 1.0
    return grade


def score(grader: Grader, answer: str, reference: str | None) -> float | None:
    return assert_valid(grader.grade(task(reference), answer)).score


REFERENCE_GRADERS = [ExactMatch(), NumericMatch(), ChoiceMatch(), RegexMatch(), RegexMatch(r"(\w+)")]


# --- every reference grader ---------------------------------------------------------------------


@pytest.mark.parametrize("grader", REFERENCE_GRADERS, ids=lambda grader: grader.name)
@pytest.mark.parametrize("reference", [None, "", "   "])
def test_a_task_without_a_reference_is_not_graded(grader: Grader, reference: str | None) -> None:
    grade = assert_valid(grader.grade(task(reference), "Paris"))
    assert grade.score is None
    assert "needs a reference" in grade.detail["reason"]
    assert grader.needs_reference and grader.judge_model is None and grader.reference_model is None
    assert grader.requests(task("Paris"), "Paris") == []


@pytest.mark.parametrize(
    ("grader", "reference"),
    [(ExactMatch(), "Paris"), (NumericMatch(), "42"), (ChoiceMatch(), "B"), (RegexMatch(), "Par")],
    ids=lambda value: getattr(value, "name", value),
)
def test_an_empty_answer_scores_zero(grader: Grader, reference: str) -> None:
    assert score(grader, "", reference) == 0.0
    assert score(grader, "  \n ", reference) == 0.0


# --- ExactMatch ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    ["Paris", "paris", "  PARIS  ", "Paris.", '"Paris"', "“Paris”", "**Paris**", "Answer: Paris",
     "answer:paris", "The answer is Paris!", "**Final answer:** Paris.", "'Paris'", "answer is: Paris"],
)  # fmt: skip
def test_exact_match_ignores_case_spacing_quotes_and_an_answer_prefix(answer: str) -> None:
    assert score(ExactMatch(), answer, "Paris") == 1.0


@pytest.mark.parametrize(
    ("answer", "reference"),
    [("Lyon", "Paris"), ("Paris, France", "Paris"), ("-5", "5"), ("Paris is the answer", "Paris"),
     ("New  York", "New Jersey"), ("The capital is Paris", "Paris")],
)  # fmt: skip
def test_exact_match_rejects_other_answers(answer: str, reference: str) -> None:
    assert score(ExactMatch(), answer, reference) == 0.0


def test_normalise_answer_collapses_inner_whitespace_and_keeps_inner_punctuation() -> None:
    assert normalise_answer("  New\n\tYork,  NY. ") == "new york, ny"
    assert normalise_answer("Answer is: 3.14") == "3.14"
    assert normalise_answer("...") == ""


# --- NumericMatch -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("Janet sells 16 - 3 - 4 = 9 eggs a day.\n#### 18", 18.0),
        ("The answer is $1,234.50", 1234.5),
        ("3/4", 0.75),
        ("-2.5e3", -2500.0),
        ("It costs 1,000,000 dollars", 1_000_000.0),
        ("So 6 * 7 = 42", 42.0),
        ("The answer is 42. Step 3 checks it.", 42.0),  # the number after the marker, not the last
        ("Answer: -7 (since 3 - 10 = -7)", -7.0),
        (r"The result is \boxed{\frac{3}{4}}", 0.75),
        ("\u22125 degrees", -5.0),
        ("x-5, so 3", 3.0),  # a hyphen after a word is not a sign
        ("about .5 of it", 0.5),
        ("no digits here", None),
        ("gpt4 and v2", None),  # digits inside words are not numbers
        ("1/0", None),
        ("1e999", None),  # not finite: no number
    ],
)
def test_final_number_reads_the_answers_number(text: str, number: float | None) -> None:
    assert final_number(text) == number


@pytest.mark.parametrize(
    ("answer", "reference"),
    [("#### 42", "42"), ("The answer is $1,234.50", "1234.5"), ("0.75", "3/4"), ("-2500", "-2.5e3"),
     ("She pays $12.", "Natalia sold 48/2 = 24 clips in May.\n#### 12"), ("42.0000000001", "42")],
)  # fmt: skip
def test_numeric_match_accepts_the_same_number(answer: str, reference: str) -> None:
    grade = assert_valid(NumericMatch().grade(task(reference), answer))
    assert grade.score == 1.0
    assert grade.detail["answer_number"] == pytest.approx(grade.detail["reference_number"])


def test_numeric_match_rejects_another_number_and_an_answer_without_one() -> None:
    assert score(NumericMatch(), "#### 41", "42") == 0.0
    assert score(NumericMatch(), "42", "-42") == 0.0
    grade = assert_valid(NumericMatch().grade(task("42"), "I cannot tell."))
    assert grade.score == 0.0 and grade.detail["reason"] == "the answer holds no number"


def test_numeric_match_does_not_grade_a_reference_without_a_number() -> None:
    grade = assert_valid(NumericMatch().grade(task("Paris"), "42"))
    assert grade.score is None and "holds no number" in grade.detail["reason"]


def test_numeric_tolerance_boundary() -> None:
    assert score(NumericMatch(rel_tol=0.01), "101", "100") == 1.0  # |1| <= 0.01 * 101
    assert score(NumericMatch(rel_tol=0.01), "102", "100") == 0.0
    assert score(NumericMatch(), "100.001", "100") == 0.0
    assert score(NumericMatch(rel_tol=0, abs_tol=0.5), "0.5", "0") == 1.0
    assert score(NumericMatch(rel_tol=0, abs_tol=0.5), "0.6", "0") == 0.0


@pytest.mark.parametrize("tolerance", [-0.1, math.nan, math.inf, True, "0.1"])
def test_numeric_match_refuses_a_bad_tolerance(tolerance: object) -> None:
    with pytest.raises(ConfigError, match="rel_tol"):
        NumericMatch(rel_tol=tolerance)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="abs_tol"):
        NumericMatch(abs_tol=tolerance)  # type: ignore[arg-type]


# --- ChoiceMatch --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "letter"),
    [("(B)", "B"), ("B", "B"), ("Answer: B", "B"), ("The answer is B.", "B"), ("**C**", "C"),
     ("The correct answer is (D) because ...", "D"), ("**Answer: E**", "E"), (r"Thus \boxed{F}", "F"),
     ("B. Paris", "B"), ("B) Paris", "B"), ("I would pick [G] here.", "G"),
     ("Answer: B. Checking again, the answer is B.", "B"), ("A is tempting, but the answer is C", "C")],
)  # fmt: skip
def test_choice_match_reads_the_chosen_letter(answer: str, letter: str) -> None:
    assert ChoiceMatch().choices(answer) == [letter]
    grade = assert_valid(ChoiceMatch().grade(task(letter), answer))
    assert grade.score == 1.0 and grade.detail == {"choice": letter, "reference": letter}
    assert score(ChoiceMatch(), answer, "A" if letter != "A" else "B") == 0.0


@pytest.mark.parametrize(
    "answer",
    [
        "The answer is A or B",
        "Answer: A, B",
        "Answer: B. Actually, the answer is C.",
        "(A) is wrong, (B) is right",
    ],
)
def test_several_letters_named_as_the_answer_are_ambiguous(answer: str) -> None:
    for reference in ("A", "B"):
        grade = assert_valid(ChoiceMatch().grade(task(reference), answer))
        assert grade.score == 0.0 and grade.detail["reason"] == "ambiguous"
        assert len(grade.detail["choices"]) == 2


@pytest.mark.parametrize(
    "answer", ["The answer is a dog.", "I think it is Paris.", "Always check the units."]
)
def test_words_and_lower_case_letters_are_no_choice(answer: str) -> None:
    grade = assert_valid(ChoiceMatch().grade(task("A"), answer))
    assert grade.score == 0.0 and grade.detail["reason"] == "no choice found"


def test_choice_match_letters_and_references() -> None:
    four = ChoiceMatch("ABCD")
    assert four.choices("Answer: E") == [] and four.choices("Answer: D") == ["D"]
    assert score(ChoiceMatch(), "Answer: B", "(b)") == 1.0  # the reference is read loosely
    grade = assert_valid(four.grade(task("E"), "Answer: E"))
    assert grade.score is None and "not one of the letters" in grade.detail["reason"]
    for letters in ("", "abc", "AAB", "A B"):
        with pytest.raises(ConfigError, match="letters"):
            ChoiceMatch(letters)


# --- RegexMatch ---------------------------------------------------------------------------------


def test_regex_match_reads_the_reference_as_the_pattern() -> None:
    assert score(RegexMatch(), "The capital is Paris.", r"\bParis\b") == 1.0
    assert score(RegexMatch(), "The capital is Parisian.", r"\bParis\b") == 0.0
    assert score(RegexMatch(flags="i"), "the capital is PARIS", "paris") == 1.0
    assert score(RegexMatch(), "the capital is PARIS", "paris") == 0.0


def test_a_reference_that_is_not_a_regex_is_not_graded() -> None:
    grade = assert_valid(RegexMatch().grade(task("(unclosed"), "anything"))
    assert grade.score is None and "not a valid regex" in grade.detail["reason"]


def test_regex_match_extracts_the_first_group_or_the_whole_match() -> None:
    grouped = RegexMatch(r"Final answer:\s*(.+)")
    grade = assert_valid(grouped.grade(task("Paris"), "Thinking...\nFinal answer: **Paris**."))
    assert grade.score == 1.0 and grade.detail == {"extracted": "**Paris**."}
    assert score(grouped, "Final answer: Lyon", "Paris") == 0.0
    missing = assert_valid(grouped.grade(task("Paris"), "Paris"))
    assert missing.score == 0.0 and missing.detail["reason"] == "the pattern is not in the answer"
    assert score(RegexMatch(r"[A-Z][a-z]+"), "the city: Paris, then Lyon", "paris") == 1.0  # the first match
    assert score(RegexMatch(r"x(y)?"), "x", "") is None  # an empty reference is none
    assert score(RegexMatch(r"x(y)?"), "x", "y") == 0.0  # an unmatched group extracts ""


@pytest.mark.parametrize(("pattern", "flags"), [("(bad", ""), ("[a-", "i"), ("ok", "q"), ("", "")])
def test_regex_match_refuses_a_bad_pattern_or_flag_at_construction(pattern: str, flags: str) -> None:
    with pytest.raises(ConfigError, match="RegexMatch"):
        RegexMatch(pattern, flags)


# --- RubricJudge --------------------------------------------------------------------------------


def test_rubric_requests_one_rating_with_the_question_the_answer_and_the_reference() -> None:
    judge = RubricJudge("openai/gpt-4o")
    assert (judge.name, judge.judge_model, judge.reference_model, judge.needs_reference) == (
        "rubric:openai/gpt-4o", "openai/gpt-4o", None, False
    )  # fmt: skip
    [request] = judge.requests(task("Paris"), "It is Paris.")
    system, user = request.messages
    assert request.key == "rating" and system["role"] == "system" and user["role"] == "user"
    assert "Rating: [[N]]" in system["content"] and DEFAULT_RUBRIC in system["content"]
    assert user["content"] == (
        "<question>\nWhat is the capital of France?\n</question>\n\n"
        "<reference_answer>\nParis\n</reference_answer>\n\n<answer>\nIt is Paris.\n</answer>"
    )
    [without] = judge.requests(task(None), "It is Paris.")
    assert "reference" not in without.messages[1]["content"]


def test_the_judge_reads_a_conversation_with_its_roles_and_a_single_turn_as_its_text() -> None:
    judge = RubricJudge("judge")
    turns = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]},
    ]
    [request] = judge.requests(task(prompt=turns), "Paris")
    assert "system: Be terse.\n\nuser: Capital of France?" in request.messages[1]["content"]
    [single] = judge.requests(task(prompt=turns[1:]), "Paris")
    assert single.messages[1]["content"].startswith("<question>\nCapital of France?\n</question>")


@pytest.mark.parametrize(
    ("verdict", "rating"),
    [("Rating: [[8]]", 8), ("[[8]]", 8), ("[[10]]", 10), ("[[1]]", 1), ("Solid. Rating: [[ 7 ]]", 7),
     ("[[6]] ... so once more: Rating: [[6]]", 6), ("Rating: [[7.5]]", 7.5), ("rating: 9", 9),
     ("Rating: 4/10", 4)],
)  # fmt: skip
def test_rubric_reads_the_rating(verdict: str, rating: float) -> None:
    grade = assert_valid(RubricJudge("judge").grade(task(), "an answer", {"rating": verdict}))
    assert grade.score == pytest.approx((rating - 1) / 9)
    assert grade.detail == {"rating": rating}


@pytest.mark.parametrize(
    ("verdict", "reason"),
    [("8/10", "no rating"), ("Great answer!", "no rating"), ("[[3]] or maybe [[9]]", "several ratings"),
     ("Rating: 3, no, Rating: 9", "several ratings"), ("Rating: [[11]]", "not within 1-10"),
     ("Rating: [[0]]", "not within 1-10"), ("", "no rating")],
)  # fmt: skip
def test_rubric_does_not_guess_an_unreadable_rating(verdict: str, reason: str) -> None:
    grade = assert_valid(RubricJudge("judge").grade(task(), "an answer", {"rating": verdict}))
    assert grade.score is None and reason in grade.detail["reason"]


def test_rubric_without_a_verdict_and_with_a_custom_rubric() -> None:
    assert score(RubricJudge("judge"), "an answer", None) is None
    custom = RubricJudge("judge", rubric="- Brevity: is it short?")
    assert custom.name.startswith("rubric:judge#") and custom.name != RubricJudge("judge", "- Other").name
    [request] = custom.requests(task(), "an answer")
    assert "- Brevity: is it short?" in request.messages[0]["content"]
    assert DEFAULT_RUBRIC not in request.messages[0]["content"]


@pytest.mark.parametrize("model", ["", "  ", None, 3])
def test_judges_refuse_a_missing_model(model: object) -> None:
    with pytest.raises(ConfigError, match="judge_model"):
        RubricJudge(model)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="judge_model"):
        PairwiseJudge(model, "reference")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="reference_model"):
        PairwiseJudge("judge", model)  # type: ignore[arg-type]


# --- PairwiseJudge ------------------------------------------------------------------------------

PAIRWISE = PairwiseJudge("openai/gpt-4o", "ollama/llama3:8b")


def pairwise(answer_first: str, reference_first: str) -> Grade:
    verdicts = {"answer-first": answer_first, "reference-first": reference_first}
    return assert_valid(PAIRWISE.grade(task(), "ANSWER", verdicts, reference_answer="THEIRS"))


def test_pairwise_asks_both_orders_with_the_answer_and_the_reference_in_place() -> None:
    assert (PAIRWISE.judge_model, PAIRWISE.reference_model, PAIRWISE.needs_reference) == (
        "openai/gpt-4o", "ollama/llama3:8b", False
    )  # fmt: skip
    requests = PAIRWISE.requests(task("Paris"), "ANSWER", reference_answer="THEIRS")
    assert [request.key for request in requests] == ["answer-first", "reference-first"]
    question = "<question>\nWhat is the capital of France?\n</question>\n\n"
    reference = "<reference_answer>\nParis\n</reference_answer>\n\n"
    for request, (a, b) in zip(requests, [("ANSWER", "THEIRS"), ("THEIRS", "ANSWER")], strict=True):
        system, user = request.messages
        assert "[[A]]" in system["content"] and "[[B]]" in system["content"] and "[[C]]" in system["content"]
        assert (
            user["content"]
            == f"{question}{reference}<answer_a>\n{a}\n</answer_a>\n\n<answer_b>\n{b}\n</answer_b>"
        )
    assert PAIRWISE.requests(task(), "ANSWER", reference_answer=None) == []


def test_a_consistent_judge_preferring_the_answer_gives_one_and_preferring_the_other_zero() -> None:
    better = pairwise("The first is better. [[A]]", "The second is better. [[B]]")
    assert better.score == 1.0
    assert better.detail == {
        "verdicts": {"answer-first": "A", "reference-first": "B"},
        "position_bias": False,
    }
    assert pairwise("[[B]]", "[[A]]").score == 0.0


@pytest.mark.parametrize("position", ["A", "B"])
def test_a_judge_that_always_picks_one_position_is_caught(position: str) -> None:
    grade = pairwise(f"[[{position}]]", f"Again: [[{position}]]")
    assert grade.score == 0.5
    assert grade.detail == {
        "verdicts": {"answer-first": position, "reference-first": position},
        "position_bias": True,
    }


def test_ties_count_half() -> None:
    assert (
        pairwise("[[C]]", "[[C]]").score == 0.5
        and pairwise("[[C]]", "[[C]]").detail["position_bias"] is False
    )
    assert pairwise("[[A]]", "[[C]]").score == 0.75
    assert pairwise("[[C]]", "[[A]]").score == 0.25


@pytest.mark.parametrize(
    ("answer_first", "reference_first", "reason"),
    [("[[A]] or [[B]]", "[[B]]", "answer-first verdict names several"),
     ("[[A]]", "no idea", "reference-first verdict names none"), ("A is better", "[[B]]", "names none")],
)  # fmt: skip
def test_pairwise_does_not_guess_an_unreadable_verdict(
    answer_first: str, reference_first: str, reason: str
) -> None:
    grade = pairwise(answer_first, reference_first)
    assert grade.score is None and reason in grade.detail["reason"]


def test_pairwise_needs_both_verdicts_and_the_reference_answer() -> None:
    only_one = assert_valid(PAIRWISE.grade(task(), "ANSWER", {"answer-first": "[[A]]"}, "THEIRS"))
    assert only_one.score is None and "reference-first" in only_one.detail["reason"]
    no_reference = assert_valid(PAIRWISE.grade(task(), "ANSWER", {"answer-first": "[[A]]"}, None))
    assert no_reference.score is None and "ollama/llama3:8b" in no_reference.detail["reason"]


# --- UserFeedback -------------------------------------------------------------------------------


def feedback_task(feedback: float | None, answered_by: str | None = "gpt-4o") -> LabelTask:
    return LabelTask("call-1", "Hi", feedback=feedback, answered_by=answered_by)


def test_feedback_scores_only_the_model_that_answered() -> None:
    assert UserFeedback() == FEEDBACK and FEEDBACK.name == "feedback" and not FEEDBACK.needs_reference
    assert assert_valid(FEEDBACK.grade(feedback_task(0.8), "any text", model="gpt-4o")) == Grade(0.8)
    other = assert_valid(FEEDBACK.grade(feedback_task(0.8), "any text", model="claude-3-haiku"))
    assert other.score is None and other.detail["reason"] == "no feedback for this model"
    assert FEEDBACK.grade(feedback_task(0.8), "any text").score is None  # the model is not said


@pytest.mark.parametrize(
    ("feedback", "reason"), [(None, "no feedback"), (1.5, "not within"), (-1.0, "not within")]
)
def test_feedback_missing_or_out_of_range_is_not_a_grade(feedback: float | None, reason: str) -> None:
    grade = assert_valid(FEEDBACK.grade(feedback_task(feedback), "", model="gpt-4o"))
    assert grade.score is None and reason in grade.detail["reason"]


# --- parse_grader -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "grader"),
    [
        ("exact", ExactMatch()),
        ("numeric", NumericMatch()),
        ("numeric:0.01", NumericMatch(rel_tol=0.01)),
        ("numeric:0.0,0.5", NumericMatch(rel_tol=0.0, abs_tol=0.5)),
        ("choice", ChoiceMatch()),
        ("choice:ABCD", ChoiceMatch("ABCD")),
        ("regex", RegexMatch()),
        ("regex/i", RegexMatch(flags="i")),
        (r"regex:Final answer: (\d+)", RegexMatch(r"Final answer: (\d+)")),
        ("regex/is:a/b:(c)", RegexMatch("a/b:(c)", "is")),
        ("rubric:openai/gpt-4o", RubricJudge("openai/gpt-4o")),
        ("rubric:ollama/llama3:8b", RubricJudge("ollama/llama3:8b")),
        (
            "pairwise:judge=vertex_ai/claude-3-5-sonnet@20240620,reference=ollama/llama3:8b",
            PairwiseJudge("vertex_ai/claude-3-5-sonnet@20240620", "ollama/llama3:8b"),
        ),
        ("pairwise:reference=b,judge=a", PairwiseJudge("a", "b")),
        ("feedback", FEEDBACK),
        ("  exact ", ExactMatch()),
    ],
)
def test_parse_grader_reads_each_form_and_names_round_trip(spec: str, grader: Grader) -> None:
    parsed = parse_grader(spec)
    assert parsed == grader
    assert parse_grader(parsed.name) == parsed
    if spec.strip() != "pairwise:reference=b,judge=a":
        assert parsed.name == spec.strip()


@pytest.mark.parametrize(
    "spec",
    ["", "nope", "exact:x", "feedback:x", "numeric:abc", "numeric:", "numeric:1,2,3", "numeric:-1",
     "numeric/i", "choice:", "choice:abc", "regex:", "regex:(", "regex/q", "rubric", "rubric:",
     "pairwise:judge@reference", "pairwise:judge=a", "pairwise:judge=a,reference=b,extra=c",
     "pairwise:judge=,reference=b", "pairwise:judge=a,judge=b"],
)  # fmt: skip
def test_parse_grader_names_a_bad_spec_and_the_valid_forms(spec: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_grader(spec)
    assert repr(spec) in str(error.value) and SPEC_FORMS in str(error.value)
