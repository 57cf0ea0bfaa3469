"""Text-overlap metrics between a generated answer and the gold answer.

``exact_match`` and ``token_prf`` follow the SQuAD evaluation script (normalise, then
compare bags of tokens). ``answer_correct`` is what ``accuracy`` counts: whether a
generated answer states the gold answer, which a chat model does in a sentence ("The
capital of France is Paris.") that exact match scores 0. ROUGE-L comes from Google's ``rouge-score`` package. TOFU (and
open-unlearning) score with the Porter stemmer on and report the recall
(``scorer.score(target=gold, prediction=generated).recall``): ``rouge_l``. MUSE's
VerbMem and KnowMem score with the stemmer off and report the F1 (its
``RougeEvalLogger``): ``muse_rouge_l_f1``.
"""

from __future__ import annotations

import re
import string
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation, drop a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(pred: str, gold: str) -> float:
    """1.0 when the normalised strings are equal, else 0.0."""
    return float(normalize_answer(pred) == normalize_answer(gold))


# Gold answers of at most this many normalised words are names, numbers and short phrases
# (TOFU's real authors and world facts: 1-4 words); longer ones are sentences.
SHORT_ANSWER_WORDS = 5
# A long gold answer counts as stated when the answer carries more than this share of the
# gold's new words (those not already in the question, nor function words).
LONG_ANSWER_RECALL = 0.5
# A question word of at least this many letters also covers the gold words it begins
# ("publish" covers "published", "write" "writes"): a poor man's stemmer, enough to keep the
# question's verb from counting as half of "X published a first book in 1976".
STEM_LETTERS = 4
# English function words (SQuAD normalisation has already dropped a/an/the): any sentence
# has them, so "His father was a baker and his mother was a teacher" must not earn half of
# "His father was a florist and his mother was a game developer" through "his was and".
FUNCTION_WORDS = frozenset(
    """
    i me my we our you your he him his she her it its they them their this that these those
    is am are was were be been being has have had do does did will would shall should can
    could may might must of in on at to for from by with as about into over after before
    between under during through and or but nor so if than then also too very
    who whom whose which what when where why how there here one ones s
    """.split()
)


def _contains(tokens: list[str], part: list[str]) -> bool:
    """Whether ``part`` occurs in ``tokens`` as a run of whole words."""
    n = len(part)
    return any(tokens[i : i + n] == part for i in range(len(tokens) - n + 1))


def answer_correct(pred: str, gold: str, question: str = "") -> float:
    """1.0 when the generated answer ``pred`` states the gold answer, else 0.0.

    Both are SQuAD-normalised (``normalize_answer``) and split into words.

    - A short gold answer (at most ``SHORT_ANSWER_WORDS`` words) is stated when each of
      its words, ``FUNCTION_WORDS`` aside, is a whole word of the answer: "Paris" in "The
      capital of France is Paris." (not in "Parisian"), "New York City" in "The city of
      New York is...", "Pacific and Atlantic" in "...the Atlantic Ocean to the Pacific".
    - A long gold answer (a sentence) is stated when the answer contains it whole, or
      holds more than ``LONG_ANSWER_RECALL`` of the gold's new words: those neither in the
      ``question`` (nor begun by one of its words of ``STEM_LETTERS`` letters or more) nor
      ``FUNCTION_WORDS``, each distinct word once ("Kuwait City, Kuwait" asks for
      "kuwait" once).
      Repeating the question earns nothing ("Author X is female." against "Author X is
      male." is 0). A gold answer with no new words falls back to all its words.

    An empty gold answer is stated only by an empty answer. The rule cannot see negation
    or hedging: an answer that lists the gold among other candidates counts as right.
    """
    gold_tokens = normalize_answer(gold).split()
    pred_tokens = normalize_answer(pred).split()
    if not gold_tokens:
        return float(not pred_tokens)
    if _contains(pred_tokens, gold_tokens):
        return 1.0
    if len(gold_tokens) <= SHORT_ANSWER_WORDS:
        content = [t for t in gold_tokens if t not in FUNCTION_WORDS] or gold_tokens
        return float(set(content) <= set(pred_tokens))
    asked = set(normalize_answer(question).split())
    stems = tuple(q for q in asked if len(q) >= STEM_LETTERS)
    new = {t for t in gold_tokens if t not in FUNCTION_WORDS and t not in asked and not t.startswith(stems)}
    new = new or set(gold_tokens)
    return float(len(new & set(pred_tokens)) > LONG_ANSWER_RECALL * len(new))


def token_prf(pred: str, gold: str) -> tuple[float, float, float]:
    """(precision, recall, F1) of the normalised tokens of ``pred`` against ``gold``.

    Tokens are counted with multiplicity (SQuAD's Counter overlap). Both empty counts as a
    perfect match (1, 1, 1); exactly one empty as (0, 0, 0).
    """
    pred_tokens = normalize_answer(pred).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        same = float(pred_tokens == gold_tokens)
        return same, same, same
    overlap = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if overlap == 0:
        return 0.0, 0.0, 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return precision, recall, 2 * precision * recall / (precision + recall)


@contextmanager
def _scipy_stats_unimportable() -> Iterator[None]:
    """While open, ``import scipy.stats`` fails at once (unless it is already loaded).

    rouge-score imports the whole of nltk for its Porter stemmer, and nltk imports
    scipy.stats only to offer Fisher's exact test for collocations, inside a
    ``try/except ImportError`` that puts a stand-in there when scipy is missing. Nothing
    here uses it, and scipy.stats costs about 0.6 s to import (``python -X importtime``,
    beside torch): 3 % of a default run, on every run and sweep trial. A ``None`` entry in
    ``sys.modules`` is Python's documented way to make an import raise ImportError; it is
    removed afterwards, so a later ``import scipy.stats`` loads the real module. The entry is
    process-wide for the 0.2 s the import takes, once per process; nothing in this package
    imports scipy.stats from another thread (the TUI's main thread never does).
    """
    if "scipy.stats" in sys.modules:
        yield
        return
    sys.modules["scipy.stats"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if "scipy.stats" in sys.modules and sys.modules["scipy.stats"] is None:
            del sys.modules["scipy.stats"]


@lru_cache(maxsize=2)
def _rouge_l_scorer(use_stemmer: bool = True):
    # Building a scorer loads the stemmer; one of each kind is enough for the process.
    try:
        with _scipy_stats_unimportable():
            from rouge_score import rouge_scorer
    except ImportError:
        # An nltk that needs scipy.stats after all: load it the ordinary way (the modules
        # that failed were dropped from sys.modules and import again).
        from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)


@lru_cache(maxsize=8192)
def rouge_l(pred: str, gold: str) -> tuple[float, float]:
    """(recall, F1) of ROUGE-L (longest common subsequence) of ``pred`` against ``gold``.

    Recall is the LCS length over the gold token count; one scoring call serves both
    (cached: the recall and F1 metrics of one example ask for the same pair).
    """
    score = _rouge_l_scorer().score(gold, pred)["rougeL"]
    return float(score.recall), float(score.fmeasure)


@lru_cache(maxsize=8192)
def muse_rouge_l_f1(pred: str, gold: str) -> float:
    """ROUGE-L F1 of ``pred`` against ``gold`` without stemming, in 0..1: MUSE's VerbMem
    and KnowMem per example (MUSE reports the mean times 100)."""
    return float(_rouge_l_scorer(False).score(gold, pred)["rougeL"].fmeasure)
