"""Parquet schemas of trajectory rows: what `prover collect` writes and what SFT/RL trainers read.

Two layouts: step rows (one tactic application of a search tree, or of a LeanDojo trace) and
attempt rows (a sampled proof, sketch or subgoal attempt with its prompt, completion and
verdict, and its `Attempt.extra` as a JSON string). Shards are named by row kind: `steps`,
`proofs` (top-level attempts) or the attempt kind of nested ones (`sketch`, `subgoal`, ...), which
use the attempt layout.
"""

from __future__ import annotations

from typing import Any

PROOF_ROWS = "proofs"
"""Row kind of top-level attempts with a completion; nested attempts use their attempt kind."""
STEP_ROWS = "steps"
"""Row kind of search-tree (or traced) tactic steps."""


def arrow_schema(kind: str) -> Any:
    """Parquet schema of a row kind: search steps, or attempt rows (every other kind)."""
    return arrow_schemas()[STEP_ROWS if kind == STEP_ROWS else PROOF_ROWS]


def arrow_schemas() -> dict[str, Any]:
    import pyarrow as pa

    return {
        PROOF_ROWS: pa.schema(
            [
                ("problem", pa.string()),
                ("benchmark", pa.string()),
                ("kind", pa.string()),
                ("parent", pa.int64()),
                ("attempt", pa.int64()),
                ("round", pa.int64()),
                ("prompt", pa.string()),
                ("completion", pa.string()),
                ("proof", pa.string()),
                ("status", pa.string()),
                ("rule", pa.string()),
                ("errors", pa.list_(pa.string())),
                ("duplicate_of", pa.int64()),
                ("prompt_tokens", pa.int64()),
                ("completion_tokens", pa.int64()),
                ("cumulative_logprob", pa.float64()),
                ("token_logprobs", pa.list_(pa.float64())),
                ("extra", pa.string()),
            ]
        ),
        STEP_ROWS: pa.schema(
            [
                ("problem", pa.string()),
                ("attempt", pa.int64()),
                ("state", pa.string()),
                ("tactic", pa.string()),
                ("logprob", pa.float64()),
                ("outcome", pa.string()),
                ("next_state", pa.string()),
                ("on_proof_path", pa.bool_()),
                ("depth", pa.int64()),
            ]
        ),
    }
