"""Prompt formats and proof extraction for the prover model families in use today.

Each model family was trained on one prompt shape and answers in one output shape; getting either
wrong costs far more pass@k than any search trick. One `PromptFormat` per family keeps both halves
(building the request, reading the answer) side by side:

==================  ==========  =============================================================
name                kind        prompt -> answer
==================  ==========  =============================================================
``deepseek-v1.5``   completion  "Complete the following Lean 4 code" + code prefix; the model
                                continues after ``:= by``; the continuation up to ``` is the body
``deepseek-v2``     chat        DS-V2 plan-then-code user prompt; last ```lean4 block
``goedel-v2``       chat        DS-V2's prompt as Goedel's ``dpskcot`` handler writes it; Goedel's
                                error-feedback turns (``get_error_str``) for self-correction
``kimina``          chat        system prompt + "# Problem / # Formal statement"; ``<think>``
                                block, then the last ```lean4 block; Kimina's error-fix turns
``bfs``             completion  ``{state}:::`` -> one tactic (BFS-Prover)
``chat``            chat        generic instruction prompt for any chat model
==================  ==========  =============================================================

Extraction rules (shared by the chat formats, see `extract_code_answer`):

* Reasoning: the answer is the text after the last ``</think>``. Code inside a closed
  ``<think>…</think>`` is used only when the answer holds no usable block (some models put the
  final code just before closing the think block). An unclosed ``<think>`` means the model was cut
  off while reasoning: its drafts are never used and extraction returns None.
* Fences: ```` ```lean4 ````, ```` ```lean ```` and bare ```` ``` ```` blocks count; other languages
  do not. The last *complete* block that declares the target theorem wins; an unclosed final block
  (truncated output) is used only when no complete block declares the theorem.
* "Declares the target theorem" means a `theorem`/`lemma` line with the problem's declaration
  name; unlike Kimina's harness, the block need not repeat the `import` header.
* The result is complete Lean code, header lines included, exactly as the model wrote it: the
  checker rebuilds the file from the benchmark statement and never trusts the model's text, so
  nothing is verified or repaired here.
"""

from __future__ import annotations

import re
import textwrap
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from prover.errors import ConfigError
from prover.types import ChatMessage, GenRequest, LeanMessage, Problem

__all__ = [
    "FORMAT_NAMES",
    "BfsFormat",
    "ChatFormat",
    "CodeBlock",
    "DeepSeekV2Format",
    "DeepSeekV15Format",
    "Feedback",
    "GoedelV2Format",
    "KiminaFormat",
    "PromptFormat",
    "extract_code_answer",
    "find_code_blocks",
    "get_format",
    "infer_format_name",
    "split_thinking",
]


class Feedback(BaseModel):
    """One failed attempt of a self-correction chain, as the next prompt needs it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    proof: str
    """The extracted proof that was checked (tactic body or complete code)."""
    completion: str
    """The model's full reply that produced `proof`; replayed as the assistant turn."""
    messages: tuple[LeanMessage, ...] = ()
    """Lean's diagnostics for the checked code."""
    code: str = ""
    """The exact code the message positions refer to (the checker's `Verdict.code`). When empty,
    positions are taken to refer to `header + formal_statement + proof` (or `proof` itself when it
    is complete code)."""
    detail: str = ""
    """The checker's reason when Lean's messages alone do not explain the rejection (sorry,
    forbidden axioms, altered statement, ...)."""


class CodeBlock(BaseModel):
    """A fenced code block found in model output."""

    model_config = ConfigDict(frozen=True)

    lang: str
    code: str
    closed: bool
    start: int
    """Offset of the opening fence in the searched text."""


# ---------------------------------------------------------------------------------------------
# Parsing helpers
# ---------------------------------------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+\-]*)[^\n]*\n")
_CLOSE = re.compile(r"^[ \t]*```", re.MULTILINE)
_LEAN_LANGS = frozenset({"lean4", "lean", ""})
_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"
_SPECIAL_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|end▁of▁sentence|>", "</s>")
_ANY_DECL = re.compile(r"^\s*(?:@\[[^\]]*\]\s*)?(?:[a-z]+\s+)*(?:theorem|lemma|example|def)\b", re.MULTILINE)


def split_thinking(text: str) -> tuple[str, str, bool]:
    """Split `text` into (thinking, answer, thinking_closed).

    No think tags: everything is the answer. `<think>` without `</think>`: everything after it is
    unfinished thinking and the answer is only what precedes the tag (normally nothing).
    """
    close = text.rfind(_THINK_CLOSE)
    if close >= 0:
        thinking = text[:close]
        open_at = thinking.find(_THINK_OPEN)
        if open_at >= 0:
            thinking = thinking[open_at + len(_THINK_OPEN) :]
        return thinking, text[close + len(_THINK_CLOSE) :], True
    open_at = text.find(_THINK_OPEN)
    if open_at >= 0:
        return text[open_at + len(_THINK_OPEN) :], text[:open_at], False
    return "", text, True


def find_code_blocks(text: str) -> list[CodeBlock]:
    """All fenced blocks in order; a final block without a closing fence has `closed=False`."""
    blocks: list[CodeBlock] = []
    pos = 0
    while True:
        opening = _FENCE.search(text, pos)
        if opening is None:  # includes a bare fence on the last line: an empty block
            return blocks
        body_start = opening.end()
        closing = _CLOSE.search(text, body_start)
        lang = opening.group(1).lower()
        if closing is None:
            blocks.append(CodeBlock(lang=lang, code=text[body_start:], closed=False, start=opening.start()))
            return blocks
        blocks.append(
            CodeBlock(lang=lang, code=text[body_start : closing.start()], closed=True, start=opening.start())
        )
        pos = text.find("```", closing.start()) + 3


def _declares(code: str, theorem: str) -> bool:
    pattern = rf"(?:^|[\s(])(?:theorem|lemma)\s+{re.escape(theorem)}(?=[\s:({{\[]|$)"
    return re.search(pattern, code, re.MULTILINE) is not None


def _theorem_name(problem: Problem) -> str:
    try:
        return problem.theorem_name
    except ValueError:
        return problem.name


def _pick_block(blocks: Sequence[CodeBlock], theorem: str) -> str | None:
    lean_blocks = [b for b in blocks if b.lang in _LEAN_LANGS]
    for block in reversed(lean_blocks):
        if block.closed and _declares(block.code, theorem):
            return block.code.strip("\n").rstrip()
    for block in reversed(lean_blocks):
        if not block.closed and _declares(block.code, theorem):
            return block.code.strip("\n").rstrip()
    return None


def extract_code_answer(text: str, theorem: str) -> str | None:
    """The complete Lean code for `theorem` in a chat answer, by the rules in the module docstring."""
    thinking, answer, closed = split_thinking(text)
    found = _pick_block(find_code_blocks(answer), theorem)
    if found is None and closed and thinking:
        found = _pick_block(find_code_blocks(thinking), theorem)
    return found


def _bare_tactic_block(text: str) -> str | None:
    """The last closed Lean block that holds tactics only (no declaration, no import)."""
    _, answer, closed = split_thinking(text)
    if not closed:
        return None
    for block in reversed(find_code_blocks(answer)):
        code = block.code.strip("\n").rstrip()
        if block.closed and block.lang in _LEAN_LANGS and code.strip():
            if _ANY_DECL.search(code) or re.search(r"^\s*import\s", code, re.MULTILINE):
                return None
            return code
    return None


def _clean_tactic(text: str) -> str | None:
    """The tactic in `text`: the last Lean block if there is one, special tokens and blank edges
    removed; multi-line tactics (`have ... := by` + indented lines) are kept whole, dedented as a
    whole so that their lines keep their relative indentation."""
    blocks = [b for b in find_code_blocks(text) if b.lang in _LEAN_LANGS]
    if blocks:
        text = blocks[-1].code
    for token in _SPECIAL_TOKENS:
        text = text.replace(token, "")
    lines = [line.rstrip() for line in text.split("\n")]
    tactic = textwrap.dedent("\n".join(lines).strip("\n")).strip()
    return tactic or None


def _informal_docstring(problem: Problem) -> str:
    """The informal statement as the doc comment DS-V1.5's and Goedel's datasets put before the
    theorem (`informal_prefix`: ``/-- text-/`` and a newline); empty without one."""
    if not problem.informal_statement:
        return ""
    return f"/-- {problem.informal_statement.strip()}-/\n"


def _statement_code(problem: Problem, *, ending: str = "", docstring: bool = False) -> str:
    """Header + statement as the model sees it, followed by `ending` (e.g. a closing `sorry`), with
    the informal statement as a doc comment if asked (as in the DS-V2 / Goedel / Kimina datasets)."""
    informal = _informal_docstring(problem) if docstring else ""
    return f"{problem.header}{informal}{problem.formal_statement.rstrip()}".strip("\n") + ending


def _checked_code(problem: Problem, feedback: Feedback) -> str:
    """The code `feedback.messages` positions refer to (see `Feedback.code`)."""
    if feedback.code:
        return feedback.code
    if _declares(feedback.proof, _theorem_name(problem)):
        return feedback.proof
    return f"{problem.header}{problem.formal_statement}{feedback.proof}"


# ---------------------------------------------------------------------------------------------
# Rendering Lean feedback
# ---------------------------------------------------------------------------------------------


def _messages_to_show(feedback: Feedback) -> list[LeanMessage]:
    """Lean's errors in Lean's order, as Goedel's and Kimina's harnesses take them.

    When there are none (a `sorry` warning only, say) the warnings are shown instead: both
    harnesses would send an empty turn there.
    """
    errors = [m for m in feedback.messages if m.severity == "error"]
    return errors or [m for m in feedback.messages if m.severity == "warning"]


def _no_message_note(feedback: Feedback) -> str:
    detail = feedback.detail or "Lean reported no error, but the proof was not accepted"
    return f"The checker rejected the proof: {detail}."


_GOEDEL_LINES_BEFORE = 4
_GOEDEL_SPAN_LINES = 6
"""Goedel (`error_thres`): lines of a multi-line error shown before `... --[Truncated]-- ...`."""


def _goedel_error_code(lines: list[str], message: LeanMessage) -> str:
    """The code around one error, `<error>`/`</error>` around its range (Goedel's `get_error_str`):
    up to 4 lines before, the range (cut after 6 lines), 1 line after; one `\n` per line."""
    start_line, start_col = message.pos.line - 1, message.pos.column
    if not 0 <= start_line < len(lines):
        return ""  # a position outside the code (Goedel would crash): message only
    if message.end_pos is None:
        end_line, end_col = start_line, len(lines[start_line])
    else:
        end_line = min(max(message.end_pos.line - 1, start_line), len(lines) - 1)
        end_col = message.end_pos.column
    code = "".join(f"{line}\n" for line in lines[max(0, start_line - _GOEDEL_LINES_BEFORE) : start_line])
    first = lines[start_line]
    if start_line == end_line:
        end_col = max(end_col, start_col)
        code += f"{first[:start_col]}<error>{first[start_col:end_col]}</error>{first[end_col:]}\n"
    else:
        code += f"{first[:start_col]}<error>{first[start_col:]}\n"
        shown = lines[start_line + 1 : min(end_line, start_line + _GOEDEL_SPAN_LINES)]
        code += "".join(f"{line}\n" for line in shown)
        if end_line > start_line + _GOEDEL_SPAN_LINES:
            indent = len(shown[-1]) - len(shown[-1].lstrip(" "))
            code += "\n" + " " * indent + "... --[Truncated]-- ...\n"
        last = lines[end_line]
        code += f"{last[:end_col]}</error>{last[end_col:]}\n"
    if end_line + 1 < len(lines):
        code += f"{lines[end_line + 1]}\n"
    return code


def goedel_feedback_text(problem: Problem, feedback: Feedback, round_no: int, max_errors: int) -> str:
    """Goedel-Prover-V2's correction turn, as its `generate_correction_prompt` + `get_error_str`
    (src/utils.py) write it: `round_no` is the round of the failed proof (0 for the first sample)."""
    messages = _messages_to_show(feedback)
    lines = _checked_code(problem, feedback).split("\n")
    errors = "".join(
        f"\nError {i}:\n\nCorresponding Code:\n```lean4\n{_goedel_error_code(lines, message)}\n```\n"
        f"\nError Message: {message.data}\n"
        for i, message in enumerate(messages[:max_errors], 1)
    )
    if len(messages) > max_errors:
        errors += f"\n... [Omitted {len(messages) - max_errors} more errors] ...\n"
    if not messages:
        errors = f"\n{_no_message_note(feedback)}\n"
    return (
        f"The proof (Round {round_no}) is not correct. Following is the compilation error message, "
        f"where we use <error></error> to signal the position of the error.\n\n{errors}"
        "\n\nBefore producing the Lean 4 code to formally prove the given theorem, provide a detailed "
        "analysis of the error message."
    )


def kimina_feedback_text(problem: Problem, feedback: Feedback, max_errors: int) -> str:
    """Kimina-Prover's error-fix turn, as its demo's `create_tool_message` writes it: per error the
    message and a numbered ±2-line snippet.

    Kimina also shows the goals before the error, looked up in Lean's info tree; `Feedback` carries
    no info tree, so that part is left out (Kimina leaves it out too when the lookup fails).
    """
    lines = _checked_code(problem, feedback).split("\n")
    out: list[str] = []
    for i, message in enumerate(_messages_to_show(feedback)[:max_errors], 1):
        line_no = message.pos.line - 1
        snippet = "".join(
            f"{n + 1:03d}{' >' if n == line_no else '  '}| {lines[n].replace('count_heartbeats in', '')}\n"
            for n in range(max(0, line_no - 2), min(len(lines), line_no + 3))
        )
        out.append(
            f"# Error {i}:\nError message: \n{message.data.strip()}\n\n"
            f"Lean 4 code snippet with error:\n```lean4\n{snippet}```\n"
        )
    if not out:
        out.append(f"# System Error:\nError message: \n{_no_message_note(feedback)}\n\n")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------


def benchmark_note(problem: Problem) -> str:
    """What a model needs to know about a benchmark's own library (appended to the first turn):
    LeanGeo statements use a geometry DSL and `euclid_*` tactics no prover model has seen."""
    if problem.benchmark == "leangeo":
        from prover.leangeo.settings import PROMPT_ADDITION

        return "\n\n" + PROMPT_ADDITION
    return ""


class PromptFormat(ABC):
    """How one model family is prompted and how its answers are read."""

    name: str = "abstract"
    #: whether whole_proof_request can build self-correction turns from `Feedback`
    supports_feedback: bool = True
    #: errors shown per correction turn when the caller does not say
    default_max_errors: int = 3
    #: generation budget when `sampler.max_tokens` is not set (long-CoT families need far more
    #: than completion formats; vLLM also cuts it to what the model context leaves)
    default_max_tokens: int = 8192

    @abstractmethod
    def whole_proof_request(
        self, problem: Problem, feedback: Sequence[Feedback] = (), *, max_errors: int | None = None
    ) -> GenRequest:
        """The request for a whole proof; with `feedback`, the follow-up of a correction chain.

        The caller sets n, temperature, max_tokens, tag, ... with `model_copy(update=...)`.

        Args:
            problem: the theorem.
            feedback: earlier failed attempts of this chain, oldest first.
            max_errors: Lean messages shown per failed attempt (default: the family's own).

        Raises:
            ConfigError: the format cannot self-correct (completion formats) but feedback was given.
        """

    @abstractmethod
    def extract_proof(self, problem: Problem, completion: str) -> str | None:
        """Tactic body or complete Lean code for `problem` from a completion; None if unusable."""

    def tactic_prompt(self, goals: str) -> dict[str, Any]:
        """The prompt fields (`prompt` or `messages`) of a step request for `goals`: BFS-Prover
        style, the pretty-printed goals then `:::`.

        A search validates its other request fields once and fills these in per step with
        `model_copy(update=...)` (no validation in its hot loop), so they must be valid values.
        """
        return {"prompt": f"{goals.strip()}:::"}

    def tactic_request(self, goals: str, **settings: Any) -> GenRequest:
        """The step request for `goals`; `settings` are further `GenRequest` fields (n, seed, ...).

        Log-probs are requested: best-first search ranks tactics by them, and an OpenAI-compatible
        server returns none unless asked (tactics are short, so they cost little).
        """
        return GenRequest(**self.tactic_prompt(goals), logprobs=True, **settings)

    def extract_tactic(self, completion: str) -> str | None:
        """One tactic from a step completion (text after the last `:::` if the state was echoed)."""
        text = completion.rpartition(":::")[2]
        return _clean_tactic(text)

    def _max_errors(self, max_errors: int | None) -> int:
        return self.default_max_errors if max_errors is None else max(1, max_errors)


class DeepSeekV15Format(PromptFormat):
    """DeepSeek-Prover-V1.5 (non-CoT): the model completes a Lean code block.

    The prompt is DS-V1.5's `non_cot_prompt`: instruction, fence, header, informal doc comment,
    statement. Its dataset statements end in `:= by` plus a newline, so the model continues on the
    next line; the extracted body puts that newline back in front of the continuation.
    """

    name = "deepseek-v1.5"
    supports_feedback = False
    default_max_tokens = 2048  # DS-V1.5's own sampling budget
    instruction = "Complete the following Lean 4 code:"

    def whole_proof_request(
        self, problem: Problem, feedback: Sequence[Feedback] = (), *, max_errors: int | None = None
    ) -> GenRequest:
        if feedback:
            raise ConfigError(
                f"prompt format {self.name!r} is a completion format without self-correction; "
                "set whole_proof.rounds = 0 or use a chat format"
            )
        prompt = (
            f"{self.instruction}\n\n```lean4\n{problem.header}{_informal_docstring(problem)}"
            f"{problem.formal_statement}{self._line_end(problem)}"
        )
        return GenRequest(prompt=prompt, stop=("```",))

    def extract_proof(self, problem: Problem, completion: str) -> str | None:
        body = completion.split("```", 1)[0]
        for token in _SPECIAL_TOKENS:
            body = body.replace(token, "")
        body = body.rstrip()
        return self._line_end(problem) + body if body.strip() else None

    @staticmethod
    def _line_end(problem: Problem) -> str:
        """The newline the prompt adds after `:= by` (none if the statement already ends in one)."""
        return "" if problem.formal_statement.endswith("\n") else "\n"


class _ChatProofFormat(PromptFormat):
    """Shared machinery of chat formats: conversation building and last-block extraction."""

    system_prompt: str | None = None

    @abstractmethod
    def user_prompt(self, problem: Problem) -> str:
        """The first user turn."""

    def feedback_turn(self, problem: Problem, feedback: Feedback, round_no: int, max_errors: int) -> str:
        return goedel_feedback_text(problem, feedback, round_no, max_errors)

    def whole_proof_request(
        self, problem: Problem, feedback: Sequence[Feedback] = (), *, max_errors: int | None = None
    ) -> GenRequest:
        limit = self._max_errors(max_errors)
        messages: list[ChatMessage] = []
        if self.system_prompt:
            messages.append(ChatMessage(role="system", content=self.system_prompt))
        messages.append(ChatMessage(role="user", content=self.user_prompt(problem) + benchmark_note(problem)))
        # Goedel numbers the failed proof being corrected: "The proof (Round 0)" is the first sample.
        for round_no, item in enumerate(feedback):
            messages.append(ChatMessage(role="assistant", content=item.completion))
            messages.append(
                ChatMessage(role="user", content=self.feedback_turn(problem, item, round_no, limit))
            )
        return GenRequest(messages=tuple(messages))

    def extract_proof(self, problem: Problem, completion: str) -> str | None:
        return extract_code_answer(completion, _theorem_name(problem))


class DeepSeekV2Format(_ChatProofFormat):
    """DeepSeek-Prover-V2 CoT: plan first, then the final ```lean4 block (model card prompt)."""

    name = "deepseek-v2"
    default_max_errors = 8
    default_max_tokens = 16384  # CoT answers average ~6.7K tokens
    #: what follows the statement inside the code block: DS-V2's model card puts `sorry` on a line
    #: of its own and the closing fence on the next line
    statement_end = "\n  sorry\n"
    plan_request = (
        "Before producing the Lean 4 code to formally prove the given theorem, provide a detailed "
        "proof plan outlining the main proof steps and strategies.\n"
        "The plan should highlight key ideas, intermediate lemmas, and proof structures that will "
        "guide the construction of the final formal proof."
    )

    def user_prompt(self, problem: Problem) -> str:
        code = _statement_code(problem, ending=self.statement_end, docstring=True)
        return f"Complete the following Lean 4 code:\n\n```lean4\n{code}```\n\n{self.plan_request}"


class GoedelV2Format(DeepSeekV2Format):
    """Goedel-Prover-V2: DS-V2's prompt, Goedel's self-correction turns (errors capped at 8)."""

    name = "goedel-v2"
    default_max_tokens = 32768  # Goedel-V2 samples up to 32K tokens (Qwen3 context: 40K)
    #: Goedel's model card and `DeepSeekCoTHandler`: `:= by sorry` right against the closing fence
    statement_end = " sorry"


class KiminaFormat(_ChatProofFormat):
    """Kimina-Prover: system prompt, problem + formal statement, `<think>` then the final block."""

    name = "kimina"
    default_max_tokens = 16384  # Kimina's demo budget
    system_prompt = "You are an expert in mathematics and Lean 4."

    def user_prompt(self, problem: Problem) -> str:
        prompt = "Think about and solve the following problem step by step in Lean 4."
        if problem.informal_statement:  # no space after the colon, as in Kimina's model card
            prompt += f"\n# Problem:{problem.informal_statement.strip()}"
        code = _statement_code(problem, docstring=True)
        return prompt + f"\n# Formal statement:\n```lean4\n{code}\n```\n"

    def feedback_turn(self, problem: Problem, feedback: Feedback, round_no: int, max_errors: int) -> str:
        return kimina_feedback_text(problem, feedback, max_errors)


class ChatFormat(_ChatProofFormat):
    """Generic chat models: ask for the complete code in one block; accept a bare tactic block."""

    name = "chat"
    system_prompt = "You are an expert in mathematics and the Lean 4 theorem prover with Mathlib."

    def user_prompt(self, problem: Problem) -> str:
        parts = ["Prove the following theorem in Lean 4."]
        if problem.informal_statement:
            parts.append(f"Informal statement: {problem.informal_statement.strip()}")
        code = _statement_code(problem, ending=" sorry")
        parts.append(f"```lean4\n{code}\n```")
        parts.append(
            "Replace `sorry` with a proof. Reply with the complete Lean 4 code, including the "
            "theorem statement unchanged, in a single ```lean4 code block at the end of your answer."
        )
        return "\n\n".join(parts)

    def extract_proof(self, problem: Problem, completion: str) -> str | None:
        found = super().extract_proof(problem, completion)
        return found if found is not None else _bare_tactic_block(completion)

    def tactic_prompt(self, goals: str) -> dict[str, Any]:
        content = (
            "Here is a Lean 4 tactic state:\n\n```lean4\n"
            f"{goals.strip()}\n```\n\n"
            "Reply with exactly one Lean 4 tactic that makes progress on the first goal, in a "
            "single ```lean4 code block, and nothing else."
        )
        return {
            "messages": (
                ChatMessage(role="system", content=self.system_prompt or ""),
                ChatMessage(role="user", content=content),
            )
        }

    def extract_tactic(self, completion: str) -> str | None:
        """The tactic in the answer's last Lean block, or a one-line answer without a block."""
        _, answer, closed = split_thinking(completion)
        if not closed:
            return None
        if not any(b.lang in _LEAN_LANGS for b in find_code_blocks(answer)):
            lines = [line for line in answer.strip().split("\n") if line.strip()]
            if len(lines) != 1:
                return None
            answer = lines[0].strip().strip("`")
        return _clean_tactic(answer)


class BfsFormat(ChatFormat):
    """BFS-Prover: a step model prompted with `{state}:::`; whole proofs use the generic chat
    prompt (BFS-Prover has none of its own)."""

    name = "bfs-prover"

    def tactic_prompt(self, goals: str) -> dict[str, Any]:
        return PromptFormat.tactic_prompt(self, goals)

    def extract_tactic(self, completion: str) -> str | None:
        return PromptFormat.extract_tactic(self, completion)


_FORMATS: dict[str, type[PromptFormat]] = {
    cls.name: cls
    for cls in (DeepSeekV15Format, DeepSeekV2Format, GoedelV2Format, KiminaFormat, BfsFormat, ChatFormat)
}
FORMAT_NAMES: tuple[str, ...] = tuple(_FORMATS)

# Checked in order against the lower-cased model id (a Hugging Face id or a local path).
_MODEL_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"deepseek[-_]?prover[-_]?v1[._-]?5", "deepseek-v1.5"),
    (r"deepseek[-_]?prover[-_]?v2", "deepseek-v2"),
    (r"goedel[-_]?prover[-_]?v2", "goedel-v2"),
    (r"kimina[-_]?prover", "kimina"),
    (r"bfs[-_]?prover", "bfs-prover"),
)


def infer_format_name(model: str) -> str:
    """Format name for a model id or path, `chat` when the family is not recognised."""
    lowered = model.lower()
    for pattern, name in _MODEL_PATTERNS:
        if re.search(pattern, lowered):
            return name
    return "chat"


def get_format(name: str | None, model: str = "") -> PromptFormat:
    """The format called `name`, or the one inferred from `model` when `name` is None/empty.

    Raises:
        ConfigError: unknown format name.
    """
    chosen = name or infer_format_name(model)
    cls = _FORMATS.get(chosen.lower())
    if cls is None:
        raise ConfigError(f"unknown prompt format {chosen!r}; choose one of {', '.join(FORMAT_NAMES)}")
    return cls()
