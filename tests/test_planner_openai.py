"""The planner and the prover served by two different OpenAI-compatible HTTP servers (127.0.0.1),
with the SIMULATED REPL: a hosted reasoning model plans, a local prover proves the holes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from planner_world import GOOD_BODY, NAME, lemma_proof, reply, sim_config, world
from test_llm_openai import FakeOpenAIServer

from prover.api import evaluate
from prover.planner.prompts import DEFAULT_SYSTEM


class ChatServer(FakeOpenAIServer):
    """Answers chat requests with `answer(messages)`."""

    def __init__(self, answer: Any) -> None:
        super().__init__()
        self.answer = answer

    def success(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        text = self.answer(body["messages"])
        choices = [{"index": i, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                   for i in range(body.get("n", 1))]
        return {"id": "x", "object": "chat.completion", "choices": choices,
                "usage": {"prompt_tokens": 11, "completion_tokens": 22, "total_tokens": 33}}


LEMMAS = {
    f"theorem {NAME}_hb": lemma_proof(f"{NAME}_hb", "b * h = 195", "  rw [h₂, h₃]\n  norm_num"),
    f"theorem {NAME}_hv": lemma_proof(f"{NAME}_hv", "v = 1 / 3 * 195", "  rw [h₁, hb]"),
}


def test_planner_and_prover_on_two_openai_servers(tmp_path: Path, datasets_dir: Path) -> None:
    _, items = world(tmp_path, datasets_dir)
    problem = items[0]
    planner = ChatServer(lambda messages: reply(problem, GOOD_BODY)).start()

    def prove(messages: list[dict[str, str]]) -> str:
        prompt = messages[-1]["content"]
        return next(proof for statement, proof in LEMMAS.items() if statement in prompt)

    prover = ChatServer(prove).start()
    try:
        config = sim_config(tmp_path, tmp_path / "unused", tmp_path / "unused", **{
            "sampler.backend": "openai", "sampler.base_url": prover.base_url, "sampler.script": None,
            "sampler.max_retries": 0, "samplers.planner": {"backend": "openai", "base_url": planner.base_url,
                                                           "model": "hosted/reasoner", "script": None},
        })
        summary = evaluate([problem], config, out=tmp_path / "run", progress=False).summary
    finally:
        planner.stop()
        prover.stop()
    assert summary.solved == 1 and summary.tallies["subgoals proven"] == 2
    assert len(planner.requests) == 1 and len(prover.requests) == 2  # one sketch; one request (n=2) per hole
    asked = planner.requests[0]["body"]
    assert asked["model"] == "hosted/reasoner" and asked["messages"][0]["content"] == DEFAULT_SYSTEM
    assert all(r["body"]["model"] == "test/prover" for r in prover.requests)
    assert all(DEFAULT_SYSTEM not in str(r["body"]["messages"]) for r in prover.requests)
    assert summary.tokens["prompt"] == 11 * 3  # the episode's cost adds up both servers' usage
