"""Graders: one model's answer to a ``LabelTask`` -> a ``Grade`` (a score in [0, 1], or None and why).

Graders do no I/O. Reference graders compare the answer with ``task.reference`` (no reference:
no grade): ``ExactMatch`` after normalising, ``NumericMatch`` the final numbers, ``ChoiceMatch``
the chosen letters, ``RegexMatch`` a pattern. Judge graders name a ``judge_model``: ``requests``
lists the ``JudgeRequest``s it must answer, the runner sends them and hands the replies back to
``grade`` as ``verdicts`` (request key -> reply). ``RubricJudge`` has the answer rated 1-10;
``PairwiseJudge`` has it compared, in both orders, with ``reference_model``'s answer and catches
a judge that always prefers one position. ``UserFeedback`` scores the user's feedback on a logged
call for the model that answered it. ``parse_grader`` reads the CLI's specs (``SPEC_FORMS``); a
grader's ``name`` is its spec. docs/labelling.md ("Graders") has the rules and the examples.

Over 400 lines for a reason: every grader's parsing rules are here, in one place, beside the
judges' prompts, so that what a stored label means can be read in one file.
"""

from __future__ import annotations

import hashlib
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from routoo.errors import ConfigError
from routoo.labelling.tasks import Grade, JudgeRequest, LabelTask
from routoo.policy import check_non_negative
from routoo.prompts import prompt_text

SPEC_FORMS = (
    "exact, numeric[:REL_TOL[,ABS_TOL]], choice[:LETTERS], regex[/FLAGS][:PATTERN], rubric:MODEL, "
    "pairwise:judge=MODEL,reference=MODEL, feedback"
)
Replies = Mapping[str, str]  # a judge request's key -> the judge's reply


class Grader(ABC):
    """A grader: ``name`` is its stable id, stored with each grade; a task without a reference
    is not graded when ``needs_reference``; ``judge_model`` is the model the runner sends the
    ``requests`` to (None: no judge); ``reference_model`` the model whose answer a pairwise
    judge compares with (the runner runs it too)."""

    needs_reference: ClassVar[bool] = True
    judge_model: str | None = None
    reference_model: str | None = None

    @property
    @abstractmethod
    def name(self) -> str: ...

    def requests(
        self, task: LabelTask, answer: str, reference_answer: str | None = None
    ) -> list[JudgeRequest]:
        """What the judge must answer before ``grade`` can score ``answer``; nothing by default."""
        return []

    def grade(
        self,
        task: LabelTask,
        answer: str,
        verdicts: Replies | None = None,
        reference_answer: str | None = None,
        *,
        model: str | None = None,
    ) -> Grade:
        """``answer``'s grade; ``reference_answer`` is the reference model's answer (pairwise),
        ``model`` the model that wrote ``answer`` (``UserFeedback`` needs it)."""
        if self.needs_reference and not (task.reference or "").strip():
            return _no_grade(f"{self.name} needs a reference and task {task.id!r} has none")
        return self._grade(task, answer, verdicts or {}, reference_answer, model)

    @abstractmethod
    def _grade(
        self, task: LabelTask, answer: str, verdicts: Replies, reference_answer: str | None, model: str | None
    ) -> Grade: ...


def _no_grade(reason: str, **detail: Any) -> Grade:
    return Grade(None, {"reason": reason, **detail})


class ReferenceGrader(Grader):
    """A grader of the answer against ``task.reference`` alone."""

    def _grade(
        self, task: LabelTask, answer: str, verdicts: Replies, reference_answer: str | None, model: str | None
    ) -> Grade:
        return self.compare(answer, task.reference or "")

    @abstractmethod
    def compare(self, answer: str, reference: str) -> Grade: ...


_EDGES = " \"'`“”‘’«»*_"  # stripped from both ends: quotes and markdown emphasis
_ANSWER_PREFIX = re.compile(r"^(?:the )?(?:final )?answer ?(?::|is\b ?:?) ?")


def _strip_edges(text: str) -> str:
    return text.strip(_EDGES).rstrip(".,;:!?").strip(_EDGES)


def normalise_answer(text: str) -> str:
    """``text`` casefolded, whitespace collapsed, without surrounding quotes, emphasis, trailing
    punctuation, or a leading "answer:" / "the answer is"."""
    text = " ".join(text.casefold().split())
    return _strip_edges(_ANSWER_PREFIX.sub("", _strip_edges(text)))


@dataclass(frozen=True)
class ExactMatch(ReferenceGrader):
    """1 when the answer equals the reference after ``normalise_answer``, else 0."""

    @property
    def name(self) -> str:
        return "exact"

    def compare(self, answer: str, reference: str) -> Grade:
        return Grade(float(normalise_answer(answer) == normalise_answer(reference)))


_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-+\u2212])?"  # not inside a word or another number
    r"(?P<mantissa>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?!\d)(?P<exponent>[eE][-+]?\d+)?"
    r"(?:\s*/\s*(?P<denominator>\d+)(?![\d.]))?"
)
_LATEX_FRACTION = re.compile(r"\\[dt]?frac\{([^{}]+)\}\{([^{}]+)\}")
_NUMBER_MARKER = re.compile(r"####|\\boxed\{|\banswer\b\s*(?:is\b|[:=])", re.IGNORECASE)


def _numbers(text: str) -> list[float]:
    numbers = []
    for match in _NUMBER.finditer(text):
        value = float(match["mantissa"].replace(",", "") + (match["exponent"] or ""))
        if match["denominator"] is not None:
            value = value / int(match["denominator"]) if int(match["denominator"]) else math.nan
        if math.isfinite(value):
            numbers.append(-value if match["sign"] in ("-", "\u2212") else value)
    return numbers


def final_number(text: str) -> float | None:
    """The number ``text`` answers with: the first after its last marker ("####", ``\\boxed{``,
    "answer is", "answer:"), else its last number; None if it has none. Thousands commas,
    currency signs, fractions ("3/4", ``\\frac{3}{4}``) and exponents are read."""
    text = _LATEX_FRACTION.sub(r"\1/\2", text)
    markers = list(_NUMBER_MARKER.finditer(text))
    after_marker = _numbers(text[markers[-1].end() :])[:1] if markers else []
    numbers = after_marker or _numbers(text)[-1:]
    return numbers[0] if numbers else None


@dataclass(frozen=True)
class NumericMatch(ReferenceGrader):
    """1 when the answer's ``final_number`` is ``math.isclose`` to the reference's, else 0."""

    rel_tol: float = 1e-6
    abs_tol: float = 1e-9

    def __post_init__(self) -> None:
        check_non_negative(self.rel_tol, "NumericMatch.rel_tol", optional=False)
        check_non_negative(self.abs_tol, "NumericMatch.abs_tol", optional=False)

    @property
    def name(self) -> str:
        if self == NumericMatch():
            return "numeric"
        absolute = "" if self.abs_tol == NumericMatch.abs_tol else f",{self.abs_tol!r}"
        return f"numeric:{self.rel_tol!r}{absolute}"

    def compare(self, answer: str, reference: str) -> Grade:
        expected = final_number(reference)
        if expected is None:
            return _no_grade(f"the reference {reference!r} holds no number")
        given = final_number(answer)
        if given is None:
            return Grade(0.0, {"reason": "the answer holds no number", "reference_number": expected})
        close = math.isclose(given, expected, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
        return Grade(float(close), {"answer_number": given, "reference_number": expected})


@dataclass(frozen=True)
class ChoiceMatch(ReferenceGrader):
    """1 when the answer chooses the reference's letter; 0 for another, none, or several
    (``detail["reason"] == "ambiguous"``). ``choices`` says how the choice is read."""

    letters: str = "ABCDEFGHIJ"

    def __post_init__(self) -> None:
        letters = self.letters
        if not letters.isalnum() or letters != letters.upper() or len(set(letters)) != len(letters):
            raise ConfigError(f"ChoiceMatch.letters must be distinct capitals or digits, not {letters!r}")

    @property
    def name(self) -> str:
        return "choice" if self.letters == ChoiceMatch.letters else f"choice:{self.letters}"

    def choices(self, answer: str) -> list[str]:
        """The distinct letters ``answer`` names as its choice (several: ambiguous): those of its
        statements ("Answer: B", "the answer is (B) or C", ``\\boxed{B}``); without any, the
        letter it starts with ("B", "(B)", "**B**", "B. Paris") and those set off anywhere ("(B)",
        "[B]", "**B**"). Only capitals count: "the answer is a dog" names no letter."""
        letter = f"[{re.escape(self.letters)}]"
        token = rf"(?<!\w)[(\[*]*{letter}[)\]*]*(?![\w'])"
        statement = (
            r"(?i:\banswer\b(?:\s+is)?\s*[:=]?\s*(?:option\s+|choice\s+)?)"
            rf"({token}(?:\s*(?:,|/|(?i:or|and))\s*{token})*)|\\boxed\{{\s*({letter})\s*\}}"
        )
        stated = " ".join(listed or boxed for listed, boxed in re.findall(statement, answer))
        named = re.findall(rf"(?<!\w)({letter})(?!\w)", stated)
        if not named:
            alone = rf"^[\s(\[*]*({letter})(?:[\s)\]*.:]*$|[)\].:]\s)"
            set_off = rf"(?:\(|\[|\*\*)({letter})(?:\)|\]|\*\*)"
            named = re.findall(alone, answer) + re.findall(set_off, answer)
        return list(dict.fromkeys(named))

    def compare(self, answer: str, reference: str) -> Grade:
        expected = reference.strip().strip("()[]*.: ").upper()
        if len(expected) != 1 or expected not in self.letters:
            return _no_grade(f"the reference {reference!r} is not one of the letters {self.letters}")
        chosen = self.choices(answer)
        if len(chosen) != 1:
            reason = "ambiguous" if chosen else "no choice found"
            return Grade(0.0, {"reason": reason, "choices": chosen, "reference": expected})
        return Grade(float(chosen[0] == expected), {"choice": chosen[0], "reference": expected})


_REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


def _compile(pattern: str, flags: str, what: str) -> re.Pattern[str]:
    if not set(flags) <= set(_REGEX_FLAGS):
        raise ConfigError(f"{what}: regex flags {flags!r}; use some of {''.join(_REGEX_FLAGS)}")
    try:
        return re.compile(pattern, sum(_REGEX_FLAGS[flag] for flag in set(flags)))
    except re.error as error:
        raise ConfigError(f"{what}: {pattern!r} is not a valid regex: {error}") from None


@dataclass(frozen=True)
class RegexMatch(ReferenceGrader):
    """Without ``pattern``: 1 when the reference, read as a regex, is found in the answer
    (``re.search``). With one: its first group (or whole match) in the answer is compared with
    the reference like ``ExactMatch``; no match scores 0. ``flags``: some of "imsx" (re's
    IGNORECASE, MULTILINE, DOTALL, VERBOSE). A bad pattern is a ``ConfigError`` here, a bad
    reference regex a None grade saying why."""

    pattern: str | None = None
    flags: str = ""

    def __post_init__(self) -> None:
        if self.pattern == "":
            raise ConfigError("RegexMatch.pattern is empty; give None to read each reference as the regex")
        _compile(self.pattern or "", self.flags, "RegexMatch")

    @property
    def name(self) -> str:
        kind = f"regex/{self.flags}" if self.flags else "regex"
        return kind if self.pattern is None else f"{kind}:{self.pattern}"

    def compare(self, answer: str, reference: str) -> Grade:
        if self.pattern is None:
            try:
                return Grade(
                    float(_compile(reference, self.flags, "the reference").search(answer) is not None)
                )
            except ConfigError as error:
                return _no_grade(str(error))
        match = _compile(self.pattern, self.flags, "RegexMatch").search(answer)
        if match is None:
            return Grade(0.0, {"reason": "the pattern is not in the answer"})
        extracted = (match.group(1) if match.re.groups else match.group(0)) or ""
        same = normalise_answer(extracted) == normalise_answer(reference)
        return Grade(float(same), {"extracted": extracted})


def _check_model(model: object, what: str) -> None:
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"{what} must be a model name, not {model!r}")


def _judge_messages(instructions: str, task: LabelTask, **answers: str) -> list[dict[str, Any]]:
    """A system turn with ``instructions``; a user turn with the question (the prompt's text, or
    every turn with its role when it has several), the task's reference when it has one and the
    answers, each in tags of its name."""
    several_turns = not isinstance(task.prompt, str) and len(task.prompt) > 1
    question = prompt_text(task.prompt, "conversation" if several_turns else "last_user")
    parts = {"question": question, "reference_answer": task.reference, **answers}
    body = "\n\n".join(f"<{tag}>\n{text}\n</{tag}>" for tag, text in parts.items() if text is not None)
    return [{"role": "system", "content": instructions}, {"role": "user", "content": body}]


def _one_verdict(pattern: str, reply: str) -> tuple[str | None, str]:
    """The one distinct value ``pattern`` finds in ``reply``, or None and why not."""
    found = list(dict.fromkeys(re.findall(pattern, reply)))
    return (found[0], "") if len(found) == 1 else (None, "several" if found else "none")


DEFAULT_RUBRIC = """\
- Correctness (weighs most): are its facts, reasoning, calculations and code right?
- Helpfulness: does it do what was asked, completely, following the user's instructions?
- Relevance: does it stay on the question, without padding or digressions?
- Depth: does it give the explanation, detail and caveats the question calls for, and no more?
- Clarity: is it well organised and easy to follow?"""

_RUBRIC_INSTRUCTIONS = """\
You are an impartial grader of an AI assistant's answer to a user's question. Grade it on:
{rubric}
When a reference answer is given, take it as correct and count disagreement with it against the
answer. Judge substance: length and style count only where they help or hinder the user. Explain
your assessment in a few sentences, then rate the answer from 1 (useless or wrong) to 10
(excellent) on a last line written exactly as: Rating: [[N]]"""

_PAIRWISE_INSTRUCTIONS = """\
You are an impartial judge comparing two AI assistants' answers to the same user question.
Judge correctness first, then helpfulness, relevance, depth and clarity. When a reference
answer is given, take it as correct. The answers come in no particular order: let neither their
order, their length nor the assistants' names sway you. Explain your comparison in a few
sentences, then end with exactly one verdict: [[A]] if assistant A's answer is better, [[B]]
if assistant B's answer is better, [[C]] if they are equally good."""


@dataclass(frozen=True)
class RubricJudge(Grader):
    """``judge_model`` rates the answer 1-10 on ``rubric`` (default ``DEFAULT_RUBRIC``), seeing
    the task's reference when it has one; score (rating - 1) / 9. The rating is read from
    "[[N]]" (or "Rating: N" when no brackets appear); none, several different or one outside
    1-10 is a None grade. A custom rubric's hash is part of ``name``: its grades stay apart."""

    judge_model: str = field()  # field(): required, though Grader's default is None
    rubric: str | None = None
    needs_reference: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _check_model(self.judge_model, "RubricJudge.judge_model")

    @property
    def name(self) -> str:
        digest = "" if self.rubric is None else "#" + hashlib.sha256(self.rubric.encode()).hexdigest()[:8]
        return f"rubric:{self.judge_model}{digest}"

    def requests(
        self, task: LabelTask, answer: str, reference_answer: str | None = None
    ) -> list[JudgeRequest]:
        instructions = _RUBRIC_INSTRUCTIONS.format(rubric=self.rubric or DEFAULT_RUBRIC)
        return [JudgeRequest("rating", _judge_messages(instructions, task, answer=answer))]

    def _grade(
        self, task: LabelTask, answer: str, verdicts: Replies, reference_answer: str | None, model: str | None
    ) -> Grade:
        reply = verdicts.get("rating")
        if reply is None:
            return _no_grade("no verdict from the judge")
        rating, why = _one_verdict(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]", reply)
        if why == "none":  # a judge that dropped the brackets
            rating, why = _one_verdict(r"(?i:\brating\s*:)\s*(\d+(?:\.\d+)?)(?!\d)", reply)
        if rating is None:
            return _no_grade(
                f"the verdict gives {why} ratings" if why == "several" else "no rating in the verdict"
            )
        if not 1 <= float(rating) <= 10:
            return _no_grade(f"the rating {rating} is not within 1-10")
        return Grade((float(rating) - 1) / 9, {"rating": float(rating)})


@dataclass(frozen=True)
class PairwiseJudge(Grader):
    """``judge_model`` compares the answer (shown first, then second) with ``reference_model``'s;
    each verdict is "[[A]]", "[[B]]" or "[[C]]" (tie). Score: the answer's mean outcome (win 1,
    tie 0.5, loss 0), but 0.5 with ``detail["position_bias"]`` when the judge chose the same
    position both times. ``detail["verdicts"]`` keeps both verdicts."""

    judge_model: str = field()  # field(): required, though Grader's defaults are None
    reference_model: str = field()
    needs_reference: ClassVar[bool] = False
    ORDERS: ClassVar[tuple[str, str]] = ("answer-first", "reference-first")

    def __post_init__(self) -> None:
        _check_model(self.judge_model, "PairwiseJudge.judge_model")
        _check_model(self.reference_model, "PairwiseJudge.reference_model")

    @property
    def name(self) -> str:
        return f"pairwise:judge={self.judge_model},reference={self.reference_model}"

    def requests(
        self, task: LabelTask, answer: str, reference_answer: str | None = None
    ) -> list[JudgeRequest]:
        """One request per order; none without the reference model's answer."""
        if reference_answer is None:
            return []
        pairs = ((answer, reference_answer), (reference_answer, answer))
        return [
            JudgeRequest(key, _judge_messages(_PAIRWISE_INSTRUCTIONS, task, answer_a=a, answer_b=b))
            for key, (a, b) in zip(self.ORDERS, pairs, strict=True)
        ]

    def _grade(
        self, task: LabelTask, answer: str, verdicts: Replies, reference_answer: str | None, model: str | None
    ) -> Grade:
        if reference_answer is None:
            return _no_grade(f"no answer from the reference model {self.reference_model}")
        picks: dict[str, str] = {}
        for key in self.ORDERS:
            if key not in verdicts:
                return _no_grade(f"no {key} verdict from the judge")
            pick, why = _one_verdict(r"\[\[\s*([ABC])\s*\]\]", verdicts[key])
            if pick is None:
                return _no_grade(f"the {key} verdict names {why} of [[A]], [[B]], [[C]]", verdicts=picks)
            picks[key] = pick
        first, second = picks["answer-first"], picks["reference-first"]
        if first == second != "C":
            return Grade(0.5, {"verdicts": picks, "position_bias": True})
        shown_first = {"A": 1.0, "C": 0.5, "B": 0.0}  # the outcome of the answer shown first
        score = (shown_first[first] + 1.0 - shown_first[second]) / 2
        return Grade(score, {"verdicts": picks, "position_bias": False})


@dataclass(frozen=True)
class UserFeedback(Grader):
    """The score a user gave a logged call (``task.feedback``), for the model that answered it
    (``task.answered_by``); other models get a None grade."""

    needs_reference: ClassVar[bool] = False

    @property
    def name(self) -> str:
        return "feedback"

    def _grade(
        self, task: LabelTask, answer: str, verdicts: Replies, reference_answer: str | None, model: str | None
    ) -> Grade:
        if task.feedback is None:
            return _no_grade("the task has no feedback")
        if model is None or model != task.answered_by:
            return _no_grade("no feedback for this model", answered_by=task.answered_by)
        if not 0 <= task.feedback <= 1:
            return _no_grade(f"the feedback {task.feedback!r} is not within [0, 1]")
        return Grade(float(task.feedback))


FEEDBACK = UserFeedback()


def parse_grader(spec: str) -> Grader:
    """The grader a CLI spec names (``SPEC_FORMS``); ``parse_grader(g.name) == g`` for each grader
    it builds. The argument is everything after the first ":", so model names may hold ":"."""
    head, colon, argument = spec.strip().partition(":")
    kind, _, flags = head.partition("/")
    try:
        grader = _from_spec(kind, flags, argument if colon else None)
    except ValueError as error:  # ConfigError is one
        raise ConfigError(f"grader {spec!r}: {error}; the forms are {SPEC_FORMS}") from None
    if grader is None:
        raise ConfigError(f"unknown grader {spec!r}; the forms are {SPEC_FORMS}")
    return grader


def _from_spec(kind: str, flags: str, argument: str | None) -> Grader | None:
    if kind == "regex":
        return RegexMatch(argument, flags)
    if flags:
        return None
    if argument is None:
        plain: dict[str, Grader] = {"exact": ExactMatch(), "numeric": NumericMatch(), "choice": ChoiceMatch()}
        return FEEDBACK if kind == "feedback" else plain.get(kind)
    if kind == "numeric" and argument.count(",") <= 1:
        return NumericMatch(*(float(tolerance) for tolerance in argument.split(",")))
    if kind == "choice":
        return ChoiceMatch(argument)
    if kind == "rubric" and argument:
        return RubricJudge(argument)
    if kind == "pairwise":
        models = dict(part.partition("=")[::2] for part in argument.split(","))
        if sorted(models) == ["judge", "reference"] and argument.count(",") == 1:
            return PairwiseJudge(models["judge"], models["reference"])
    return None
