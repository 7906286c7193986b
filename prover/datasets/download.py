"""Fill the user cache with benchmark files from their public sources on first use.

Only sources that are single JSONL files are fetched (miniF2F and ProofNet, pinned to the
commits named in `../shared/datasets/README.md`) and converted to the uniform schema. The other
benchmarks are built from whole `.lean` file trees; for them the error tells the user to point
`--data-dir` at a prepared folder. Downloads go through urllib only and write atomically.
"""

from __future__ import annotations

import difflib
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prover.datasets.loaders import STATEMENT_END, write_jsonl
from prover.errors import DataError

log = logging.getLogger(__name__)

DSV15_REPO = "deepseek-ai/DeepSeek-Prover-V1.5"
DSV15_COMMIT = "2c4ba9119eef74d0d611f494261b2c5bae98c69a"
GOEDEL_REPO = "Goedel-LM/Goedel-Prover-V2"
GOEDEL_COMMIT = "2e9036e118464aa96a8bebaf9f5b9d091aa3585c"
PROOFNET_REPO = "zhangir-azerbayev/ProofNet"
PROOFNET_COMMIT = "509ad79710ed4f46ff5c282ed5640c1aa9ac3f30"
LEAN_VERSION_DSV15 = "v4.9.0"
TIMEOUT_SECONDS = 60.0

Fetch = Callable[[str], bytes]


def raw_url(repo: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def fetch_url(url: str) -> bytes:
    """GET one URL; any network failure becomes a DataError naming the URL."""
    request = urllib.request.Request(url, headers={"User-Agent": "prover-datasets"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"cannot download {url}: {reason}") from exc


def parse_jsonl_bytes(data: bytes, what: str) -> list[dict[str, Any]]:
    """Rows of a downloaded JSONL file; anything else (an HTML error page, ...) is a DataError."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{what}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{what}:{lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{what}:{lineno}: expected a JSON object")
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# Converters (pure functions: tested on small synthetic files)
# ---------------------------------------------------------------------------------------------


def strip_docstring(prefix: str | None) -> str | None:
    """`/-- text -/` -> `text` (None for an empty docstring)."""
    if not prefix:
        return None
    text = prefix.strip()
    if text.startswith("/--"):
        text = text[3:]
    if text.endswith("-/"):
        text = text[:-2]
    return text.strip() or None


def finish_statement(statement: str, where: str) -> str:
    """Trim trailing whitespace and make the statement end in exactly `:= by`."""
    text = statement.rstrip()
    if text.endswith(STATEMENT_END):
        return text
    if text.endswith(":="):
        return text + " by"
    raise DataError(f"{where}: formal_statement does not end with ':=' or ':= by'")


def convert_dsv15(rows: Iterable[dict[str, Any]], *, source: str) -> list[dict[str, Any]]:
    """DeepSeek-Prover-V1.5 `datasets/*.jsonl` (name, split, informal_prefix, formal_statement,
    goal, header) -> uniform schema. `informal_proof` is not in this format and stays null."""
    out = []
    for index, row in enumerate(rows, start=1):
        where = f"{source}:{index}"
        for key in ("name", "split", "formal_statement", "header"):
            if not isinstance(row.get(key), str):
                raise DataError(f"{where}: DS-Prover-V1.5 row lacks string key {key!r}")
        out.append(
            {
                "name": row["name"],
                "split": row["split"],
                "header": row["header"],
                "formal_statement": finish_statement(row["formal_statement"], where),
                "informal_statement": strip_docstring(row.get("informal_prefix")),
                "informal_proof": None,
                "source": source,
                "lean_version": LEAN_VERSION_DSV15,
            }
        )
    return out


def convert_goedel(rows: Iterable[dict[str, Any]], *, source: str) -> list[dict[str, Any]]:
    """Goedel-Prover-V2 `dataset/minif2f.jsonl`: `formal_statement` holds header + docstring +
    statement; the header is the text before the docstring (or before the theorem)."""
    out = []
    for index, row in enumerate(rows, start=1):
        where = f"{source}:{index}"
        for key in ("name", "formal_statement"):
            if not isinstance(row.get(key), str):
                raise DataError(f"{where}: Goedel-Prover-V2 row lacks string key {key!r}")
        full = row["formal_statement"]
        prefix = row.get("informal_prefix") or ""
        cut = full.find(prefix) if prefix else -1
        if cut >= 0:
            header, statement = full[:cut], full[cut + len(prefix) :]
        else:
            start = full.find("theorem ")
            if start < 0:
                raise DataError(f"{where}: no 'theorem' in formal_statement")
            header, statement = full[:start], full[start:]
        out.append(
            {
                "name": row["name"],
                "split": row.get("split") or "test",
                "header": header,
                "formal_statement": finish_statement(statement.lstrip("\n"), where),
                "informal_statement": strip_docstring(prefix),
                "informal_proof": None,
                "source": source,
                "lean_version": LEAN_VERSION_DSV15,
            }
        )
    return out


def proofnet_id_to_name(proofnet_id: str) -> str:
    """`Dummit-Foote|exercise_1_1_2a` -> `Dummit_Foote_exercise_1_1_2a`."""
    return proofnet_id.replace("|", "_").replace("-", "_")


def attach_proofnet_names(
    rows: list[dict[str, Any]], originals: dict[str, list[dict[str, Any]]], *, source: str
) -> list[dict[str, Any]]:
    """Give DS-V1.5 ProofNet rows their unique ProofNet ids and informal proofs.

    DS-V1.5 reuses bare exercise names across books, so each row is matched to the original
    entry of the same split with the same exercise id and the most similar informal statement.
    """
    out = []
    for index, row in enumerate(rows, start=1):
        candidates = [
            entry
            for entry in originals.get(row["split"], [])
            if str(entry.get("id", "")).partition("|")[2] == row["name"]
        ]
        if not candidates:
            raise DataError(f"{source}:{index}: no ProofNet entry for {row['name']!r} in split {row['split']!r}")
        statement = row.get("informal_statement") or ""
        best = max(
            candidates,
            key=lambda e: difflib.SequenceMatcher(None, statement, str(e.get("nl_statement", "")).strip()).ratio(),
        )
        proof = best.get("nl_proof")
        out.append({**row, "name": proofnet_id_to_name(best["id"]), "informal_proof": proof or None})
    names = [r["name"] for r in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(f"{source}: ProofNet matching gave duplicate names: {', '.join(duplicates[:5])}")
    return out


def split_rows(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_split: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_split.setdefault(row["split"], []).append(row)
    return by_split


# ---------------------------------------------------------------------------------------------
# Downloaders: fetch, convert, write every file of the benchmark into `target`
# ---------------------------------------------------------------------------------------------


def download_minif2f(target: Path, fetch: Fetch = fetch_url) -> list[Path]:
    """minif2f_valid / minif2f_test_dsv15 (DS-V1.5) and minif2f_test (Goedel-V2)."""
    ds_path = "datasets/minif2f.jsonl"
    ds_source = f"{DSV15_REPO}@{DSV15_COMMIT} {ds_path}"
    ds_rows = convert_dsv15(
        parse_jsonl_bytes(fetch(raw_url(DSV15_REPO, DSV15_COMMIT, ds_path)), ds_source), source=ds_source
    )
    goedel_path = "dataset/minif2f.jsonl"
    goedel_source = f"{GOEDEL_REPO}@{GOEDEL_COMMIT} {goedel_path}"
    goedel_rows = convert_goedel(
        parse_jsonl_bytes(fetch(raw_url(GOEDEL_REPO, GOEDEL_COMMIT, goedel_path)), goedel_source),
        source=goedel_source,
    )
    by_split = split_rows(ds_rows)
    files = {
        "minif2f_valid.jsonl": by_split.get("valid", []),
        "minif2f_test_dsv15.jsonl": by_split.get("test", []),
        "minif2f_test.jsonl": goedel_rows,
    }
    return _write_all(target, files)


def download_proofnet(target: Path, fetch: Fetch = fetch_url) -> list[Path]:
    """proofnet_valid / proofnet_test from DS-V1.5, named after the original ProofNet ids."""
    ds_path = "datasets/proofnet.jsonl"
    ds_source = f"{DSV15_REPO}@{DSV15_COMMIT} {ds_path}"
    rows = convert_dsv15(
        parse_jsonl_bytes(fetch(raw_url(DSV15_REPO, DSV15_COMMIT, ds_path)), ds_source), source=ds_source
    )
    originals = {
        split: parse_jsonl_bytes(
            fetch(raw_url(PROOFNET_REPO, PROOFNET_COMMIT, f"benchmark/{split}.jsonl")),
            f"{PROOFNET_REPO} benchmark/{split}.jsonl",
        )
        for split in ("valid", "test")
    }
    by_split = split_rows(attach_proofnet_names(rows, originals, source=ds_source))
    files = {"proofnet_valid.jsonl": by_split.get("valid", []), "proofnet_test.jsonl": by_split.get("test", [])}
    return _write_all(target, files)


DOWNLOADERS: dict[str, Callable[..., list[Path]]] = {
    "minif2f": download_minif2f,
    "proofnet": download_proofnet,
}


def download(key: str, target: Path, fetch: Fetch = fetch_url) -> list[Path]:
    """Run one downloader; failures are DataErrors that say how to work offline."""
    log.info("downloading benchmark %s into %s", key, target)
    try:
        return DOWNLOADERS[key](target, fetch)
    except DataError as exc:
        raise DataError(
            f"benchmark {key!r} is not in the cache {target} and downloading it failed: {exc}. "
            "If you are offline, pass --data-dir DIR (or set PROVER_DATA_DIR) to a folder "
            "with the benchmark files (e.g. a copy of the shared datasets folder)"
        ) from exc


def _write_all(target: Path, files: dict[str, list[dict[str, Any]]]) -> list[Path]:
    empty = [name for name, rows in files.items() if not rows]
    if empty:
        raise DataError(f"downloaded data yielded no problems for {', '.join(empty)}")
    written = []
    for name, rows in files.items():
        path = target / name
        write_jsonl(rows, path)
        written.append(path)
    return written
