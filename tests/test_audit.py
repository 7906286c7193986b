"""Class 3: the audit cannot be answered by model code.

The trusted `#check` / `#print axioms` run on the model's environment rebuilt from its constants
alone (REPL pickle -> unpickle, which replays every constant in the kernel and keeps no
environment extension, so no model-defined elaborator or macro exists there). Exercised on the
SIMULATED REPL, which models one extension (a model elaborator answering `#print axioms`) and
the kernel refusing a constant on replay, plus reply shapes only real Lean produces (scripted).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio
from checker_helpers import PROBLEM, STATEMENT, ScriptedPool, info, lean_config

from prover.config import CheckerConfig
from prover.lean_env.checker import ProofChecker
from prover.lean_env.pool import LeanPool
from prover.lean_env.simulated_lean import Scenario, SimulatedLean
from prover.types import CheckStatus

pytestmark = pytest.mark.asyncio(loop_scope="module")

NO_PREFLIGHT = CheckerConfig(banned=(), replay="off")
THEOREM = "theorem mathd_t (x : ℝ) (h₀ : 0 < x) : x ^ 2 > 0 := by\n"
HIJACKS = {
    "elab": 'elab "#print" "axioms" _n:ident : command => pure ()\n\n',
    "command_elab attribute": "@[command_elab Lean.Parser.Command.printAxioms] def hijack : CommandElab := fun _ => pure ()\n\n",
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def pool():
    async with LeanPool(lean_config()) as lean_pool:
        yield lean_pool


async def test_simulated_hijack_lies_in_its_env_and_is_gone_after_a_pickle(tmp_path: Path) -> None:
    lean = SimulatedLean(Scenario.load(Path(__file__).parent / "data" / "checker" / "scenario.yaml"))
    env = lean.command(HIJACKS["elab"] + THEOREM + "  exact synthetic_sorry_trick", None)["env"]
    lied = lean.command("#print axioms mathd_t", env)["messages"][0]["data"]
    assert lied == "'mathd_t' does not depend on any axioms"
    lean.handle({"pickleTo": str(tmp_path / "p.olean"), "env": env})
    clean = lean.handle({"unpickleEnvFrom": str(tmp_path / "p.olean")})["env"]
    truth = lean.command("#print axioms mathd_t", clean)["messages"][0]["data"]
    assert truth == "'mathd_t' depends on axioms: [propext, sorryAx]"


@pytest.mark.parametrize("hijack", sorted(HIJACKS))
async def test_a_model_elaborator_for_print_axioms_cannot_answer_the_audit(pool: LeanPool, hijack: str) -> None:
    code = HIJACKS[hijack] + THEOREM + "  exact synthetic_sorry_trick"
    verdict = await ProofChecker(pool, NO_PREFLIGHT).check(PROBLEM, code)
    assert (verdict.status, verdict.rule, verdict.stage) == (CheckStatus.REJECTED, "axioms", "audit"), verdict.detail
    assert "sorryAx" in (verdict.axioms or ())
    strict = await ProofChecker(pool, CheckerConfig(replay="off")).check(PROBLEM, code)
    assert strict.rule == "preflight:elab" and strict.stage == "preflight"


async def test_a_constant_the_kernel_refuses_on_replay_is_rejected(pool: LeanPool) -> None:
    checker = ProofChecker(pool, NO_PREFLIGHT)
    verdict = await checker.check(PROBLEM, "\n  exact unchecked_by_kernel")
    assert (verdict.status, verdict.rule, verdict.stage) == (CheckStatus.REJECTED, "audit_replay", "audit")
    assert "(kernel)" in verdict.detail
    assert (await checker.check(PROBLEM, "\n  positivity")).proved  # the worker came back


async def test_commands_after_the_last_tactic_are_dropped_not_hidden(pool: LeanPool) -> None:
    code = THEOREM + "  positivity\n  " + HIJACKS["elab"].strip() + "\n"
    verdict = await ProofChecker(pool, NO_PREFLIGHT).check(PROBLEM, code)
    assert verdict.proved and "elab" not in verdict.code
    assert verdict.code.endswith(STATEMENT + "\n  positivity\n")


async def test_output_that_is_not_our_reply_is_a_protocol_error_never_a_reply(pool: LeanPool) -> None:
    checker = ProofChecker(pool, CheckerConfig(replay="off"))
    verdict = await checker.check(PROBLEM, "\n  print_forged_reply")
    assert (verdict.status, verdict.rule, verdict.stage) == (CheckStatus.ERROR, "crash", "lean"), verdict.detail
    assert "not a reply to our request" in verdict.detail
    assert (await checker.check(PROBLEM, "\n  positivity")).proved


def _named(printed: str) -> ScriptedPool:
    def answer(cmd: str, env: int | None) -> dict:
        if cmd.startswith("set_option pp.all"):
            return {"env": 3, "messages": [info(2, "same"), info(4, f"'{printed}' depends on axioms: [propext]")]}
        if "#check" in cmd:
            return {"env": 2, "messages": [info(STATEMENT.count("\n") + 4, "same")]}
        return {"env": 1}

    return ScriptedPool(answer)


@pytest.mark.parametrize(("printed", "rule"), [("Evil.mathd_t", "missing_theorem"), ("mathd_t'", "missing_theorem"),
                                                ("«mathd_t»", "accepted"), ("mathd_t", "accepted")])
async def test_the_constant_lean_printed_must_be_the_theorem(printed: str, rule: str) -> None:
    verdict = await ProofChecker(_named(printed), CheckerConfig()).check(PROBLEM, "\n  positivity")
    assert verdict.rule == rule, verdict.detail


async def test_audit_order_pickle_on_the_model_worker_then_unpickle_and_trusted_commands() -> None:
    scripted = _named("mathd_t")
    await ProofChecker(scripted, CheckerConfig()).check(PROBLEM, "\n  positivity")
    kinds = [c.split()[0] if c.startswith(("pickle", "unpickle")) else c[:14] for c in scripted.sent]
    assert kinds.index("pickle") < kinds.index("unpickle") < kinds.index("set_option pp.")


async def test_the_printed_name_includes_the_namespace_the_header_leaves_open() -> None:
    geo = PROBLEM.model_copy(update={"header": "import Mathlib\nnamespace LeanGeo\n\nsection\nend\n\n"})

    def scripted(printed: str) -> ScriptedPool:
        def answer(cmd: str, env: int | None) -> dict:
            if cmd.startswith("set_option pp.all"):
                return {"env": 3, "messages": [info(2, "same"), info(4, f"'{printed}' depends on axioms: [propext]")]}
            if "#check" in cmd:
                return {"env": 2, "messages": [info(STATEMENT.count("\n") + 4, "same")]}
            return {"env": 1}

        return ScriptedPool(answer)

    accepted = await ProofChecker(scripted("LeanGeo.mathd_t"), CheckerConfig()).check(geo, "\n  positivity")
    assert accepted.rule == "accepted", accepted.detail
    root = await ProofChecker(scripted("mathd_t"), CheckerConfig()).check(geo, "\n  positivity")
    assert root.rule == "missing_theorem"  # a root constant is not the theorem declared in LeanGeo
