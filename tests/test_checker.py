"""The checker end to end on the SIMULATED REPL through the real pool: accepted proofs, every ban
item and exploit family a source-level or pipeline check can catch, failure classification.

Exploit ids (E1-E16) refer to ../shared/reference/lean_interaction.md section 6.1.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
import pytest_asyncio
from checker_helpers import (
    HEADER,
    PROBLEM,
    STATEMENT,
    ScriptedPool,
    error,
    info,
    lean_config,
)

from prover.config import CheckerConfig
from prover.lean_env.checker import ProofChecker
from prover.lean_env.pool import LeanPool
from prover.lean_env.preflight import DEFAULT_BANNED
from prover.lean_env.verdict_cache import VerdictCache
from prover.types import CheckStatus, Problem

pytestmark = pytest.mark.asyncio(loop_scope="module")

NO_PREFLIGHT = CheckerConfig(banned=())
"""Ban list off: shows that the pipeline's own checks catch what the preflight would."""


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def pool():
    async with LeanPool(lean_config()) as lean_pool:
        yield lean_pool


def _dataset(datasets_dir: Path, file: str, name: str) -> Problem:
    for line in (datasets_dir / file).read_text(encoding="utf-8").splitlines():
        if json.loads(line)["name"] == name:
            return Problem.model_validate_json(line)
    raise AssertionError(name)


# -- accepted ---------------------------------------------------------------------------------


async def test_accepts_tactic_body(pool: LeanPool) -> None:
    verdict = await ProofChecker(pool, CheckerConfig()).check(PROBLEM, "\n  positivity")
    assert (verdict.status, verdict.rule) == (CheckStatus.PROVED, "accepted"), verdict.detail
    assert verdict.proved and not verdict.cached
    assert set(verdict.axioms or ()) == {"propext", "Classical.choice", "Quot.sound"}
    assert verdict.code == HEADER + STATEMENT + "\n  positivity\n"
    assert verdict.lean_seconds > 0


async def test_warning_messages_kept_in_file_coordinates(pool: LeanPool) -> None:
    verdict = await ProofChecker(pool, CheckerConfig()).check(PROBLEM, "\n  nlinarith [sq_nonneg x]")
    assert verdict.proved
    [warning] = verdict.messages
    assert warning.severity == "warning" and "unused variable" in warning.data
    assert warning.pos.line == HEADER.count("\n") + 1  # the statement's first line in `code`


async def test_accepts_complete_code_with_aux_lemma(pool: LeanPool) -> None:
    code = (
        "import Mathlib\nimport Aesop\nset_option maxHeartbeats 400000\nopen BigOperators Real Nat Topology Rat\n\n"
        "lemma sq_pos_helper (y : ℝ) (hy : 0 < y) : y ^ 2 > 0 := by\n  positivity\n\n"
        "theorem mathd_t (x : ℝ) (h₀ : 0 < x) : x ^ 2 > 0 := by\n  exact sq_pos_helper x h₀\n"
    )
    verdict = await ProofChecker(pool, CheckerConfig()).check(PROBLEM, code)
    assert verdict.rule == "accepted", verdict.detail
    assert "lemma sq_pos_helper" in verdict.code and STATEMENT in verdict.code


async def test_accepts_term_mode(pool: LeanPool) -> None:
    verdict = await ProofChecker(pool, CheckerConfig()).check(
        PROBLEM, "theorem mathd_t (x : ℝ) (h₀ : 0 < x) : x ^ 2 > 0 :=\n  by exact pow_pos h₀ 2"
    )
    assert verdict.rule == "accepted", verdict.detail


async def test_proofnet_declaration_name_differs(pool: LeanPool, datasets_dir: Path) -> None:
    problem = _dataset(datasets_dir, "proofnet_test.jsonl", "Ireland_Rosen_exercise_2_4")
    checker = ProofChecker(pool, CheckerConfig())
    verdict = await checker.check(problem, "\n  intro h₁\n  omega")
    assert verdict.rule == "accepted", verdict.detail
    restated = "import Mathlib\n" + problem.formal_statement + "\n  intro h₁\n  omega"
    assert (await checker.check(problem, restated)).rule == "accepted"
    named_like_problem = restated.replace("exercise_2_4", problem.name)
    assert (await checker.check(problem, named_like_problem)).rule == "missing_theorem"


async def test_leangeo_axiom_only_when_allowed(pool: LeanPool, datasets_dir: Path) -> None:
    problem = _dataset(datasets_dir, "leangeo_bench.jsonl", "angle_altitude_circumradius_equal")
    plain = await ProofChecker(pool, CheckerConfig()).check(problem, "\n  euclid_finish")
    assert (plain.status, plain.rule) == (CheckStatus.REJECTED, "axioms")
    assert "SMT_VERIF" in plain.detail
    per_call = await ProofChecker(pool, CheckerConfig()).check(
        problem, "\n  euclid_finish", extra_allowed_axioms=("SMT_VERIF",)
    )
    assert per_call.rule == "accepted", per_call.detail
    configured = await ProofChecker(pool, CheckerConfig(extra_allowed_axioms=("SMT_VERIF",))).check(
        problem, "\n  euclid_finish"
    )
    assert configured.rule == "accepted" and "SMT_VERIF" in (configured.axioms or ())
    whole_file = problem.header + problem.formal_statement + "\n  euclid_finish\n\nend LeanGeo\n"
    assert (await ProofChecker(pool, CheckerConfig(extra_allowed_axioms=("SMT_VERIF",))).check(
        problem, whole_file)).rule == "accepted"


async def test_header_declared_axioms_only_when_the_benchmark_allows_them(pool: LeanPool) -> None:
    geo = Problem(
        name="geo_library_thm",
        header="axiom Point : Type\naxiom between_rule : True\n\n",
        formal_statement="theorem geo_library_thm : True := by",
    )
    plain = await ProofChecker(pool, CheckerConfig()).check(geo, "exact between_rule")
    assert plain.rule == "axioms" and set(plain.axioms or ()) == {"propext", "between_rule"}
    library = ProofChecker(pool, CheckerConfig(allow_header_axioms=True))
    assert (await library.check(geo, "exact between_rule")).rule == "accepted"
    # an axiom the header does not declare stays refused, even with the ban list switched off
    cheat = await ProofChecker(pool, CheckerConfig(allow_header_axioms=True, banned=())).check(
        geo, "axiom model_cheat : True\n\ntheorem geo_library_thm : True := by\n  exact model_cheat"
    )
    assert (cheat.status, cheat.rule) == (CheckStatus.REJECTED, "axioms")
    assert "model_cheat" in cheat.detail and "between_rule" not in cheat.detail


# -- Lean failures ----------------------------------------------------------------------------


async def test_wrong_proof_is_lean_error(pool: LeanPool) -> None:
    verdict = await ProofChecker(pool, CheckerConfig()).check(PROBLEM, "\n  linarith")
    assert (verdict.status, verdict.rule) == (CheckStatus.FAILED, "lean_error")
    assert verdict.messages[0].severity == "error" and "unsolved goals" in verdict.messages[0].data
    assert "(body)" in verdict.detail


async def test_empty_and_missing(pool: LeanPool) -> None:
    checker = ProofChecker(pool, CheckerConfig())
    empty = await checker.check(PROBLEM, "  \n  -- TODO\n")
    assert (empty.status, empty.rule) == (CheckStatus.FAILED, "empty_proof")
    missing = await checker.check(PROBLEM, "theorem something_else : True := by\n  trivial")
    assert (missing.status, missing.rule) == (CheckStatus.REJECTED, "missing_theorem")


# -- exploit families -------------------------------------------------------------------------


async def test_e1_sorry_and_admit(pool: LeanPool) -> None:
    strict = ProofChecker(pool, CheckerConfig())
    assert (await strict.check(PROBLEM, "\n  sorry")).rule == "preflight:sorry"
    assert (await strict.check(PROBLEM, "\n  admit")).rule == "preflight:admit"
    lax = ProofChecker(pool, NO_PREFLIGHT)
    for body in ("\n  sorry", "\n  admit"):
        verdict = await lax.check(PROBLEM, body)
        assert (verdict.status, verdict.rule) == (CheckStatus.FAILED, "sorry"), body


async def test_e2_synthetic_sorry_caught_by_axioms(pool: LeanPool) -> None:
    body = "\n  exact synthetic_sorry_trick"
    verdict = await ProofChecker(pool, CheckerConfig()).check(PROBLEM, body)
    assert (verdict.status, verdict.rule) == (CheckStatus.REJECTED, "axioms")
    assert "sorryAx" in (verdict.axioms or ())
    anything_goes = CheckerConfig(allowed_axioms=("propext", "sorryAx"))
    assert (await ProofChecker(pool, anything_goes).check(PROBLEM, body)).rule == "axioms"  # never allowed


async def test_e3_new_axiom(pool: LeanPool) -> None:
    code = "axiom cheat : False\n\ntheorem mathd_t (x : ℝ) (h₀ : 0 < x) : x ^ 2 > 0 := by\n  exact cheat.elim"
    assert (await ProofChecker(pool, CheckerConfig()).check(PROBLEM, code)).rule == "preflight:axiom"
    verdict = await ProofChecker(pool, NO_PREFLIGHT).check(PROBLEM, code)
    assert (verdict.rule, verdict.axioms) == ("axioms", ("cheat",))


async def test_e4_native_decide(pool: LeanPool) -> None:
    assert (await ProofChecker(pool, CheckerConfig()).check(PROBLEM, "\n  native_decide")).rule == (
        "preflight:native_decide"
    )
    lax = await ProofChecker(pool, NO_PREFLIGHT).check(PROBLEM, "\n  native_decide")
    assert lax.rule == "axioms" and "Lean.ofReduceBool" in (lax.axioms or ())
    hidden = await ProofChecker(pool, CheckerConfig()).check(PROBLEM, "\n  exact compiled_decision")
    assert hidden.rule == "axioms"  # no `native_decide` text, still caught
    allowed = await ProofChecker(pool, CheckerConfig(allow_native_decide=True)).check(PROBLEM, "\n  native_decide")
    assert allowed.rule == "accepted", allowed.detail


SOURCE_LEVEL = {
    "E5 implemented_by": ("@[implemented_by fast] def slow (n : ℕ) : ℕ := n\n", "implemented_by"),
    "E5 extern": ('@[extern "lean_slow"] def slow (n : ℕ) : ℕ := n\n', "extern"),
    "E6 skipKernelTC": ("set_option debug.skipKernelTC true\n", "debug"),
    "E7 hijack #print axioms": ('elab "#print" "axioms" _n:ident : command => pure ()\n', "elab"),
    "E8 macro": ('macro "positivity" : tactic => `(tactic| sorry)\n', "macro"),
    "E8 notation": ('notation3 (priority := high) a " > " b => True\n', "notation"),
    "E8 syntax": ('syntax "cheat" : tactic\n', "syntax"),
    "E8 instance": ("instance (priority := high) : LT ℝ := ⟨fun _ _ => True⟩\n", "instance"),
    "E8 local instance": ("attribute [local instance] Classical.propDecidable\n", "instance"),
    "E8 namespace shadowing": ("namespace Evil\ndef Real := ℕ\n", "scope"),
    "E10 variable injection": ("variable (h : False)\ninclude h\n", "scope"),
    "E11 unsafe": ("unsafe def loop : ℕ → ℕ := fun n => loop n\n", "unsafe"),
    "E12 #eval": ('#eval IO.FS.writeFile "/tmp/pwned" ""\n', "eval"),
    "E12 run_cmd": ("run_cmd Lean.logInfo \"hi\"\n", "run_cmd"),
    "E12 initialize": ("initialize pwn : IO.Ref ℕ ← IO.mkRef 0\n", "initialize"),
    "E13 extra import": ("import Mathlib\nimport Evil.Olean\n", "import"),
    "E13 prelude": ("prelude\n", "prelude"),
    "E6 run_tac": ("", "run_tac"),
    "message hiding": ("#guard_msgs in\nexample : True := trivial\n", "guard_msgs"),
    "stop elaboration": ("#exit\n", "exit"),
    "meta code": ("def pwn : MetaM Unit := pure ()\n", "metaprogram"),
    "string Lean may interpolate": ('def msg (x : ℕ) := toString "x = {x}"\n', "interpolation"),
    "diagnostics hidden by an option": ("set_option warn.sorry false\n", "option"),
    "simproc (code simp runs)": ("simproc evil (_) := fun _ => return .continue\n", "simproc"),
    "extension-registering attribute": ("@[positivity _ ^ _] def evalPos := 1\n", "attribute"),
    "unterminated comment after the proof": ("", "lexical"),
}


@pytest.mark.parametrize("case", sorted(SOURCE_LEVEL))
async def test_source_level_exploits_refused(pool: LeanPool, case: str) -> None:
    prefix, item = SOURCE_LEVEL[case]
    body = {"run_tac": "\n  run_tac pure ()", "lexical": "\n  positivity /- never closed"}.get(item, "\n  positivity")
    code = prefix + "\ntheorem mathd_t (x : ℝ) (h₀ : 0 < x) : x ^ 2 > 0 := by" + body
    verdict = await ProofChecker(pool, CheckerConfig()).check(PROBLEM, code)
    assert (verdict.status, verdict.rule) == (CheckStatus.REJECTED, f"preflight:{item}"), verdict.detail
    assert verdict.code == ""  # never sent to Lean


async def test_every_ban_item_is_exercised() -> None:
    used = {item for _, item in SOURCE_LEVEL.values()} | {"sorry", "admit", "axiom", "native_decide"}
    assert set(DEFAULT_BANNED) <= used


async def test_e11_partial_is_configurable(pool: LeanPool) -> None:
    code = "partial def spin (n : ℕ) : ℕ := spin n\n\ntheorem mathd_t (x : ℝ) (h₀ : 0 < x) : x ^ 2 > 0 := by\n  positivity"
    banned = CheckerConfig(banned=(*DEFAULT_BANNED, "partial"))
    assert (await ProofChecker(pool, banned).check(PROBLEM, code)).rule == "preflight:partial"


async def test_e10_restated_statement_is_replaced(pool: LeanPool) -> None:
    weaker = "theorem mathd_t (x : ℝ) : x ^ 2 ≥ 0 := by\n  exact sq_nonneg x"
    verdict = await ProofChecker(pool, CheckerConfig()).check(PROBLEM, weaker)
    assert verdict.rule == "lean_error"  # its proof does not prove the benchmark statement
    assert STATEMENT in verdict.code and "x ^ 2 ≥ 0" not in verdict.code


async def test_e16_unproved_helper_lemma(pool: LeanPool) -> None:
    code = (
        "lemma helper (y : ℝ) : y ^ 2 > 0 := by\n  sorry\n\n"
        "theorem mathd_t (x : ℝ) (h₀ : 0 < x) : x ^ 2 > 0 := by\n  exact helper x"
    )
    assert (await ProofChecker(pool, CheckerConfig()).check(PROBLEM, code)).rule == "preflight:sorry"
    verdict = await ProofChecker(pool, NO_PREFLIGHT).check(PROBLEM, code)
    assert (verdict.status, verdict.rule) == (CheckStatus.FAILED, "sorry")


# -- failure classification -------------------------------------------------------------------


async def test_timeout_then_pool_keeps_serving(pool: LeanPool) -> None:
    checker = ProofChecker(pool, CheckerConfig())
    verdict = await checker.check(PROBLEM, "\n  hang_forever_tactic")
    assert (verdict.status, verdict.rule) == (CheckStatus.TIMEOUT, "timeout")
    assert (await checker.check(PROBLEM, "\n  positivity")).proved


@pytest.mark.parametrize(
    ("body", "rule"), [("crash_the_repl", "crash"), ("emit_garbage", "crash"), ("eat_all_memory", "out_of_memory")]
)
async def test_process_failures_are_errors(pool: LeanPool, body: str, rule: str) -> None:
    checker = ProofChecker(pool, CheckerConfig())
    verdict = await checker.check(PROBLEM, "\n  " + body)
    assert (verdict.status, verdict.rule) == (CheckStatus.ERROR, rule), verdict.detail
    assert (await checker.check(PROBLEM, "\n  positivity")).proved


async def test_unstartable_repl_is_infrastructure() -> None:
    config = lean_config(repl_cmd=["/nonexistent/repl-binary"])
    async with LeanPool(config) as broken:
        verdict = await ProofChecker(broken, CheckerConfig()).check(PROBLEM, "\n  positivity")
    assert (verdict.status, verdict.rule) == (CheckStatus.ERROR, "infrastructure")
    assert "nonexistent" in verdict.detail


# -- cache ------------------------------------------------------------------------------------


async def test_cache_hit_and_rules_fingerprint(pool: LeanPool, tmp_path: Path) -> None:
    cache = VerdictCache(tmp_path / "v.sqlite")
    checker = ProofChecker(pool, CheckerConfig(), cache=cache)
    first = await checker.check(PROBLEM, "\n  positivity")
    second = await checker.check(PROBLEM, "\n  positivity")
    assert first.proved and not first.cached and second.cached and second.proved
    timeout = await checker.check(PROBLEM, "\n  hang_forever_tactic")
    assert timeout.rule == "timeout" and len(cache) == 1  # timeouts are not stored
    geo_rules = ProofChecker(pool, CheckerConfig(extra_allowed_axioms=("SMT_VERIF",)), cache=cache)
    assert not (await geo_rules.check(PROBLEM, "\n  positivity")).cached  # other rules, other key
    cache.close()


async def test_concurrent_identical_checks_run_once(pool: LeanPool) -> None:
    cache = VerdictCache(":memory:")
    checker = ProofChecker(pool, CheckerConfig(), cache=cache)
    verdicts = await asyncio.gather(*(checker.check(PROBLEM, "\n  slow_but_fine") for _ in range(5)))
    assert all(v.proved for v in verdicts)
    assert cache.stats.misses == 1 and cache.stats.deduped == 4
    assert sum(not v.cached for v in verdicts) == 1


async def test_concurrent_checks_of_one_problem_compute_its_reference_once(pool: LeanPool) -> None:
    # Per accepted proof the pipeline sends 4 requests (the proof, its env's pickle, the audit's
    # unpickle, the trusted commands); the statement reference is one more per problem, not per proof.
    alone = ProofChecker(pool, CheckerConfig(replay="off"))
    before = pool.stats().requests
    assert (await alone.check(PROBLEM, "\n  positivity")).proved
    per_proof = pool.stats().requests - before - 1
    checker = ProofChecker(pool, CheckerConfig(replay="off"))
    before = pool.stats().requests
    proofs = ["\n  positivity", "\n  exact pow_pos h₀ 2", "\n  nlinarith [sq_nonneg x]", "\n  slow_but_fine"]
    verdicts = await asyncio.gather(*(checker.check(PROBLEM, proof) for proof in proofs))
    assert all(v.proved for v in verdicts), [v.rule for v in verdicts]
    assert pool.stats().requests - before == per_proof * len(proofs) + 1


# -- trusted-command parsing (reply shapes only real Lean produces; scripted pool) ----------------


def _scripted(check_out: str, reference_out: str, axioms: list[dict]) -> ScriptedPool:
    def answer(cmd: str, env: int | None) -> dict:
        if cmd.startswith("set_option pp.all true in set_option pp.explicit true in"):
            return {"env": 3, "messages": [info(2, check_out), *axioms]}
        if "#check" in cmd:  # the reference: statement := by sorry, then the trusted part
            line = STATEMENT.count("\n") + 4
            return {"env": 2, "messages": [info(line, reference_out)]}
        return {"env": 1}

    return ScriptedPool(answer)


STANDARD = [info(4, "'mathd_t' depends on axioms: [propext,\n Classical.choice,\n Quot.sound]")]


async def test_statement_identity_accepts_same_type() -> None:
    scripted = _scripted("@mathd_t : ∀ (x : Real) ...", "@mathd_t : ∀ (x : Real) ...", STANDARD)
    verdict = await ProofChecker(scripted, CheckerConfig()).check(PROBLEM, "\n  positivity")
    assert verdict.rule == "accepted" and verdict.axioms == ("propext", "Classical.choice", "Quot.sound")
    trusted = [c for c in scripted.sent if c.startswith("set_option pp.all")]
    assert len(trusted) == 1 and trusted[0].endswith("in\n#check @mathd_t\n\n#print axioms mathd_t\n")
    assert "set_option pp.notation false in" in trusted[0]
    checker = ProofChecker(scripted, CheckerConfig())
    await checker.check(PROBLEM, "\n  positivity")
    await checker.check(PROBLEM, "\n  nlinarith [sq_nonneg x]")
    references = [c for c in scripted.sent if c.startswith(STATEMENT + " sorry")]
    assert len(references) == 2  # one per checker object, not one per check
    assert all("#print axioms" not in c for c in scripted.sent if STATEMENT in c and "sorry" not in c)


async def test_e8_e9_statement_mismatch() -> None:
    scripted = _scripted("@mathd_t : ∀ (x : Real), @LT.lt Real evilInst ...", "@mathd_t : ∀ (x : Real), @LT.lt Real Real.instLT ...", STANDARD)
    verdict = await ProofChecker(scripted, CheckerConfig()).check(PROBLEM, "\n  positivity")
    assert (verdict.status, verdict.rule) == (CheckStatus.REJECTED, "statement_mismatch")
    assert "evilInst" in verdict.detail and "Real.instLT" in verdict.detail
    off = await ProofChecker(scripted, CheckerConfig(), verify_statement=False).check(PROBLEM, "\n  positivity")
    assert off.rule == "accepted"


@pytest.mark.parametrize(
    ("axiom_messages", "rule"),
    [
        ([error(4, "unknown constant 'mathd_t'")], "missing_theorem"),
        ([error(4, "unknown identifier 'mathd_t'")], "missing_theorem"),
        ([], "axioms"),  # no answer at all: fail closed
        ([*STANDARD, info(4, "'mathd_t' does not depend on any axioms")], "axioms"),  # forged extra line
        ([info(4, "'mathd_t' is fine, trust me")], "axioms"),
        ([info(4, "'mathd_t' depends on axioms: [propext, sorryAx]")], "axioms"),
        ([info(4, "'mathd_t' does not depend on any axioms")], "accepted"),
    ],
)
async def test_axiom_reply_parsing(axiom_messages: list[dict], rule: str) -> None:
    scripted = _scripted("same", "same", axiom_messages)
    verdict = await ProofChecker(scripted, CheckerConfig()).check(PROBLEM, "\n  positivity")
    assert verdict.rule == rule, verdict.detail


async def test_empty_header_core_problem(pool: LeanPool, datasets_dir: Path) -> None:
    line = (datasets_dir / "core_smoke.jsonl").read_text(encoding="utf-8").splitlines()[0]
    problem = Problem.model_validate_json(line)
    assert problem.header == ""
    verdict = await ProofChecker(pool, CheckerConfig()).check(problem, "\n  omega")
    assert verdict.rule == "lean_error"  # not in the scenario: the simulated REPL says unsolved goals
    assert verdict.code == problem.formal_statement + "\n  omega\n"
    assert verdict.messages[0].pos.line >= 1
    accepted = await ProofChecker(pool, CheckerConfig()).check(problem, "\n  nlinarith [h₀, h₁, h₂]")
    assert accepted.rule == "accepted", accepted.detail


@pytest.mark.parametrize("printed", ["«Classical.choice»", "«propext, Quot.sound»", "Classical.«choice»"])
async def test_quoted_axiom_names_are_not_the_standard_axioms(printed: str) -> None:
    # `axiom «Classical.choice» : False` is a new one-component name, printed with its quotes
    axioms = [info(4, f"'mathd_t' depends on axioms: [propext, {printed}]")]
    verdict = await ProofChecker(_scripted("same", "same", axioms), CheckerConfig()).check(PROBLEM, "\n  positivity")
    assert (verdict.status, verdict.rule) == (CheckStatus.REJECTED, "axioms"), verdict.detail
    assert printed.split(",")[-1].strip() in verdict.detail


def _header_axiom_pool(header_reply: dict) -> ScriptedPool:
    """The model's theorem depends on `sqrt_cheat`; `header_reply` answers the header-env query."""
    def answer(cmd: str, env: int | None) -> dict:
        if cmd.startswith("set_option pp.all"):
            return {"env": 3, "messages": [info(2, "same"), info(4, "'mathd_t' depends on axioms: [propext, sqrt_cheat]")]}
        if "#check" in cmd:
            return {"env": 2, "messages": [info(STATEMENT.count("\n") + 4, "same")]}
        if cmd.startswith("#print axioms sqrt_cheat"):
            return header_reply
        return {"env": 1}

    return ScriptedPool(answer)


@pytest.mark.parametrize(
    ("header_reply", "rule"),
    [
        # real Lean resolves the name through the header's `open Real`: a different constant
        ({"env": 4, "messages": [info(1, "'Real.sqrt_cheat' depends on axioms: [propext]")]}, "axioms"),
        # the header has a theorem of that name, not an axiom
        ({"env": 4, "messages": [info(1, "'sqrt_cheat' depends on axioms: [propext]")]}, "axioms"),
        ({"env": 4, "messages": [error(1, "unknown constant 'sqrt_cheat'")]}, "axioms"),
        ({"env": 4, "messages": [info(1, "'sqrt_cheat' depends on axioms: [sqrt_cheat]")]}, "accepted"),
    ],
)
async def test_header_axioms_must_be_that_exact_axiom(header_reply: dict, rule: str) -> None:
    pool = _header_axiom_pool(header_reply)
    verdict = await ProofChecker(pool, CheckerConfig(allow_header_axioms=True)).check(PROBLEM, "\n  positivity")
    assert verdict.rule == rule, verdict.detail


async def test_cache_never_serves_another_repls_verdict() -> None:
    """A verdict from one REPL (e.g. the simulated one via --repl-cmd) on the same workspace and
    Lean version is not an answer for another REPL."""
    cache = VerdictCache(":memory:")
    lenient = _scripted("same", "same", STANDARD)
    strict = _scripted("same", "same", [info(4, "'mathd_t' depends on axioms: [sorryAx]")])
    strict.config = strict.config.model_copy(update={"repl_cmd": ["lake", "env", "repl"]})
    assert (await ProofChecker(lenient, CheckerConfig(), cache=cache).check(PROBLEM, "\n  positivity")).proved
    verdict = await ProofChecker(strict, CheckerConfig(), cache=cache).check(PROBLEM, "\n  positivity")
    assert not verdict.cached and verdict.rule == "axioms"
    again = await ProofChecker(lenient, CheckerConfig(), cache=cache).check(PROBLEM, "\n  positivity")
    assert again.cached and again.proved


@pytest.mark.parametrize("change", ["ban item", "attribute allow-list", "option allow-list", "assembler", "checker"])
async def test_cache_key_covers_the_rules_themselves(pool: LeanPool, tmp_path: Path, monkeypatch, change: str) -> None:
    """Changing a rule (not only the configuration) never serves an old verdict."""
    checker_module = sys.modules["prover.lean_env.checker"]
    preflight_module = sys.modules["prover.lean_env.preflight"]  # the package re-exports a function of that name

    cache = VerdictCache(tmp_path / "v.sqlite")
    checker = ProofChecker(pool, CheckerConfig(replay="off"), cache=cache)
    assert (await checker.check(PROBLEM, "\n  positivity")).proved
    assert (await checker.check(PROBLEM, "\n  positivity")).cached
    if change == "ban item":
        items = tuple(i.model_copy(update={"words": (*i.words, "positivity")}) if i.name == "sorry" else i
                      for i in preflight_module._ITEMS)
        monkeypatch.setattr(preflight_module, "_ITEMS", items)
    elif change == "attribute allow-list":
        monkeypatch.setattr(preflight_module, "ALLOWED_ATTRIBUTES", preflight_module.ALLOWED_ATTRIBUTES - {"simp"})
    elif change == "option allow-list":
        monkeypatch.setattr(preflight_module, "ALLOWED_OPTIONS", ("maxHeartbeats",))
    elif change == "assembler":
        monkeypatch.setattr(checker_module, "ASSEMBLER_VERSION", "assemble/next")
    else:
        monkeypatch.setattr(checker_module, "CHECKER_VERSION", "checker/next")
    again = await checker.check(PROBLEM, "\n  positivity")
    assert not again.cached
    cache.close()
