"""Prompt building, proof extraction and self-correction turns of every prompt format.

Model outputs below are written from the formats documented in ../shared/reference/provers.md
(DS-V1.5 code completion, DS-V2 / Goedel-V2 plan + final lean4 block, Kimina <think> + final block,
BFS-Prover `state:::tactic`), including truncated and malformed ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prover.errors import ConfigError
from prover.llm.formats import (
    FORMAT_NAMES,
    Feedback,
    extract_code_answer,
    find_code_blocks,
    get_format,
    infer_format_name,
    split_thinking,
)
from prover.types import LeanMessage, Pos, Problem

HEADER = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\nopen BigOperators Real Nat Topology Rat\n\n"
STATEMENT = (
    "theorem mathd_algebra_478 (b h v : ℝ) (h₀ : 0 < b ∧ 0 < h ∧ 0 < v) (h₁ : v = 1 / 3 * (b * h))\n"
    "    (h₂ : b = 30) (h₃ : h = 13 / 2) : v = 65 := by"
)
PROBLEM = Problem(
    name="mathd_algebra_478",
    header=HEADER,
    formal_statement=STATEMENT,
    informal_statement="The volume of a cone is V = Bh/3. B = 30 and h = 6.5. Show that V = 65.",
)
FULL = HEADER + STATEMENT + "\n  rw [h₂, h₃] at h₁\n  norm_num [h₁]"


# ---------------------------------------------------------------------------------------------
# Format selection
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("deepseek-ai/DeepSeek-Prover-V2-7B", "deepseek-v2"),
        ("deepseek-ai/DeepSeek-Prover-V2-671B", "deepseek-v2"),
        ("Goedel-LM/Goedel-Prover-V2-32B", "goedel-v2"),
        ("Goedel-LM/Goedel-Prover-V2-8B", "goedel-v2"),
        ("AI-MO/Kimina-Prover-Distill-8B", "kimina"),
        ("AI-MO/Kimina-Prover-Preview-Distill-7B", "kimina"),
        ("ByteDance-Seed/BFS-Prover-V2-7B", "bfs-prover"),
        ("deepseek-ai/DeepSeek-Prover-V1.5-RL", "deepseek-v1.5"),
        ("/models/deepseek_prover_v1_5_sft", "deepseek-v1.5"),
        ("Qwen/Qwen2.5-7B-Instruct", "chat"),
        ("", "chat"),
    ],
)
def test_format_inferred_from_model_id(model: str, expected: str) -> None:
    assert infer_format_name(model) == expected
    assert get_format(None, model).name == expected


def test_format_by_name_overrides_model() -> None:
    assert get_format("kimina", "deepseek-ai/DeepSeek-Prover-V2-7B").name == "kimina"
    assert set(FORMAT_NAMES) == {"deepseek-v1.5", "deepseek-v2", "goedel-v2", "kimina", "bfs-prover", "chat"}


def test_unknown_format_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown prompt format 'gpt-magic'.*deepseek-v2"):
        get_format("gpt-magic")


# ---------------------------------------------------------------------------------------------
# Prompts
# ---------------------------------------------------------------------------------------------


def test_deepseek_v15_prompt_is_a_code_prefix_ending_in_the_statement() -> None:
    request = get_format("deepseek-v1.5").whole_proof_request(PROBLEM)
    assert request.messages is None
    # DS-V1.5's non_cot_prompt over its dataset: `informal_prefix` is "/-- text-/\n" and the
    # statement ends with ":= by\n", so the model starts the proof on a fresh line.
    assert request.prompt == (
        f"Complete the following Lean 4 code:\n\n```lean4\n{HEADER}"
        f"/-- {PROBLEM.informal_statement}-/\n{STATEMENT}\n"
    )
    assert request.stop == ("```",)


PLAN_REQUEST = (
    "Before producing the Lean 4 code to formally prove the given theorem, provide a detailed proof plan "
    "outlining the main proof steps and strategies.\nThe plan should highlight key ideas, intermediate lemmas, "
    "and proof structures that will guide the construction of the final formal proof."
)


def test_deepseek_v2_prompt_is_the_model_card_prompt() -> None:
    request = get_format("deepseek-v2").whole_proof_request(PROBLEM)
    assert request.prompt is None
    (user,) = request.messages
    assert user.role == "user"
    # DS-V2 model card: header, informal doc comment, statement, `sorry` on a line of its own.
    assert user.content == (
        f"Complete the following Lean 4 code:\n\n```lean4\n{HEADER}/-- {PROBLEM.informal_statement}-/\n"
        f"{STATEMENT}\n  sorry\n```\n\n{PLAN_REQUEST}"
    )


def test_goedel_prompt_is_its_model_card_and_dpskcot_prompt() -> None:
    (user,) = get_format("goedel-v2").whole_proof_request(PROBLEM).messages
    # Goedel's `lean4_code` (`... := by sorry`) right against the closing fence, as in its README.
    assert user.content == (
        f"Complete the following Lean 4 code:\n\n```lean4\n{HEADER}/-- {PROBLEM.informal_statement}-/\n"
        f"{STATEMENT} sorry```\n\n{PLAN_REQUEST}"
    )


def test_kimina_prompt_has_system_problem_and_statement_block() -> None:
    system, user = get_format("kimina").whole_proof_request(PROBLEM).messages
    assert (system.role, system.content) == ("system", "You are an expert in mathematics and Lean 4.")
    assert user.content.startswith("Think about and solve the following problem step by step in Lean 4.")
    assert f"\n# Problem:{PROBLEM.informal_statement}\n" in user.content  # no space: model card
    assert user.content.endswith(
        f"# Formal statement:\n```lean4\n{HEADER}/-- {PROBLEM.informal_statement}-/\n{STATEMENT}\n```\n"
    )


def test_prompts_without_informal_statement_or_header() -> None:
    bare = Problem(name="t", formal_statement="theorem t : 1 + 1 = 2 := by")
    v15 = get_format("deepseek-v1.5").whole_proof_request(bare).prompt
    assert v15 == "Complete the following Lean 4 code:\n\n```lean4\ntheorem t : 1 + 1 = 2 := by\n"
    ending = Problem(name="t", formal_statement="theorem t : 1 + 1 = 2 := by\n")
    assert get_format("deepseek-v1.5").whole_proof_request(ending).prompt == v15  # no second newline
    assert get_format("deepseek-v1.5").extract_proof(ending, "  norm_num") == "  norm_num"
    dsv2_user = get_format("deepseek-v2").whole_proof_request(bare).messages[0].content
    assert "```lean4\ntheorem t : 1 + 1 = 2 := by\n  sorry\n```" in dsv2_user
    goedel_user = get_format("goedel-v2").whole_proof_request(bare).messages[0].content
    assert "```lean4\ntheorem t : 1 + 1 = 2 := by sorry```" in goedel_user
    kimina_user = get_format("kimina").whole_proof_request(bare).messages[1].content
    assert "# Problem" not in kimina_user
    assert "```lean4\ntheorem t : 1 + 1 = 2 := by\n```" in kimina_user


def test_bfs_tactic_prompt_is_state_then_triple_colon() -> None:
    fmt = get_format("bfs-prover")
    request = fmt.tactic_request("x : ℕ\nh : 2 * x = 4\n⊢ x = 2\n")
    assert request.prompt == "x : ℕ\nh : 2 * x = 4\n⊢ x = 2:::"
    assert request.messages is None


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_tactic_requests_ask_for_logprobs(name: str) -> None:
    # Best-first search ranks tactics by log-prob; an OpenAI-compatible server sends none unless asked.
    assert get_format(name).tactic_request("⊢ True").logprobs is True


# ---------------------------------------------------------------------------------------------
# Extraction: DeepSeek-Prover-V1.5 (code completion)
# ---------------------------------------------------------------------------------------------


def test_deepseek_v15_takes_the_continuation_up_to_the_fence() -> None:
    completion = "  rw [h₂, h₃] at h₁\n  norm_num [h₁]\n```\n\nThe proof substitutes and computes."
    body = get_format("deepseek-v1.5").extract_proof(PROBLEM, completion)
    # the prompt's newline after `:= by` is put back: the body must not start on the `by` line
    assert body == "\n  rw [h₂, h₃] at h₁\n  norm_num [h₁]"


def test_deepseek_v15_truncated_continuation_and_empty_one() -> None:
    fmt = get_format("deepseek-v1.5")
    truncated = "  have h : v = 1 / 3 * (30 * (13 / 2)) := by\n    rw [h₁, h₂"
    assert fmt.extract_proof(PROBLEM, truncated) == "\n" + truncated
    assert fmt.extract_proof(PROBLEM, "<|end▁of▁sentence|>") is None
    assert fmt.extract_proof(PROBLEM, "\n```") is None


def test_deepseek_v15_refuses_self_correction_clearly() -> None:
    feedback = Feedback(proof="simp", completion="simp", messages=())
    with pytest.raises(ConfigError, match="deepseek-v1.5.*self-correction"):
        get_format("deepseek-v1.5").whole_proof_request(PROBLEM, [feedback])
    assert get_format("deepseek-v1.5").supports_feedback is False


# ---------------------------------------------------------------------------------------------
# Extraction: DeepSeek-Prover-V2 / Goedel-Prover-V2 (plan + final block)
# ---------------------------------------------------------------------------------------------

DSV2_OUTPUT = f"""### Detailed Proof Plan

1. Substitute `b = 30` and `h = 13/2` into `h₁`.
2. Compute `1/3 * (30 * 13/2) = 65`.

Intermediate lemma (sketch):
```lean4
have key : (1:ℝ) / 3 * (30 * (13 / 2)) = 65 := by sorry
```

### Lean 4 Proof

```lean4
{HEADER}{STATEMENT}
  have key : (1:ℝ) / 3 * (30 * (13 / 2)) = 65 := by norm_num
  rw [h₂, h₃] at h₁
  linarith
```

This completes the proof."""


def test_deepseek_v2_takes_last_block_with_the_theorem_not_the_sketch() -> None:
    code = get_format("deepseek-v2").extract_proof(PROBLEM, DSV2_OUTPUT)
    assert code is not None
    assert code.startswith("import Mathlib\nimport Aesop")
    assert code.endswith("  rw [h₂, h₃] at h₁\n  linarith")
    assert "sorry" not in code


def test_goedel_takes_the_last_of_several_complete_blocks() -> None:
    first = f"```lean4\n{STATEMENT}\n  nlinarith\n```"
    second = f"```lean\n{STATEMENT}\n  norm_num [h₁, h₂, h₃]\n```"
    output = f"First attempt:\n{first}\nWait, that fails. Better:\n{second}\nDone."
    code = get_format("goedel-v2").extract_proof(PROBLEM, output)
    assert code == f"{STATEMENT}\n  norm_num [h₁, h₂, h₃]"


def test_block_declaring_another_theorem_is_not_taken() -> None:
    renamed = STATEMENT.replace("mathd_algebra_478", "mathd_algebra_478_v2")
    output = f"```lean4\n{STATEMENT}\n  simp\n```\nAnd a cleaner one:\n```lean4\n{renamed}\n  norm_num\n```"
    assert get_format("goedel-v2").extract_proof(PROBLEM, output) == f"{STATEMENT}\n  simp"
    only_renamed = f"```lean4\n{renamed}\n  norm_num\n```"
    assert get_format("deepseek-v2").extract_proof(PROBLEM, only_renamed) is None


def test_truncated_final_block_is_used_only_without_a_complete_one() -> None:
    truncated_only = f"### Plan\nSubstitute.\n\n### Lean 4 Proof\n```lean4\n{HEADER}{STATEMENT}\n  rw [h₂, h₃] at h₁\n  norm_"
    code = get_format("deepseek-v2").extract_proof(PROBLEM, truncated_only)
    assert code is not None and code.endswith("rw [h₂, h₃] at h₁\n  norm_")
    complete_then_truncated = f"```lean4\n{STATEMENT}\n  linarith\n```\nImproved:\n```lean4\n{STATEMENT}\n  nlin"
    assert get_format("deepseek-v2").extract_proof(PROBLEM, complete_then_truncated) == f"{STATEMENT}\n  linarith"


def test_malformed_outputs_give_none() -> None:
    fmt = get_format("goedel-v2")
    assert fmt.extract_proof(PROBLEM, "") is None
    assert fmt.extract_proof(PROBLEM, "I cannot prove this theorem.") is None
    assert fmt.extract_proof(PROBLEM, "```python\nprint('theorem mathd_algebra_478 := by simp')\n```") is None
    assert fmt.extract_proof(PROBLEM, "```lean4\n  nlinarith [sq_nonneg b]\n```") is None  # no theorem


def test_untagged_fence_and_crlf_free_indentation_are_accepted() -> None:
    output = f"Here:\n```\n{STATEMENT}\n  norm_num [h₁, h₂, h₃]\n```"
    assert get_format("deepseek-v2").extract_proof(PROBLEM, output) == f"{STATEMENT}\n  norm_num [h₁, h₂, h₃]"


# ---------------------------------------------------------------------------------------------
# Extraction: Kimina (<think> + final block)
# ---------------------------------------------------------------------------------------------

KIMINA_OUTPUT = f"""<think>
We need v = 65. From h₁, v = 1/3 * (b * h). Let me try substituting:
```lean4
theorem mathd_algebra_478 (b h v : ℝ) (h₁ : v = 1 / 3 * (b * h)) : v = 65 := by
  rw [h₁]
  sorry
```
Substituting b = 30 and h = 13/2 gives 1/3 * 195 = 65. So `norm_num` should finish.
</think>
The volume is 65.

```lean4
{HEADER}{STATEMENT}
  rw [h₁, h₂, h₃]
  norm_num
```"""


def test_kimina_ignores_drafts_in_think_and_takes_the_final_block() -> None:
    code = get_format("kimina").extract_proof(PROBLEM, KIMINA_OUTPUT)
    assert code is not None and code.endswith("  rw [h₁, h₂, h₃]\n  norm_num")
    assert "sorry" not in code


def test_kimina_truncated_inside_think_gives_none() -> None:
    truncated = KIMINA_OUTPUT.split("</think>")[0][:-200]
    assert "<think>" in truncated and "</think>" not in truncated
    assert get_format("kimina").extract_proof(PROBLEM, truncated) is None


def test_code_inside_closed_think_is_the_fallback_when_the_answer_has_none() -> None:
    output = f"<think>\nFinal code:\n```lean4\n{STATEMENT}\n  norm_num [h₁, h₂, h₃]\n```\n</think>\nSee above."
    assert get_format("kimina").extract_proof(PROBLEM, output) == f"{STATEMENT}\n  norm_num [h₁, h₂, h₃]"


def test_split_thinking_cases() -> None:
    assert split_thinking("no tags") == ("", "no tags", True)
    assert split_thinking("<think>a</think>b") == ("a", "b", True)
    assert split_thinking("<think>a still thinking") == ("a still thinking", "", False)
    # chat templates that put <think> in the prompt leave only the closing tag in the output
    assert split_thinking("reasoning</think>answer") == ("reasoning", "answer", True)


def test_find_code_blocks_marks_unclosed_last_block() -> None:
    blocks = find_code_blocks("a\n```lean4\nx\n```\nb\n```lean\ny")
    assert [(b.lang, b.code, b.closed) for b in blocks] == [("lean4", "x\n", True), ("lean", "y", False)]


def test_extract_code_answer_with_dotted_and_primed_names() -> None:
    output = "```lean4\ntheorem Foo.bar' (x : ℕ) : x = x := by\n  rfl\n```"
    assert extract_code_answer(output, "Foo.bar'") == "theorem Foo.bar' (x : ℕ) : x = x := by\n  rfl"
    assert extract_code_answer(output, "Foo.bar") is None


# ---------------------------------------------------------------------------------------------
# Extraction: generic chat and BFS tactics
# ---------------------------------------------------------------------------------------------


def test_chat_accepts_full_code_or_a_bare_tactic_block() -> None:
    fmt = get_format("chat")
    assert fmt.extract_proof(PROBLEM, f"Sure!\n```lean4\n{FULL}\n```") == FULL
    assert fmt.extract_proof(PROBLEM, "Use:\n```lean\nrw [h₂, h₃] at h₁\nnorm_num [h₁]\n```") == (
        "rw [h₂, h₃] at h₁\nnorm_num [h₁]"
    )
    other = "```lean4\ntheorem other : True := by trivial\n```"
    assert fmt.extract_proof(PROBLEM, other) is None


def test_bfs_tactic_extraction() -> None:
    fmt = get_format("bfs-prover")
    assert fmt.extract_tactic(" nlinarith [sq_nonneg (x - 2)]<|im_end|>") == "nlinarith [sq_nonneg (x - 2)]"
    echoed = "x : ℕ\n⊢ x + 0 = x:::simp"
    assert fmt.extract_tactic(echoed) == "simp"
    multi = "have h : x = 2 := by\n  omega\n"
    assert fmt.extract_tactic(multi) == "have h : x = 2 := by\n  omega"
    assert fmt.extract_tactic("   \n") is None


def test_multi_line_tactics_keep_their_relative_indentation() -> None:
    bfs, chat = get_format("bfs-prover"), get_format("chat")
    assert bfs.extract_tactic("\n  constructor\n  · simp\n  · ring\n") == "constructor\n· simp\n· ring"
    assert bfs.extract_tactic("  have h : x = x := by\n    rfl") == "have h : x = x := by\n  rfl"
    assert bfs.extract_tactic(" exact foo\nbar") == "exact foo\nbar"  # no common indent: first line only
    block = "```lean4\n    refine ⟨?_, ?_⟩\n    · simp\n      ring\n```"
    assert chat.extract_tactic(block) == "refine ⟨?_, ?_⟩\n· simp\n  ring"


def test_chat_tactic_extraction() -> None:
    fmt = get_format("chat")
    assert fmt.extract_tactic("Try this:\n```lean4\nomega\n```") == "omega"
    assert fmt.extract_tactic("`simp`") == "simp"
    assert fmt.extract_tactic("<think>maybe simp") is None
    assert fmt.extract_tactic("First do this.\nThen that.") is None
    request = fmt.tactic_request("⊢ 1 + 1 = 2")
    assert request.messages is not None and "⊢ 1 + 1 = 2" in request.messages[-1].content


# ---------------------------------------------------------------------------------------------
# Self-correction
# ---------------------------------------------------------------------------------------------

BAD_BODY = "\n  rw [h₂] at h₁\n  linarith"
BAD_CODE = HEADER + STATEMENT + BAD_BODY
_LINE_RW = BAD_CODE.split("\n").index("  rw [h₂] at h₁") + 1
_LINE_STMT = BAD_CODE.split("\n").index(STATEMENT.split("\n")[1]) + 1
UNSOLVED = LeanMessage(
    severity="error",
    pos=Pos(line=_LINE_STMT, column=46),
    end_pos=Pos(line=_LINE_RW + 1, column=12),
    data="unsolved goals\nb h v : ℝ\nh₁ : v = 1 / 3 * (30 * h)\nh₃ : h = 13 / 2\n⊢ v = 65",
)
LINARITH = LeanMessage(
    severity="error", pos=Pos(line=_LINE_RW + 1, column=2), end_pos=Pos(line=_LINE_RW + 1, column=10),
    data="linarith failed to find a contradiction",
)
WARNING = LeanMessage(severity="warning", pos=Pos(line=1, column=0), data="unused variable `h₀`")


def _feedback(*messages: LeanMessage, completion: str = "first answer") -> Feedback:
    return Feedback(proof=BAD_BODY, completion=completion, messages=messages)


GOEDEL_HEAD = (
    "The proof (Round 0) is not correct. Following is the compilation error message, where we use "
    "<error></error> to signal the position of the error.\n\n"
)
GOEDEL_TAIL = (
    "\n\nBefore producing the Lean 4 code to formally prove the given theorem, provide a detailed analysis "
    "of the error message."
)
_STMT_1, _STMT_2 = STATEMENT.split("\n")


def test_goedel_self_correction_replays_chat_and_marks_errors() -> None:
    fmt = get_format("goedel-v2")
    request = fmt.whole_proof_request(PROBLEM, [_feedback(LINARITH, UNSOLVED, WARNING)])
    roles = [m.role for m in request.messages]
    assert roles == ["user", "assistant", "user"]
    assert request.messages[1].content == "first answer"
    # Goedel's `get_error_str`: errors only, in Lean's order; per error up to 4 lines before the
    # range, the range marked, 1 line after (none here: the proof ends), and the message as is.
    assert request.messages[2].content == (
        GOEDEL_HEAD
        + "\nError 1:\n\nCorresponding Code:\n```lean4\n"
        f"\n{_STMT_1}\n{_STMT_2}\n  rw [h₂] at h₁\n  <error>linarith</error>\n"
        "\n```\n\nError Message: linarith failed to find a contradiction\n"
        "\nError 2:\n\nCorresponding Code:\n```lean4\n"
        f"\nopen BigOperators Real Nat Topology Rat\n\n{_STMT_1}\n"
        f"{_STMT_2[:46]}<error>{_STMT_2[46:]}\n  rw [h₂] at h₁\n  linarith</error>\n"
        f"\n```\n\nError Message: {UNSOLVED.data}\n"
        + GOEDEL_TAIL
    )


def test_goedel_error_context_at_the_edges_of_the_code() -> None:
    code = "\n".join(f"line{i}" for i in range(1, 13))
    no_end = LeanMessage(severity="error", pos=Pos(line=2, column=4), data="to the end of the line")
    empty_range = LeanMessage(severity="error", pos=Pos(line=3, column=2), end_pos=Pos(line=3, column=2), data="e")
    outside = LeanMessage(severity="error", pos=Pos(line=40, column=0), data="beyond the code")
    fb = Feedback(proof="p", completion="c", messages=(no_end, empty_range, outside), code=code)
    turn = get_format("goedel-v2").whole_proof_request(PROBLEM, [fb]).messages[-1].content
    assert turn == (
        GOEDEL_HEAD
        + "\nError 1:\n\nCorresponding Code:\n```lean4\nline1\nline<error>2</error>\nline3\n\n```\n"
        "\nError Message: to the end of the line\n"
        "\nError 2:\n\nCorresponding Code:\n```lean4\nline1\nline2\nli<error></error>ne3\nline4\n\n```\n"
        "\nError Message: e\n"
        "\nError 3:\n\nCorresponding Code:\n```lean4\n\n```\n\nError Message: beyond the code\n"
        + GOEDEL_TAIL
    )


def test_goedel_cuts_a_long_error_range_after_six_lines() -> None:
    code = "theorem t : P := by\n  intro x\n" + "\n".join(f"    step{i}" for i in range(1, 11)) + "\n  done"
    long = LeanMessage(severity="error", pos=Pos(line=2, column=2), end_pos=Pos(line=12, column=10), data="long")
    fb = Feedback(proof="p", completion="c", messages=(long,), code=code)
    turn = get_format("goedel-v2").whole_proof_request(PROBLEM, [fb]).messages[-1].content
    shown = "".join(f"    step{i}\n" for i in range(1, 6))
    assert turn == (
        GOEDEL_HEAD
        + "\nError 1:\n\nCorresponding Code:\n```lean4\ntheorem t : P := by\n  <error>intro x\n"
        f"{shown}\n    ... --[Truncated]-- ...\n    step10</error>\n  done\n\n```\n\nError Message: long\n"
        + GOEDEL_TAIL
    )


def test_goedel_error_cap_counts_the_omitted_errors() -> None:
    many = [
        LeanMessage(severity="error", pos=Pos(line=_LINE_RW + 1, column=2), data=f"error number {i}")
        for i in range(5)
    ]
    turn = get_format("deepseek-v2").whole_proof_request(PROBLEM, [_feedback(*many)], max_errors=2).messages[-1].content
    assert "Error Message: error number 0\n" in turn and "Error Message: error number 1\n" in turn
    assert "error number 2" not in turn and "Error 3:" not in turn
    assert turn.endswith("Error Message: error number 1\n\n... [Omitted 3 more errors] ...\n" + GOEDEL_TAIL)
    default = get_format("goedel-v2").whole_proof_request(PROBLEM, [_feedback(*many * 2)]).messages[-1].content
    assert "Error 8:" in default and "Error 9:" not in default  # Goedel's cap
    assert "... [Omitted 2 more errors] ..." in default


def test_two_rounds_give_two_assistant_turns_with_round_numbers() -> None:
    fmt = get_format("goedel-v2")
    request = fmt.whole_proof_request(PROBLEM, [_feedback(LINARITH, completion="a1"), _feedback(UNSOLVED, completion="a2")])
    assert [m.role for m in request.messages] == ["user", "assistant", "user", "assistant", "user"]
    assert [m.content for m in request.messages if m.role == "assistant"] == ["a1", "a2"]
    assert request.messages[2].content.startswith("The proof (Round 0) is not correct.")
    assert request.messages[-1].content.startswith("The proof (Round 1) is not correct.")


def test_kimina_error_fix_turn_is_its_tool_message() -> None:
    fmt = get_format("kimina")
    request = fmt.whole_proof_request(PROBLEM, [_feedback(UNSOLVED, LINARITH, WARNING)])
    assert [m.role for m in request.messages] == ["system", "user", "assistant", "user"]
    # Kimina's `create_tool_message`, without the info-tree goals (Feedback carries no info tree).
    assert request.messages[-1].content == (
        f"# Error 1:\nError message: \n{UNSOLVED.data}\n\n"
        "Lean 4 code snippet with error:\n```lean4\n"
        f"007  | \n008  | {_STMT_1}\n009 >| {_STMT_2}\n010  |   rw [h₂] at h₁\n011  |   linarith\n```\n"
        "# Error 2:\nError message: \nlinarith failed to find a contradiction\n\n"
        "Lean 4 code snippet with error:\n```lean4\n"
        f"009  | {_STMT_2}\n010  |   rw [h₂] at h₁\n011 >|   linarith\n```\n"
    )


def test_kimina_shows_its_first_three_errors_and_nothing_about_the_rest() -> None:
    many = [LeanMessage(severity="error", pos=Pos(line=1, column=0), data=f"error number {i}") for i in range(5)]
    fb = Feedback(proof="p", completion="c", messages=tuple(many), code="count_heartbeats in\ntheorem t")
    turn = get_format("kimina").whole_proof_request(PROBLEM, [fb]).messages[-1].content
    snippet = "Lean 4 code snippet with error:\n```lean4\n001 >| \n002  | theorem t\n```\n"
    assert turn == "".join(f"# Error {i + 1}:\nError message: \nerror number {i}\n\n{snippet}" for i in range(3))


def test_feedback_without_lean_errors_uses_checker_detail() -> None:
    sorry_warning = LeanMessage(severity="warning", pos=Pos(line=9, column=8), data="declaration uses 'sorry'")
    turn = get_format("goedel-v2").whole_proof_request(PROBLEM, [_feedback(sorry_warning)]).messages[-1].content
    assert "declaration uses 'sorry'" in turn
    silent = Feedback(proof=BAD_BODY, completion="x", detail="axioms: depends on sorryAx")
    turn = get_format("kimina").whole_proof_request(PROBLEM, [silent]).messages[-1].content
    assert "axioms: depends on sorryAx" in turn


def test_feedback_code_overrides_assembled_code_for_positions() -> None:
    code = "theorem mathd_algebra_478 : v = 65 := by\n  nlinarith"
    message = LeanMessage(severity="error", pos=Pos(line=2, column=2), end_pos=Pos(line=2, column=11), data="nlinarith failed")
    fb = Feedback(proof="  nlinarith", completion="c", messages=(message,), code=code)
    turn = get_format("goedel-v2").whole_proof_request(PROBLEM, [fb]).messages[-1].content
    assert "  <error>nlinarith</error>" in turn


def test_feedback_on_complete_code_proof_uses_that_code() -> None:
    message = LeanMessage(severity="error", pos=Pos(line=len(FULL.split("\n")), column=2), data="norm_num failed")
    fb = Feedback(proof=FULL, completion="c", messages=(message,))
    turn = get_format("kimina").whole_proof_request(PROBLEM, [fb]).messages[-1].content
    assert f"{len(FULL.split(chr(10))):03d} >|   norm_num [h₁]" in turn


# ---------------------------------------------------------------------------------------------
# Real benchmark statements
# ---------------------------------------------------------------------------------------------


def test_every_format_builds_requests_for_real_benchmark_problems(datasets_dir: Path) -> None:
    lines = (datasets_dir / "minif2f_test.jsonl").read_text(encoding="utf-8").splitlines()[:20]
    problems = [Problem.model_validate(json.loads(line)) for line in lines]
    for name in FORMAT_NAMES:
        fmt = get_format(name)
        for problem in problems:
            request = fmt.whole_proof_request(problem)
            text = request.prompt or "\n".join(m.content for m in request.messages or ())
            assert problem.formal_statement in text
            # A well-formed answer of the family is extracted back to code declaring the theorem.
            answer = f"```lean4\n{problem.header}{problem.formal_statement}\n  sorry\n```"
            if name == "deepseek-v1.5":
                assert fmt.extract_proof(problem, "  sorry\n```") == "\n  sorry"
            else:
                extracted = fmt.extract_proof(problem, answer)
                assert extracted is not None and problem.theorem_name in extracted


def test_leangeo_problems_get_the_geometry_library_note(datasets_dir) -> None:
    from prover.datasets import load_benchmark
    from prover.leangeo import PROMPT_ADDITION

    geo = load_benchmark("leangeo", data_dir=datasets_dir, limit=1)[0]
    for name in ("deepseek-v2", "goedel-v2", "kimina", "chat"):
        first_turn = get_format(name).whole_proof_request(geo).messages[-1].content
        assert first_turn.endswith(PROMPT_ADDITION) and geo.formal_statement.split(":=")[0] in first_turn
    plain = load_benchmark("minif2f", data_dir=datasets_dir, limit=1)[0]
    assert PROMPT_ADDITION not in get_format("goedel-v2").whole_proof_request(plain).messages[-1].content
