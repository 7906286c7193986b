"""How much does sharing one vLLM engine between concurrent callers buy?

On the tiny random-weight Llama (prover.llm.tiny_model; a test model, not a prover), requests
(`--requests` callers, each asking for `--n` samples of its own prompt) are sent through one
VllmSampler all at once (continuous batching), and the first `--sequential` of them one at a
time (a rate per request, which does not depend on how many are timed; one at a time is what
takes long). Both passes use the same seeds, so a request generates the same tokens in both;
the ratio of token rates is `batching_gain` (best of `--repeats` passes each, after a warm-up).

    python benchmarks/bench_sampler.py                       # < 1 minute on 2 CPU cores
    python benchmarks/bench_sampler.py --max-tokens 128 --requests 128 --sequential 128

The last line is `batching_gain=... concurrent_tok_s=... sequential_tok_s=... requests=... n=...`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")

from prover.config import user_cache_dir  # noqa: E402
from prover.llm.tiny_model import build_tiny_model, tiny_sampler_config  # noqa: E402
from prover.llm.vllm_backend import VllmSampler  # noqa: E402
from prover.types import GenRequest, GenResult  # noqa: E402

PROMPT = "theorem add_zero_right (n : Nat) : n + 0 = n := by\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=64, help="concurrent callers")
    parser.add_argument("--n", type=int, default=8, help="samples per request")
    parser.add_argument("--max-tokens", type=int, default=64,
                        help="tokens per sample (proofs are long; 64 keeps the run under a minute)")
    parser.add_argument("--max-num-seqs", type=int, default=512,
                        help="engine batch limit (sequences in flight)")
    parser.add_argument("--sequential", type=int, default=8,
                        help="requests of the one-at-a-time pass (the first ones of the concurrent pass)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="measure each mode this many times; report the best")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="where the tiny model is built/cached (default: user cache dir)")
    return parser.parse_args(argv)


def make_requests(count: int, n: int, max_tokens: int) -> list[GenRequest]:
    return [
        GenRequest(prompt=f"{PROMPT}  -- caller {i}\n", n=n, max_tokens=max_tokens, seed=i,
                   temperature=1.0, top_p=1.0)
        for i in range(count)
    ]


def tokens(results: list[GenResult]) -> int:
    return sum(r.completion_tokens for r in results)


async def run(args: argparse.Namespace) -> str:
    model_dir = build_tiny_model(args.model_dir or user_cache_dir() / "tiny-model")
    sampler = VllmSampler(tiny_sampler_config(model_dir, max_num_seqs=args.max_num_seqs))
    requests = make_requests(args.requests, args.n, args.max_tokens)
    concurrent: list[float] = []
    sequential: list[float] = []
    try:
        await sampler.start()
        # warm-up: the first batch of each shape pays one-time allocation costs, so the engine
        # sees the full concurrent load once before it is timed
        await asyncio.gather(*(sampler.generate(r) for r in requests))
        await sampler.generate(requests[0])
        for _ in range(args.repeats):
            started = time.perf_counter()
            together = await asyncio.gather(*(sampler.generate(r) for r in requests))
            concurrent.append(tokens(together) / (time.perf_counter() - started))

            started = time.perf_counter()
            one_by_one = [await sampler.generate(r) for r in requests[: args.sequential]]
            sequential.append(tokens(one_by_one) / (time.perf_counter() - started))
    finally:
        await sampler.close()

    # best of the repeats: the machine is shared, interference only ever slows a pass down
    concurrent_tok_s, sequential_tok_s = max(concurrent), max(sequential)
    return (
        f"batching_gain={concurrent_tok_s / sequential_tok_s:.2f} "
        f"concurrent_tok_s={concurrent_tok_s:.0f} sequential_tok_s={sequential_tok_s:.0f} "
        f"requests={args.requests} sequential={min(args.sequential, args.requests)} n={args.n} "
        f"max_tokens={args.max_tokens} repeats={args.repeats}"
    )


def main(argv: list[str] | None = None) -> int:
    line = asyncio.run(run(parse_args(argv)))
    sys.stderr.flush()
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
