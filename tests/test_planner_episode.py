"""Planner episodes in-process (`prover.api.evaluate`) with the SIMULATED REPL and scripted models.

The world is tests/planner_world.py: a statement change rejected and repaired, a false claim
that no sub-prover proves (its decomposition fails too), a re-plan that solves the theorem, and a
second problem whose only claim comes from the proof cache. Samplers are wrapped to see every
request the strategy makes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from planner_world import (
    E2E_SCENARIO,
    GOOD_BODY,
    NAME,
    SHARED,
    attempts,
    code_reply,
    lemma_proof,
    prover_lines,
    reply,
    repl_cmd,
    sim_config,
    world,
    write_jsonl,
)

from prover.api import Prover, evaluate
from prover.config import ProverConfig
from prover.errors import SamplerUnavailable
from prover.llm.base import Sampler
from prover.search.base import Services
from prover.search.services import open_services
from prover.types import GenRequest, GenResult


class Watched(Sampler):
    """Forwards to the real sampler; remembers (role, request); can fail on a chosen call."""

    def __init__(self, inner: Sampler, role: str, seen: list[tuple[str, GenRequest]],
                 fail: Callable[[GenRequest], bool] = lambda _: False) -> None:
        super().__init__()
        self.inner, self.role, self.seen, self.fail = inner, role, seen, fail
        self.backend = inner.backend

    async def generate(self, request: GenRequest) -> GenResult:
        if self.fail(request):
            raise SamplerUnavailable(f"{self.role} server at 127.0.0.1 is down")
        self.seen.append((self.role, request))
        return await self.inner.generate(request)


def watching(seen: list[tuple[str, GenRequest]], fail: Callable[[GenRequest], bool] = lambda _: False) -> Any:
    async def factory(config: ProverConfig) -> Services:
        services = await open_services(config)
        services.samplers = {role: Watched(s, role, seen, fail if role == "planner" else lambda _: False)
                             for role, s in services.samplers.items()}
        return services

    return factory


def steps(run: list[dict], problem: str, kind: str) -> list[str]:
    return [a["extra"]["step"] for a in run if a["problem"] == problem and a["kind"] == kind]


def by_step(run: list[dict], problem: str, kind: str) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for a in run:
        if a["problem"] == problem and a["kind"] == kind:
            found.setdefault(a["extra"]["step"], []).append(a)
    return found


def test_an_episode_repairs_replans_decomposes_and_reuses_the_cache(tmp_path: Path, datasets_dir: Path) -> None:
    config, items = world(tmp_path, datasets_dir)
    seen: list[tuple[str, GenRequest]] = []
    result = evaluate(items, config, out=tmp_path / "run", progress=False, services=watching(seen))
    summary = result.summary
    assert summary.solved == 2 and summary.attempts == 2 and summary.pass_at_k == {"1": 1.0}
    assert summary.tallies == {"sketches tried": 6, "sketches elaborated": 3, "subgoals total": 4, "subgoals proven": 3,
                               "subgoal cache hits": 1, "re-plans": 1, "decompositions": 1}
    assert summary.peaks == {"depth reached": 1}
    run = attempts(tmp_path / "run")

    sketches = by_step(run, NAME, "sketch")
    assert list(sketches) == ["p0.t0", "p0.t1", "p0.g0/p0.t0", "p0.g0/p0.t1", "p1.t0"]
    assert sketches["p0.t0"][0]["verdict"]["rule"] == "sketch:statement_changed"
    assert sketches["p0.t0"][0]["verdict"]["status"] == "rejected"
    assert [sketches[s][0]["extra"].get("elaborated") for s in ("p0.t1", "p1.t0")] == [True, True]
    assert sketches["p0.g0/p0.t0"][0]["verdict"]["rule"] == "sketch:no_lean_block"
    outcomes = {a["extra"]["step"]: a["extra"]["outcome"] for a in run if "outcome" in a["extra"] and a["problem"] == NAME}
    assert outcomes["p0.g0"]["proved"] is False and outcomes["p0.g0"]["method"] == "lemma"
    assert outcomes["p0.g0.d"]["method"] == "decomposed" and outcomes["p0.g0.d"]["proved"] is False
    assert outcomes["p1.g0"]["proved"] and outcomes["p1.g1"]["proved"]
    assert outcomes["p1.g0"]["proof"] == "rw [h₂, h₃]\nnorm_num"

    # the stitched proof went through the full checker, and only its verdict counts
    top = next(a for a in run if a["problem"] == NAME and a["parent"] is None)
    assert top["verdict"]["rule"] == "accepted" and set(top["verdict"]["axioms"]) == {"propext", "Classical.choice",
                                                                                        "Quot.sound"}
    assert "have hv : v = 1 / 3 * 195 := by rw [h₁, hb]" in top["verdict"]["code"]
    assert "sorry" not in top["proof"] and top["prompt_tokens"] > 0

    # prompts: the repair shows why the statement was refused; the re-plan names the false claim
    planner = {r.tag: r for role, r in seen if role == "planner"}
    repair = planner[f"{NAME}#round=1"].messages[-1].content
    assert "different statement" in repair and "Keep the statement exactly as given" in repair
    replan = planner[f"{NAME}#round=2"].messages[-1].content
    failed_part = replan.split("Claims that could not be proved")[1]
    assert "`hbad : v = 65 ∧ b = 31`" in failed_part and "no accepted proof of the lemma" in failed_part
    assert planner[f"{NAME}_hbad#round=0"].messages[-1].content.startswith("In a proof of `mathd_algebra_478`")

    # the second problem's claim came from the cache: replayed on its own hole, nothing sampled for it
    shared = [a for a in run if a["problem"] == SHARED and a["kind"] == "subgoal"]
    assert [a["extra"]["method"] for a in shared] == ["cache"]
    assert shared[0]["verdict"]["rule"] == "subgoal:cache_replay"
    prover_tags = [r.tag for role, r in seen if role == "prover"]
    assert not any(tag.startswith(SHARED) for tag in prover_tags)
    report = (tmp_path / "run" / "report.md").read_text()
    assert "| subgoal cache hits | 1 |" in report and "| depth reached (max) | 1 |" in report


def test_a_planner_outage_mid_episode_loses_nothing_and_resume_redoes_nothing(tmp_path: Path, datasets_dir: Path) -> None:
    config, items = world(tmp_path, datasets_dir)
    out = tmp_path / "run"
    seen: list[tuple[str, GenRequest]] = []
    with pytest.raises(SamplerUnavailable, match="planner server"):
        evaluate(items, config, out=out, progress=False,
                 services=watching(seen, fail=lambda r: r.tag == f"{NAME}#round=2"))
    before = attempts(out)
    assert all(a["parent"] is not None for a in before)  # no episode verdict was made up
    assert {"p0.t0", "p0.t1", "p0.g0", "p0.g0.d"} <= {a["extra"]["step"] for a in before}

    seen.clear()
    summary = evaluate(items, config, out=out, resume=True, progress=False, services=watching(seen)).summary
    assert summary.solved == 2
    planner_tags = [r.tag for role, r in seen if role == "planner"]
    assert planner_tags == [f"{NAME}#round=2", f"{SHARED}#round=0"]  # recorded calls were not made again
    assert not any(r.tag == f"{NAME}_hbad" for role, r in seen if role == "prover")  # nor the failed hole's samples
    run = attempts(out)
    assert run[: len(before)] == before
    for kind in ("sketch", "subgoal"):
        outcome_steps = [a["extra"]["step"] for a in run if a["kind"] == kind and a["problem"] == NAME
                         and (kind == "sketch" or "outcome" in a["extra"])]
        assert len(outcome_steps) == len(set(outcome_steps)), kind
    slots = [(a["problem"], a["kind"], a["parent"], a["round"], a["sample_index"]) for a in run]
    assert len(slots) == len(set(slots))


def _planner_only(tmp_path: Path, datasets_dir: Path, replies: dict[int, str], **overrides: Any) -> ProverConfig:
    config, items = world(tmp_path, datasets_dir)
    script = write_jsonl(tmp_path / "planner-bad.jsonl", [
        {"name": NAME, "round": r, "completions": [text]} for r, text in replies.items()
    ])
    return config.with_overrides({"samplers.planner.script": script, "planner.max_sketches": 1, **overrides})


@pytest.mark.parametrize(
    ("replies", "reason"),
    [
        ({0: "I would use nlinarith.", 1: "Still no code."}, "no_lean_block"),
        ({0: "A sketch:\n```lean4\n  have hb : b * h = 195 := by sorry\n  linarith [hb]\n```",
          1: "Fixed:\n```lean4\n  have hb : b * h = 195 := by sorry\n  nlinarith [hb]\n```"}, "lean_error"),
        ({0: "I would use nlinarith."}, "the planner refused the request"),  # no reply scripted for call 1
    ],
)
def test_bad_planner_replies_are_a_failed_episode_with_its_reason(
    tmp_path: Path, datasets_dir: Path, replies: dict[int, str], reason: str
) -> None:
    config = _planner_only(tmp_path, datasets_dir, replies)
    items = world(tmp_path, datasets_dir)[1][:1]
    seen: list[tuple[str, GenRequest]] = []
    summary = evaluate(items, config, out=tmp_path / "run", progress=False, services=watching(seen)).summary
    assert summary.solved == 0 and summary.attempts == 1
    run = attempts(tmp_path / "run")
    top = next(a for a in run if a["parent"] is None)
    assert top["verdict"]["status"] == "failed" and top["verdict"]["rule"] == "planner:no_sketch"
    assert reason in top["verdict"]["detail"] and top["proof"] is None
    sketches = [a for a in run if a["kind"] == "sketch"]
    assert [a["extra"]["step"] for a in sketches] == ["p0.t0", "p0.t1"]
    repair = [r for role, r in seen if role == "planner"][1].messages[-1].content
    if reason == "lean_error":  # Lean's own error, with the line it points at, goes back to the planner
        assert "no scenario step" in repair and "at: `linarith [hb]`" in repair
    else:
        assert "no ```lean4 code block" in repair
    if reason.startswith("the planner refused"):
        assert sketches[1]["verdict"]["rule"] == "planner:request_refused" and sketches[1]["completion"] is None


def _scenario_with(tmp_path: Path, theorems: list[dict], steps: list[dict]) -> Path:
    data = yaml.safe_load(E2E_SCENARIO.read_text(encoding="utf-8"))
    by_name = {t["name"]: t for t in data["theorems"]}
    for extra in theorems:
        by_name.setdefault(extra["name"], {"name": extra["name"]}).setdefault("proofs", []).extend(extra["proofs"])
    by_name[NAME]["steps"].extend(steps)
    data["theorems"] = list(by_name.values())
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


HYPS = "b h v : ℝ\nh₀ : 0 < b ∧ 0 < h ∧ 0 < v\nh₁ : v = 1 / 3 * (b * h)\nh₂ : b = 30\nh₃ : h = 13 / 2"


def test_a_stitched_proof_the_checker_refuses_is_replanned_and_its_cache_entry_retracted(
    tmp_path: Path, datasets_dir: Path
) -> None:
    """`nlinarith [h₂, h₃]` proves the lemma `..._hb` but is no step in the hole: the stitched proof
    fails the full checker. The re-plan's `hb` finds that proof in the cache, its replay fails, it is
    retracted, and the next sample (`rw ..; norm_num`) works in the hole too."""
    scenario = _scenario_with(tmp_path, [{"name": f"{NAME}_hb", "proofs": [{"body": "nlinarith [h₂, h₃]"}]}], [])
    _, items = world(tmp_path, datasets_dir)
    planner = write_jsonl(tmp_path / "planner2.jsonl", [{"name": NAME, "round": r, "completions": [reply(items[0], GOOD_BODY)]}
                                                        for r in (0, 2)])
    hb = [lemma_proof(f"{NAME}_hb", "b * h = 195", "  nlinarith [h₂, h₃]"),
          lemma_proof(f"{NAME}_hb", "b * h = 195", "  rw [h₂, h₃]\n  norm_num")]
    prover = write_jsonl(tmp_path / "prover2.jsonl", [*prover_lines()[3:], {"name": f"{NAME}_hb", "completions": hb}])
    config = sim_config(tmp_path, planner, prover, **{"lean.repl_cmd": repl_cmd(scenario), "planner.subgoal_passes": 1})
    summary = evaluate(items[:1], config, out=tmp_path / "run", progress=False).summary
    assert summary.solved == 1
    run = attempts(tmp_path / "run")
    stitched = [a for a in run if a["kind"] == "stitched"]
    assert len(stitched) == 1 and stitched[0]["verdict"]["rule"] == "lean_error"
    assert "nlinarith [h₂, h₃]" in stitched[0]["proof"]
    second_hb = [a for a in run if a["kind"] == "subgoal" and a["extra"]["step"] == "p1.g0"]
    assert [a["extra"]["method"] for a in second_hb] == ["lemma"]  # the stale cache entry was not used
    assert "rw [h₂, h₃]" in second_hb[0]["proof"]
    top = next(a for a in run if a["parent"] is None)
    assert top["verdict"]["rule"] == "accepted" and "nlinarith" not in top["proof"]


def test_a_hole_the_prover_cannot_prove_is_decomposed_and_its_lemma_proof_stitched(
    tmp_path: Path, datasets_dir: Path
) -> None:
    hv_hyps = f"{HYPS}\nhb : b * h = 195"
    scenario = _scenario_with(
        tmp_path,
        [{"name": f"{NAME}_hv_hvb", "proofs": [{"body": "exact h₁"}]}],
        [{"from": [f"{hv_hyps}\n⊢ v = 1 / 3 * (b * h)"], "tactic": "exact h₁", "to": []},
         {"from": [f"{hv_hyps}\nhvb : v = 1 / 3 * (b * h)\n⊢ v = 1 / 3 * 195"], "tactic": "rw [hvb, hb]", "to": []}],
    )
    _, items = world(tmp_path, datasets_dir)
    lemma = ("theorem mathd_algebra_478_hv (b h v : ℝ) (h₀ : 0 < b ∧ 0 < h ∧ 0 < v) (h₁ : v = 1 / 3 * (b * h))\n"
             "    (h₂ : b = 30) (h₃ : h = 13 / 2) (hb : b * h = 195) : v = 1 / 3 * 195 := by\n"
             "  have hvb : v = 1 / 3 * (b * h) := by sorry\n  rw [hvb, hb]")
    planner = write_jsonl(tmp_path / "planner3.jsonl", [
        {"name": NAME, "round": 0, "completions": [reply(items[0], GOOD_BODY)]},
        {"name": f"{NAME}_hv", "round": 0, "completions": [code_reply(lemma)]},
    ])
    prover = write_jsonl(tmp_path / "prover3.jsonl", [
        prover_lines()[2],
        {"name": f"{NAME}_hv", "completions": [lemma_proof(f"{NAME}_hv", "v = 1 / 3 * 195", "  simp")]},
        {"name": f"{NAME}_hv_hvb", "completions": [lemma_proof(f"{NAME}_hv_hvb", "v = 1 / 3 * (b * h)", "  exact h₁")]},
    ])
    config = sim_config(tmp_path, planner, prover, **{"lean.repl_cmd": repl_cmd(scenario), "planner.subgoal_passes": 1})
    summary = evaluate(items[:1], config, out=tmp_path / "run", progress=False).summary
    assert summary.solved == 1 and summary.peaks == {"depth reached": 1}
    assert summary.tallies["decompositions"] == 1 and summary.tallies["subgoals proven"] == 3
    run = attempts(tmp_path / "run")
    outcomes = {a["extra"]["step"]: a["extra"]["outcome"] for a in run if "outcome" in a["extra"]}
    assert outcomes["p0.g1"]["proved"] is False and outcomes["p0.g1.d"]["proved"] is True
    assert outcomes["p0.g1/p0.g0"]["method"] == "lemma"  # the decomposition's own hole
    lemma_check = next(a for a in run if a["kind"] == "stitched")
    assert lemma_check["verdict"]["rule"] == "accepted" and lemma_check["extra"]["depth"] == 1
    top = next(a for a in run if a["parent"] is None)
    assert top["verdict"]["rule"] == "accepted"
    assert "have hvb : v = 1 / 3 * (b * h) := by exact h₁" in top["proof"]


def test_best_first_sub_provers_search_from_the_holes_proof_states(tmp_path: Path, datasets_dir: Path) -> None:
    _, items = world(tmp_path, datasets_dir)
    planner = write_jsonl(tmp_path / "planner4.jsonl", [{"name": NAME, "completions": [reply(items[0], GOOD_BODY)]}])
    tactic = lambda text, lp: {"text": text, "cumulative_logprob": lp}  # noqa: E731
    prover = write_jsonl(tmp_path / "prover4.jsonl", [
        {"name": f"{NAME}_hb", "completions": [tactic("rw [h₂, h₃]", -0.1), tactic("norm_num", -0.2)]},
        {"name": f"{NAME}_hv", "completions": [tactic("rw [h₁, hb]", -0.1)]},
    ])
    config = sim_config(tmp_path, planner, prover, **{"planner.subgoal_strategy": "bfs", "planner.subgoal_passes": 1,
                                                      "bfs.width": 2, "bfs.max_expansions": 4})
    with Prover(config) as prover_api:
        result = prover_api.prove(items[0])
    assert result.proved and result.verdict is not None and result.verdict.rule == "accepted"
    subgoals = [a for a in result.attempts if a.kind == "subgoal"]
    assert {a.extra["method"] for a in subgoals} == {"search"}
    assert sorted(a.proof for a in subgoals) == ["rw [h₁, hb]", "rw [h₂, h₃]\nnorm_num"]
    assert all(a.verdict.rule == "subgoal:tactic_mode" for a in subgoals)
    sketches = [a for a in result.attempts if a.kind == "sketch"]
    assert len(sketches) == 1 and json.loads(json.dumps(sketches[0].extra))["elaborated"] is True


def test_a_lean_crash_is_no_failed_episode_and_resume_redoes_the_episode(tmp_path: Path, datasets_dir: Path) -> None:
    """The false-claim sketch crashes the REPL every time (after the checker's own retries): the
    episode's verdict is an infrastructure ERROR, pass@k is marked a lower bound, and the resumed
    run redoes the episode (its nested records superseded) instead of counting a failure."""
    data = yaml.safe_load(E2E_SCENARIO.read_text(encoding="utf-8"))
    data["faults"] = {"crash_on": ["hbad :"]}
    crashing = tmp_path / "crashing.yaml"
    crashing.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    config, items = world(tmp_path, datasets_dir, **{"lean.repl_cmd": repl_cmd(crashing), "lean.retries": 1})
    out = tmp_path / "run"
    first = evaluate(items[:1], config, out=out, progress=False).summary
    assert first.solved == 0 and first.errors == 1 and first.pass_at_k_is_lower_bound
    top = next(a for a in attempts(out) if a["parent"] is None)
    assert (top["verdict"]["status"], top["verdict"]["rule"]) == ("error", "planner:infrastructure")

    healthy = config.with_overrides({"lean.repl_cmd": repl_cmd(E2E_SCENARIO)})
    again = evaluate(items[:1], healthy, out=out, resume=True, progress=False).summary
    assert again.solved == 1 and again.errors == 0 and again.errors_retried == 1
    latest = [a for a in attempts(out) if a["parent"] is None][-1]
    assert latest["revision"] == 1 and latest["verdict"]["rule"] == "accepted"
