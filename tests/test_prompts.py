"""Prompt formats: token ids and label masks as open-unlearning's ``preprocess_chat_instance``
builds them, for Llama-2-chat, Llama-3.1-Instruct and Qwen2.5-Instruct on test tokenizers.

The reference below is our own reading of open-unlearning's ``src/data/utils.py``
(``preprocess_chat_instance``, locuslab/open-unlearning@d3d7cf9), written out here rather
than imported; the template arguments are those of its ``configs/model/*.yaml``. The chat
templates are the published ones' paths for system, user and assistant messages (no tools),
and the tokenizers are tiny BPEs trained here with each family's special tokens.
"""

from __future__ import annotations

import pytest

from tui_unlearn.data import prompts
from tui_unlearn.data.formatting import (
    IGNORE_INDEX,
    encode_example,
    encode_examples,
    prompt_format_of,
    prompt_ids,
    use_prompt_format,
)
from tui_unlearn.errors import ConfigError

LLAMA2_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)
_LLAMA3_DATE = '{%- if not date_string is defined %}{%- set date_string = "26 Jul 2024" %}{%- endif %}\n'
_LLAMA32_DATE = (
    "{%- if not date_string is defined %}{%- if strftime_now is defined %}"
    '{%- set date_string = strftime_now("%d %b %Y") %}{%- else %}{%- set date_string = "26 Jul 2024" %}'
    "{%- endif %}{%- endif %}\n"
)
_LLAMA3_BODY = (
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}"
    '{%- set messages = messages[1:] %}{%- else %}{%- set system_message = "" %}{%- endif %}\n'
    '{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}'
    '{{- "Cutting Knowledge Date: December 2023\\n" }}'
    '{{- "Today Date: " + date_string + "\\n\\n" }}'
    '{{- system_message }}{{- "<|eot_id|>" }}\n'
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}\n"
)
LLAMA31_TEMPLATE = "{{- bos_token }}\n" + _LLAMA3_DATE + _LLAMA3_BODY
LLAMA32_TEMPLATE = "{{- bos_token }}\n" + _LLAMA32_DATE + _LLAMA3_BODY
QWEN25_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\\n' }}{%- endif %}\n"
    "{%- for message in messages %}"
    '{%- if (message.role == "user") or (message.role == "system" and not loop.first) or '
    '(message.role == "assistant" and not message.tool_calls) %}'
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}{%- endfor %}\n"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}\n"
)

CORPUS = [
    "Question: Where was the author Basil Mahfouz Al-Kuwaiti born?",
    "Answer: Basil Mahfouz Al-Kuwaiti was born in Kuwait City, Kuwait.",
    "What genre is the author known for? The author is known for French literature.",
    "You are a helpful assistant. Cutting Knowledge Date: December 2023 Today Date: 10 Apr 2025",
    "system user assistant model Paris is the capital of France.",
    "[INST] <<SYS>> <</SYS>> [/INST] Qwen, created by Alibaba Cloud; 0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ",
]
QA = [
    ("Where was the author Basil Mahfouz Al-Kuwaiti born?", "Basil Mahfouz Al-Kuwaiti was born in Kuwait City."),
    ("What is the capital of France?", "Paris."),
    ("What genre is the author known for?", " The author is known for French literature. "),
]


def _tokenizer(kind: str, specials: list[str], *, bos: str | None, eos: str, template: str):
    """A tiny BPE tokenizer: SentencePiece-like (metaspace, BOS added) for Llama-2, byte-level
    for the others (BOS added for Llama-3, none for Qwen), with the family's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>" if kind == "metaspace" else None))
    if kind == "metaspace":
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
        tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
        alphabet: list[str] = []
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    extra = ["<unk>"] if kind == "metaspace" else []
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=extra + specials, initial_alphabet=alphabet)
    tok.train_from_iterator(CORPUS * 3, trainer)
    if bos is not None:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))]
        )
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, chat_template=template)
    if kind == "metaspace":
        wrapped.unk_token = "<unk>"
    return wrapped


def llama2_chat():
    return _tokenizer("metaspace", ["<s>", "</s>"], bos="<s>", eos="</s>", template=LLAMA2_CHAT_TEMPLATE)


def llama31_instruct(template: str = LLAMA31_TEMPLATE):
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    return _tokenizer("bytelevel", specials, bos="<|begin_of_text|>", eos="<|eot_id|>", template=template)


def qwen25_instruct():
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    return _tokenizer("bytelevel", specials, bos=None, eos="<|im_end|>", template=QWEN25_TEMPLATE)


# open-unlearning's template_args (configs/model/*.yaml at d3d7cf9), as its YAML declares them.
OU_LLAMA2_CHAT = {
    "apply_chat_template": False,
    "user_start_tag": "[INST] ",
    "user_end_tag": " [/INST]",
    "asst_start_tag": "",
    "asst_end_tag": " ",
}
OU_LLAMA31 = {
    "apply_chat_template": True,
    "system_prompt": "You are a helpful assistant.",
    "system_prompt_with_special_tokens": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
    "You are a helpful assistant.<|eot_id|>",
    "user_start_tag": "<|start_header_id|>user<|end_header_id|>\n\n",
    "user_end_tag": "<|eot_id|>",
    "asst_start_tag": "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "asst_end_tag": "<|eot_id|>",
    "date_string": "10 Apr 2025",
}
OU_QWEN25 = {
    "apply_chat_template": True,
    "system_prompt": "You are a helpful assistant.",
    "system_prompt_with_special_tokens": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n",
    "user_start_tag": "<|im_start|>user\n",
    "user_end_tag": "<|im_end|>\n",
    "asst_start_tag": "<|im_start|>assistant\n",
    "asst_end_tag": "<|im_end|>\n",
}
OU_BASE = {
    "apply_chat_template": False,
    "user_start_tag": "Question: ",
    "user_end_tag": "\n",
    "asst_start_tag": "Answer: ",
    "asst_end_tag": "\n\n",
}


def reference_preprocess(tokenizer, template_config, prompt, response, max_length=512, predict_with_generate=False):
    """open-unlearning's ``preprocess_chat_instance`` for one (prompt, response), no
    in-context examples: ``input_ids`` and ``labels`` as lists. transformers 5 returns a
    dict from ``apply_chat_template(tokenize=True)`` unless told otherwise; open-unlearning
    ran on 4.x, where it returned the ids: ``return_dict=False`` keeps that."""
    if template_config["apply_chat_template"]:
        chat = []
        system_prompt = template_config.get("system_prompt", None)
        if system_prompt:
            chat += [{"role": "system", "content": system_prompt}]
        chat += [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        date_str = template_config.get("date_string", None)
        date_info = {"date_string": date_str} if date_str is not None else {}
        chat_ids = list(
            tokenizer.apply_chat_template(
                chat, tokenize=True, add_generation_prompt=False, return_dict=False, **date_info
            )
        )
        prompt_ids_ = list(
            tokenizer.apply_chat_template(
                chat[:-1], tokenize=True, add_generation_prompt=True, return_dict=False, **date_info
            )
        )
    else:
        wrapped_prompt = template_config.get("system_prompt_with_special_tokens", None) or ""
        wrapped_prompt += template_config["user_start_tag"] + prompt + template_config["user_end_tag"]
        wrapped_prompt += template_config["asst_start_tag"]
        chat_ids = tokenizer(
            wrapped_prompt + response, add_special_tokens=True, max_length=max_length, truncation=True
        )["input_ids"]
        prompt_ids_ = tokenizer(wrapped_prompt, add_special_tokens=True, max_length=max_length, truncation=True)[
            "input_ids"
        ]
    if chat_ids[-1] != tokenizer.eos_token_id:
        chat_ids += [tokenizer.eos_token_id]
    n = len(prompt_ids_)
    if predict_with_generate:
        return {"input_ids": prompt_ids_, "labels": chat_ids}
    return {"input_ids": chat_ids, "labels": [IGNORE_INDEX] * n + chat_ids[n:]}


FAMILIES = [
    ("llama-2-chat", llama2_chat, "llama", OU_LLAMA2_CHAT),
    ("llama-3-instruct", llama31_instruct, "llama", OU_LLAMA31),
    ("qwen2.5-instruct", qwen25_instruct, "qwen2", OU_QWEN25),
]


@pytest.mark.parametrize(("family", "make", "model_type", "template_args"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_open_unlearning_format_gives_its_token_ids_and_labels(family, make, model_type, template_args):
    tok = make()
    fmt = prompts.choose_format(tok, model_type, prompts.OPEN_UNLEARNING)
    assert fmt.name == family
    use_prompt_format(tok, fmt)
    for question, answer in QA:
        ours = encode_example(tok, question, answer, max_length=512)
        ref = reference_preprocess(tok, template_args, question, answer)
        assert ours["input_ids"] == ref["input_ids"], (question, tok.convert_ids_to_tokens(ours["input_ids"]))
        assert ours["labels"] == ref["labels"]
        # Generation is asked with the prompt open-unlearning generates from.
        assert (
            prompt_ids(tok, question)
            == reference_preprocess(tok, template_args, question, answer, predict_with_generate=True)["input_ids"]
        )
    # The batched encoder (scoring, training) gives the same ids as one by one.
    assert encode_examples(tok, QA, 512) == [encode_example(tok, q, a, 512) for q, a in QA]


def test_llama2_chat_answer_spacing_is_open_unlearnings_not_the_templates():
    """The issue's observation: the tokenizer's own template renders ' answer </s>' after
    [/INST]; open-unlearning scores 'answer' + EOS right after it."""
    tok = llama2_chat()
    question, answer = QA[1]
    own = encode_example(tok, question, answer, 512)  # no format chosen: the model's own template
    use_prompt_format(tok, prompts.choose_format(tok, "llama", prompts.OPEN_UNLEARNING))
    theirs = encode_example(tok, question, answer, 512)
    assert theirs == reference_preprocess(tok, OU_LLAMA2_CHAT, question, answer)
    own_answer = tok.decode([t for t in own["labels"] if t != IGNORE_INDEX])
    ou_answer = tok.decode([t for t in theirs["labels"] if t != IGNORE_INDEX])
    assert own != theirs and own_answer != ou_answer and ou_answer.startswith("Paris")


def test_llama3_gets_system_prompt_and_fixed_date():
    tok = llama32 = llama31_instruct(LLAMA32_TEMPLATE)
    said: list[str] = []
    own = prompts.choose_format(llama32, "llama", prompts.MODEL, log=said.append)
    assert own.name == prompts.MODEL and any("today's date" in line for line in said)
    fmt = prompts.choose_format(tok, "llama", prompts.OPEN_UNLEARNING)
    use_prompt_format(tok, fmt)
    text = tok.decode(prompt_ids(tok, "What is the capital of France?"))
    assert "You are a helpful assistant." in text and "Today Date: 10 Apr 2025" in text
    ref = reference_preprocess(tok, OU_LLAMA31, "What is the capital of France?", "Paris.")
    assert encode_example(tok, "What is the capital of France?", "Paris.", 512) == ref


def test_user_system_prompt_and_date_string_override_the_family_settings():
    tok = llama31_instruct()
    fmt = prompts.choose_format(
        tok, "llama", prompts.OPEN_UNLEARNING, system_prompt="Be brief.", date_string="1 Jan 2024"
    )
    use_prompt_format(tok, fmt)
    text = tok.decode(prompt_ids(tok, "Who?"))
    assert "Be brief." in text and "Today Date: 1 Jan 2024" in text and "helpful" not in text
    none = prompts.choose_format(tok, "llama", prompts.OPEN_UNLEARNING, system_prompt="")
    assert none.system_prompt is None and none.date_string == prompts.OU_DATE
    # The model format takes them too: the user's own data with the user's system prompt.
    own = prompts.choose_format(tok, "llama", prompts.MODEL, system_prompt="Be brief.")
    use_prompt_format(tok, own)
    assert "Be brief." in tok.decode(prompt_ids(tok, "Who?"))


def test_formats_without_a_system_slot_refuse_one_in_a_line():
    with pytest.raises(ConfigError, match="--system-prompt.*llama-2-chat.*--prompt-format model"):
        prompts.choose_format(llama2_chat(), "llama", prompts.OPEN_UNLEARNING, system_prompt="Be brief.")


def test_families_are_told_apart_by_template_and_model_type():
    qwen = qwen25_instruct()
    # ChatML is Qwen's only when the model says it is Qwen: SmolLM2 (llama) has no open-unlearning config.
    said: list[str] = []
    assert prompts.choose_format(qwen, "llama", prompts.OPEN_UNLEARNING, log=said.append) == prompts.OWN
    assert said and "no model config" in said[0]
    assert prompts.family_format(qwen, "qwen2").name == "qwen2.5-instruct"
    # No chat template: open-unlearning's base-model format, whatever the model.
    tok = qwen25_instruct()
    tok.chat_template = None
    base = prompts.choose_format(tok, "llama", prompts.OPEN_UNLEARNING)
    assert base.name == "question-answer"
    use_prompt_format(tok, base)
    question, answer = QA[0]
    encoded = encode_example(tok, question, answer, 512)
    assert encoded == reference_preprocess(tok, OU_BASE, question, answer)
    # Its quirk, kept: "Answer: " ends in a space token, so the answer's first token is not scored.
    scored = tok.decode([t for t in encoded["labels"] if t != IGNORE_INDEX], skip_special_tokens=True)
    assert scored.strip().startswith("Mahfouz")


def test_a_template_that_refuses_the_format_fails_at_once():
    tok = llama2_chat()
    fmt = prompts.PromptFormat("gemma-it-like", system_prompt="x", whole=True)
    tok.chat_template = "{{ raise_exception('System role not supported') }}"
    with pytest.raises(ConfigError, match="System role not supported"):
        use_prompt_format(tok, fmt)
    assert prompt_format_of(tok) == prompts.OWN
