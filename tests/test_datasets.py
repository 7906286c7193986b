"""Benchmark registry, loaders, lean-file problems, download converters and offline errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from prover.datasets import benchmark_extra_axioms, list_benchmarks, load_benchmark
from prover.datasets import download as dl
from prover.datasets.lean_files import load_lean_path, parse_lean_text
from prover.datasets.loaders import read_jsonl
from prover.datasets.registry import minif2f_category, proofnet_category, putnam_category
from prover.errors import DataError

SHARED = Path(os.environ.get("PROVER_SHARED_DIR") or Path(__file__).resolve().parents[1].parent / "shared")
DATA = SHARED / "datasets"

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared datasets not found at {DATA}")

# (benchmark, split) -> count, from the table in shared/datasets/README.md
EXPECTED = {
    ("minif2f", "valid"): 244,
    ("minif2f", "test"): 244,
    ("minif2f-dsv15", "test"): 244,
    ("minif2f-lean4.24", "valid"): 244,
    ("minif2f-lean4.24", "test"): 244,
    ("proofnet", "valid"): 185,
    ("proofnet", "test"): 186,
    ("leangeo", "test"): 122,
    ("putnambench", "test"): 672,
    ("core-smoke", "valid"): 15,
    ("core-smoke", "test"): 15,
}


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PROVER_DATA_DIR", raising=False)
    monkeypatch.setenv("PROVER_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.parametrize(("benchmark", "split"), sorted(EXPECTED))
def test_every_shared_file_loads_with_readme_counts(benchmark: str, split: str) -> None:
    problems = load_benchmark(benchmark, split=split, data_dir=DATA)
    assert len(problems) == EXPECTED[(benchmark, split)]
    assert {p.split for p in problems} == {split}
    assert {p.benchmark for p in problems} == {benchmark}
    assert len({p.name for p in problems}) == len(problems)
    assert all(p.formal_statement.endswith(":= by") for p in problems)


def test_every_file_in_the_shared_folder_is_registered() -> None:
    from prover.datasets.registry import REGISTRY

    registered = {f for spec in REGISTRY.values() for f in spec.files.values()}
    assert registered == {p.name for p in DATA.glob("*.jsonl")}


def test_default_splits_and_all() -> None:
    test = load_benchmark("minif2f", data_dir=DATA)
    assert len(test) == 244 and test[0].split == "test"
    assert test[0].source.startswith("Goedel-LM/Goedel-Prover-V2")  # the rectified test set
    assert len(load_benchmark("proofnet", data_dir=DATA)) == 186
    assert len(load_benchmark("proofnet", split="all", data_dir=DATA)) == 371
    assert len(load_benchmark("core-smoke", data_dir=DATA)) == 30
    with pytest.raises(DataError, match="no split 'valid'.*available: test"):
        load_benchmark("putnambench", split="valid", data_dir=DATA)


def test_data_dir_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVER_DATA_DIR", str(DATA))
    assert len(load_benchmark("leangeo")) == 122


def test_names_and_limit_filters() -> None:
    picked = load_benchmark("minif2f", data_dir=DATA, names=["mathd_algebra_478", "aime_1983_p1"])
    assert [p.name for p in picked] == ["mathd_algebra_478", "aime_1983_p1"]  # file order
    assert len(load_benchmark("minif2f", data_dir=DATA, limit=5)) == 5
    assert load_benchmark("minif2f", data_dir=DATA, limit=0) == []
    with pytest.raises(DataError, match="no problem named nope"):
        load_benchmark("minif2f", data_dir=DATA, names=["mathd_algebra_478", "nope"])


def test_categories() -> None:
    cats = {p.category for p in load_benchmark("minif2f", data_dir=DATA)}
    assert cats == {"mathd_algebra", "mathd_numbertheory", "amc12", "aime", "imo", "induction", "algebra", "numbertheory"}
    geo = load_benchmark("leangeo", data_dir=DATA)
    assert sum(p.category == "IMO_00+" for p in geo) == 43
    assert sum(p.category == "trans_result_Evan" for p in geo) == 19
    books = {p.category for p in load_benchmark("proofnet", data_dir=DATA)}
    assert {"Rudin", "Dummit_Foote", "Ireland_Rosen", "Shakarchi"} <= books
    putnam = load_benchmark("putnambench", data_dir=DATA)
    assert putnam[0].category == "1960s" and None not in {p.category for p in putnam}
    assert minif2f_category("aimeII_2001_p3") == "aime" and minif2f_category("imosl_2007_algebra_p6") == "imo"
    assert proofnet_category("Dummit_Foote_exercise_1_1_2a") == "Dummit_Foote"
    assert putnam_category("putnam_2025_a3") == "2020s" and putnam_category("other") is None


def test_unknown_benchmark_and_extra_axioms() -> None:
    with pytest.raises(DataError, match="unknown benchmark 'minif3f'.*minif2f"):
        load_benchmark("minif3f", data_dir=DATA)
    assert "SMT_VERIF" in benchmark_extra_axioms("leangeo")
    assert benchmark_extra_axioms("minif2f") == ()
    assert benchmark_extra_axioms("jsonl:/x.jsonl") == ()
    assert {"minif2f", "proofnet", "putnambench", "leangeo"} <= set(list_benchmarks())


def test_missing_file_in_data_dir_names_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"proofnet_test.jsonl, which is not in {tmp_path}"):
        load_benchmark("proofnet", data_dir=tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_benchmark("proofnet", data_dir=tmp_path / "missing")


# ---------------------------------------------------------------------------------------------
# jsonl:
# ---------------------------------------------------------------------------------------------


def _row(name: str, **extra: object) -> dict[str, object]:
    return {"name": name, "split": "test", "header": "", "formal_statement": f"theorem {name} : True := by",
            "informal_statement": None, "informal_proof": None, "source": "", "lean_version": None, **extra}


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_loader(tmp_path: Path) -> None:
    path = _write(tmp_path / "mine.jsonl", [json.dumps(_row("a")), "", json.dumps(_row("b", split="valid"))])
    problems = load_benchmark(f"jsonl:{path}")
    assert [p.name for p in problems] == ["a", "b"]
    assert problems[0].benchmark == f"jsonl:{path}"
    assert [p.name for p in load_benchmark(f"jsonl:{path}", split="valid")] == ["b"]
    minimal = _write(tmp_path / "min.jsonl", [json.dumps({"name": "m", "formal_statement": "theorem m : True := by"})])
    assert load_benchmark(f"jsonl:{minimal}")[0].split == "test"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 2: not valid JSON|:2: not valid JSON"),
        (json.dumps({"name": "x"}), ":2: missing key 'formal_statement'"),
        (json.dumps(_row("x", header=3)), ":2: key 'header' must be a string"),
        (json.dumps(_row("x", informal_statement=["a"])), ":2: key 'informal_statement' must be a string or null"),
        (json.dumps(_row("x", formal_statement="theorem x : True := sorry")), ":2: 'formal_statement' of 'x' must end"),
        (json.dumps(_row("a")), r":2: duplicate problem name 'a' in split 'test' \(first at line 1\)"),
        ("[1, 2]", ":2: expected a JSON object"),
    ],
)
def test_bad_jsonl_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = _write(tmp_path / "bad.jsonl", [json.dumps(_row("a")), line])
    with pytest.raises(DataError, match=message) as info:
        read_jsonl(path)
    assert str(path) in str(info.value)


def test_missing_and_empty_jsonl(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_benchmark(f"jsonl:{tmp_path / 'nope.jsonl'}")
    with pytest.raises(DataError, match="holds no problems"):
        load_benchmark(f"jsonl:{_write(tmp_path / 'empty.jsonl', [''])}")


# ---------------------------------------------------------------------------------------------
# lean:
# ---------------------------------------------------------------------------------------------

LEAN_FILE = """import Mathlib
open Real

/- theorem in_comment : False := by sorry -/
def helper (n : Nat) : Nat := n + 1

lemma proved (n : Nat) : helper n = n + 1 := by
  rfl

/-- The first one. -/
theorem first (a b : Nat) (h : a = b) :
    b = a := by
  sorry

-- a line comment mentioning theorem fake : False := sorry
theorem second
(x : ℝ)
(hx : 0 < x)
: 0 < x ^ 2 := sorry

@[simp]
lemma third : (1 : Nat) + 1 = 2 := by sorry  -- trailing comment

theorem partial_proof : True := by
  trivial

example : True := by sorry
"""


def test_lean_file_problems(tmp_path: Path) -> None:
    path = tmp_path / "Problems.lean"
    path.write_text(LEAN_FILE, encoding="utf-8")
    problems = load_benchmark(f"lean:{path}")
    assert [p.name for p in problems] == ["first", "second", "third"]
    first, second, third = problems
    assert first.formal_statement == "theorem first (a b : Nat) (h : a = b) :\n    b = a := by"
    assert first.informal_statement == "The first one."
    assert first.header.startswith("import Mathlib\nopen Real\n") and "lemma proved" in first.header
    assert "/-- The first one" not in first.header
    assert second.formal_statement == "theorem second\n(x : ℝ)\n(hx : 0 < x)\n: 0 < x ^ 2 := by"
    assert "theorem first" in second.header  # earlier declarations stay in the header
    assert third.formal_statement == "@[simp]\nlemma third : (1 : Nat) + 1 = 2 := by"
    assert third.theorem_name == "third"
    assert first.source == f"{path}:11" and first.benchmark == f"lean:{path}"
    # the checked file is header + statement + proof: the statement starts where the header ends
    assert LEAN_FILE.startswith(first.header)


def test_lean_folder_with_name_clashes_and_categories(tmp_path: Path) -> None:
    (tmp_path / "algebra").mkdir()
    (tmp_path / ".lake" / "x").mkdir(parents=True)
    (tmp_path / "A.lean").write_text("theorem main : 1 = 1 := by sorry\ntheorem only_a : True := by sorry\n")
    (tmp_path / "algebra" / "B.lean").write_text("import Mathlib\n\ntheorem main : 2 = 2 := by\n  sorry\n")
    (tmp_path / ".lake" / "x" / "C.lean").write_text("theorem ignored : True := by sorry\n")
    problems = load_benchmark(f"lean:{tmp_path}", limit=None)
    assert [p.name for p in problems] == ["A.main", "only_a", "B.main"]
    assert [p.category for p in problems] == [None, None, "algebra"]
    assert problems[2].header == "import Mathlib\n\n"
    assert [p.name for p in load_benchmark(f"lean:{tmp_path}", names=["only_a"])] == ["only_a"]


def test_lean_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="lean path not found"):
        load_lean_path(tmp_path / "missing.lean")
    with pytest.raises(DataError, match="no .lean files"):
        load_lean_path(tmp_path)
    (tmp_path / "Done.lean").write_text("theorem done : True := by trivial\n")
    with pytest.raises(DataError, match="no theorem or lemma ending in `sorry`"):
        load_lean_path(tmp_path)


def test_theorems_inside_strings_are_not_problems() -> None:
    assert parse_lean_text('def s := "theorem t : True := by sorry"\n', path="x") == []


# ---------------------------------------------------------------------------------------------
# Download: converters on DS-Prover-V1.5-format data, offline error
# ---------------------------------------------------------------------------------------------

HEADER = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 0\n\nopen BigOperators Real Nat Topology Rat\n\n"
# The first two lines of DeepSeek-Prover-V1.5 datasets/minif2f.jsonl (valid split).
DSV15_MINIF2F = [
    {"name": "amc12a_2019_p21", "split": "valid",
     "informal_prefix": "/-- Let $z=\\frac{1+i}{\\sqrt{2}}.$What is $\\left(z^{1^2}+z^{2^2}+z^{3^2}+\\dots+z^{{12}^2}\\right) \\cdot \\left(\\frac{1}{z^{1^2}}+\\frac{1}{z^{2^2}}+\\frac{1}{z^{3^2}}+\\dots+\\frac{1}{z^{{12}^2}}\\right)?$\n\n$\\textbf{(A) } 18 \\qquad \\textbf{(B) } 72-36\\sqrt2 \\qquad \\textbf{(C) } 36 \\qquad \\textbf{(D) } 72 \\qquad \\textbf{(E) } 72+36\\sqrt2$ Show that it is \\textbf{(C) }36.-/\n",
     "formal_statement": "theorem amc12a_2019_p21 (z : ℂ) (h₀ : z = (1 + Complex.I) / Real.sqrt 2) :\n  ((∑ k : ℤ in Finset.Icc 1 12, z ^ k ^ 2) * (∑ k : ℤ in Finset.Icc 1 12, 1 / z ^ k ^ 2)) = 36 := by\n",
     "goal": "z : ℂ\n⊢ ...", "header": HEADER},
    {"name": "amc12a_2015_p10", "split": "valid",
     "informal_prefix": "/-- Integers $x$ and $y$ with $x>y>0$ satisfy $x+y+xy=80$. What is $x$?\n\n$ \\textbf{(A)}\\ 8 \\qquad\\textbf{(B)}\\ 10 \\qquad\\textbf{(C)}\\ 15 \\qquad\\textbf{(D)}\\ 18 \\qquad\\textbf{(E)}\\ 26$ Show that it is \\textbf{(E)}\\ 26.-/\n",
     "formal_statement": "theorem amc12a_2015_p10 (x y : ℤ) (h₀ : 0 < y) (h₁ : y < x) (h₂ : x + y + x * y = 80) : x = 26 := by\n",
     "goal": "x y : ℤ\n⊢ x = 26", "header": HEADER},
]
PN_HEADER = "import Mathlib\n\nopen Complex Filter Function Metric Finset\nopen scoped BigOperators Topology\n\n"
DSV15_PROOFNET = [
    {"name": "exercise_1_13a", "split": "valid",
     "informal_prefix": "/-- Suppose that $f$ is holomorphic in an open set $\\Omega$. Prove that if $\\text{Re}(f)$ is constant, then $f$ is constant.-/\n",
     "formal_statement": "theorem exercise_1_13a {f : ℂ → ℂ} (Ω : Set ℂ) (a b : Ω) (h : IsOpen Ω)\n  (hf : DifferentiableOn ℂ f Ω) (hc : ∃ (c : ℝ), ∀ z ∈ Ω, (f z).re = c) :\n  f a = f b :=",
     "goal": "...", "header": PN_HEADER + "open scoped BigOperators Topology\n\n"},
    {"name": "exercise_1_13b", "split": "test",
     "informal_prefix": "/-- Suppose that $f$ is holomorphic in an open set $\\Omega$. Prove that if $\\text{Im}(f)$ is constant, then $f$ is constant.-/\n",
     "formal_statement": "theorem exercise_1_13b {f : ℂ → ℂ} (Ω : Set ℂ) (a b : Ω) (h : IsOpen Ω)\n  (hf : DifferentiableOn ℂ f Ω) (hc : ∃ (c : ℝ), ∀ z ∈ Ω, (f z).im = c) :\n  f a = f b :=",
     "goal": "...", "header": PN_HEADER},
]


def _shared_rows(file: str, names: set[str]) -> dict[str, dict[str, object]]:
    rows = [json.loads(line) for line in (DATA / file).read_text(encoding="utf-8").splitlines()]
    return {r["name"]: r for r in rows if r["name"] in names}


def test_dsv15_converter_matches_shared_files() -> None:
    source = f"{dl.DSV15_REPO}@{dl.DSV15_COMMIT} datasets/minif2f.jsonl"
    converted = dl.convert_dsv15(DSV15_MINIF2F, source=source)
    shared = _shared_rows("minif2f_valid.jsonl", {"amc12a_2019_p21", "amc12a_2015_p10"})
    for row in converted:
        expected = dict(shared[row["name"]], informal_proof=None)  # DSP proofs are not fetched
        assert row == expected


def _fetch_from(files: dict[str, bytes]):
    def fetch(url: str) -> bytes:
        for suffix, data in files.items():
            if url.endswith(suffix):
                return data
        raise DataError(f"cannot download {url}: not in test fixture")

    return fetch


def _jsonl(rows: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def test_proofnet_download_converts_and_names(tmp_path: Path) -> None:
    originals_valid = [
        {"id": "Shakarchi|exercise_1_13a", "nl_statement": "Suppose that $f$ is holomorphic in an open set $\\Omega$. Prove that if $\\text{Re}(f)$ is constant, then $f$ is constant.\n", "nl_proof": "\\begin{proof}...\\end{proof}"},
        {"id": "Rudin|exercise_1_13a", "nl_statement": "Something else entirely about real numbers.", "nl_proof": "wrong"},
    ]
    originals_test = [{"id": "Shakarchi|exercise_1_13b", "nl_statement": "Suppose ... Im(f) ...", "nl_proof": ""}]
    fetch = _fetch_from({
        "datasets/proofnet.jsonl": _jsonl(DSV15_PROOFNET),
        "benchmark/valid.jsonl": _jsonl(originals_valid),
        "benchmark/test.jsonl": _jsonl(originals_test),
    })
    written = dl.download_proofnet(tmp_path, fetch)
    assert sorted(p.name for p in written) == ["proofnet_test.jsonl", "proofnet_valid.jsonl"]
    valid = read_jsonl(tmp_path / "proofnet_valid.jsonl")
    assert [p.name for p in valid] == ["Shakarchi_exercise_1_13a"]
    assert valid[0].informal_proof == "\\begin{proof}...\\end{proof}"
    shared = _shared_rows("proofnet_valid.jsonl", {"Shakarchi_exercise_1_13a"})["Shakarchi_exercise_1_13a"]
    for key in ("header", "formal_statement", "informal_statement", "source", "lean_version", "split"):
        assert getattr(valid[0], key) == shared[key], key
    test = read_jsonl(tmp_path / "proofnet_test.jsonl")
    assert test[0].name == "Shakarchi_exercise_1_13b" and test[0].informal_proof is None


def test_goedel_converter_splits_header_and_docstring() -> None:
    prefix = "/-- What is it? Show that it is 65.-/\n"
    row = {"name": "mathd_algebra_478", "informal_prefix": prefix, "split": "test",
           "formal_statement": HEADER + prefix + "theorem mathd_algebra_478 (b : ℝ) : b = b := by\n"}
    [out] = dl.convert_goedel([row], source="g")
    assert out["header"] == HEADER
    assert out["formal_statement"] == "theorem mathd_algebra_478 (b : ℝ) : b = b := by"
    assert out["informal_statement"] == "What is it? Show that it is 65."


def test_converter_rejects_bad_rows() -> None:
    with pytest.raises(DataError, match="src:1: DS-Prover-V1.5 row lacks string key 'header'"):
        dl.convert_dsv15([{"name": "a", "split": "test", "formal_statement": "theorem a : True :="}], source="src")
    bad = dict(DSV15_MINIF2F[0], formal_statement="theorem a : True")
    with pytest.raises(DataError, match="src:1: formal_statement does not end"):
        dl.convert_dsv15([bad], source="src")


def test_offline_download_error_is_clear(tmp_path: Path) -> None:
    """No network here: the real urllib download fails and says how to work offline."""
    with pytest.raises(DataError) as info:
        load_benchmark("minif2f")
    message = str(info.value)
    assert "raw.githubusercontent.com/deepseek-ai/DeepSeek-Prover-V1.5" in message
    assert "--data-dir" in message and "PROVER_DATA_DIR" in message
    assert str(tmp_path / "cache" / "datasets") in message
    assert not (tmp_path / "cache" / "datasets" / "minif2f_test.jsonl").exists()


def test_benchmarks_that_need_a_tree_say_so() -> None:
    with pytest.raises(DataError, match="cannot be downloaded.*--data-dir.*putnambench.jsonl"):
        load_benchmark("putnambench")


def test_cache_is_used_after_download(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "datasets"
    goedel = [{"name": "amc12a_2015_p10", "split": "test", "informal_prefix": DSV15_MINIF2F[1]["informal_prefix"],
               "formal_statement": HEADER + DSV15_MINIF2F[1]["informal_prefix"] + DSV15_MINIF2F[1]["formal_statement"]}]
    test_row = dict(DSV15_MINIF2F[1], split="test")
    fetch = _fetch_from({"datasets/minif2f.jsonl": _jsonl([DSV15_MINIF2F[0], test_row]), "dataset/minif2f.jsonl": _jsonl(goedel)})
    dl.download_minif2f(cache, fetch)
    problems = load_benchmark("minif2f")  # served from the cache, no network needed
    assert [p.name for p in problems] == ["amc12a_2015_p10"]
    assert problems[0].header == HEADER and problems[0].category == "amc12"
    assert [p.name for p in load_benchmark("minif2f-dsv15", split="valid")] == ["amc12a_2019_p21"]


@pytest.mark.parametrize("benchmark", ["putnambench", "proofnet", "leangeo", "minif2f-lean4.24"])
def test_lean_parser_round_trips_real_statements(benchmark: str) -> None:
    """header + docstring + statement + sorry parses back into the same problem (binders with
    `:=` defaults, comments inside statements, helper theorems with proofs in headers)."""
    checked = 0
    for problem in load_benchmark(benchmark, split="all", data_dir=DATA):
        if not problem.formal_statement.startswith(("theorem", "lemma")):
            continue  # the ProofNet `def` entries are not theorems
        text = problem.header + "/-- informal -/\n" + problem.formal_statement + "\n  sorry\n"
        [parsed] = parse_lean_text(text, path="x.lean")
        assert (parsed.name, parsed.header, parsed.formal_statement) == (
            problem.theorem_name, problem.header, problem.formal_statement
        )
        assert parsed.informal_statement == "informal"
        checked += 1
    assert checked > 100


def test_downloads_fetch_the_pinned_public_sources(tmp_path: Path) -> None:
    """The exact raw URLs (repository, commit, path) named in ../shared/datasets/README.md."""
    requested: list[str] = []
    rows = _jsonl([DSV15_MINIF2F[0], dict(DSV15_MINIF2F[1], split="test")])
    goedel = _jsonl([{"name": "amc12a_2015_p10", "formal_statement": HEADER + DSV15_MINIF2F[1]["formal_statement"]}])

    def fetch(url: str) -> bytes:
        requested.append(url)
        return goedel if "Goedel" in url else rows

    dl.download_minif2f(tmp_path, fetch)
    raw = "https://raw.githubusercontent.com"
    assert requested == [
        f"{raw}/deepseek-ai/DeepSeek-Prover-V1.5/2c4ba9119eef74d0d611f494261b2c5bae98c69a/datasets/minif2f.jsonl",
        f"{raw}/Goedel-LM/Goedel-Prover-V2/2e9036e118464aa96a8bebaf9f5b9d091aa3585c/dataset/minif2f.jsonl",
    ]
    requested.clear()
    with pytest.raises(DataError):  # the minif2f rows are no ProofNet rows; only the URLs matter here
        dl.download_proofnet(tmp_path, fetch)
    assert requested == [
        f"{raw}/deepseek-ai/DeepSeek-Prover-V1.5/2c4ba9119eef74d0d611f494261b2c5bae98c69a/datasets/proofnet.jsonl",
        f"{raw}/zhangir-azerbayev/ProofNet/509ad79710ed4f46ff5c282ed5640c1aa9ac3f30/benchmark/valid.jsonl",
        f"{raw}/zhangir-azerbayev/ProofNet/509ad79710ed4f46ff5c282ed5640c1aa9ac3f30/benchmark/test.jsonl",
    ]


def test_a_download_that_is_not_text_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"datasets/minif2f.jsonl: not UTF-8 text"):
        dl.download_minif2f(tmp_path, lambda url: b"\x1f\x8b\x08\x00 gzip, not jsonl \xff")
