"""Turn `.lean` files into problems: every theorem/lemma whose proof is just `sorry`.

The header of a problem is the file text before its declaration (imports, options, earlier
declarations, including earlier sorried lemmas it may use: the checker then rejects proofs that
depend on them through `sorryAx`). A docstring right before the theorem becomes the informal
statement. Comments and strings are masked before scanning so a `theorem` inside a comment is
never taken for a declaration.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from prover.errors import DataError
from prover.lean_syntax import blank_comments_and_strings
from prover.types import Problem

SKIP_DIRS = frozenset({".lake", "lake-packages", ".git", "build"})

_DECL = re.compile(
    r"^[ \t]*(?:@\[[^\]\n]*\][ \t\n]*)?(?:(?:private|protected|noncomputable|nonrec)[ \t]+)*"
    r"(?:theorem|lemma)[ \t]+([^\s:({\[]+)",
    re.MULTILINE,
)
_COMMAND = re.compile(
    r"^[ \t]*(?:@\[|(?:private|protected|noncomputable|nonrec|partial|unsafe)\b|"
    r"(?:theorem|lemma|def|example|abbrev|instance|structure|inductive|class|namespace|end|section|"
    r"open|variable|universe|set_option|attribute|mutual|macro|syntax|notation|axiom|opaque|import|"
    r"elab|macro_rules|infix|infixl|infixr|prefix|postfix|export|local|scoped)\b|#[a-z_]+)",
    re.MULTILINE,
)
_SORRY_END = re.compile(r":=\s*(?:by\s+)?sorry\s*$")


def parse_lean_text(text: str, *, path: str, benchmark: str = "", category: str | None = None) -> list[Problem]:
    """Problems for every `theorem`/`lemma` in `text` whose proof is `sorry` or `by sorry`."""
    masked = blank_comments_and_strings(text)
    commands = [m.start() for m in _COMMAND.finditer(masked)]
    problems = []
    for match in _DECL.finditer(masked):
        start = match.start() + (len(match.group(0)) - len(match.group(0).lstrip()))
        end = next((c for c in commands if c >= match.end()), len(text))
        sorry = _SORRY_END.search(masked[start:end].rstrip())
        if sorry is None:
            continue
        statement = text[start : start + sorry.start()].rstrip() + " " + ":= by"
        header, informal = _split_docstring(text[:start], masked[:start])
        line = text.count("\n", 0, start) + 1
        problems.append(
            Problem(
                name=match.group(1),
                split="test",
                header=header,
                formal_statement=statement,
                informal_statement=informal,
                source=f"{path}:{line}",
                benchmark=benchmark,
                category=category,
            )
        )
    return problems


def _split_docstring(header: str, masked: str) -> tuple[str, str | None]:
    """Take a `/-- ... -/` docstring that directly precedes the declaration out of the header."""
    stripped = header.rstrip()
    if not stripped.endswith("-/"):
        return header, None
    start = stripped.rfind("/--")
    if start < 0 or masked[start:len(stripped)].strip():
        return header, None
    body = stripped[start + 3 : -2].strip()
    if "-/" in body:  # the last `/--` did not open this comment
        return header, None
    return header[:start], body or None


def load_lean_path(path: Path, *, benchmark: str = "") -> list[Problem]:
    """Problems from one `.lean` file or every `.lean` file below a folder (sorted)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"lean path not found: {path}")
    if path.is_file():
        files, root = [path], path.parent
    else:
        files = sorted(p for p in path.rglob("*.lean") if not SKIP_DIRS.intersection(p.relative_to(path).parts))
        root = path
        if not files:
            raise DataError(f"no .lean files in folder {path}")
    problems: list[Problem] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read {file}: {exc}") from exc
        rel_parent = file.parent.relative_to(root).as_posix()
        category = None if rel_parent == "." else rel_parent
        problems.extend(parse_lean_text(text, path=str(file), benchmark=benchmark, category=category))
    if not problems:
        raise DataError(f"no theorem or lemma ending in `sorry` found in {path}")
    return unique_names(problems)


def unique_names(problems: list[Problem], qualify: Callable[[Problem], str] | None = None) -> list[Problem]:
    """Names that occur more than once get qualified (default: `<file stem>.<name>`).

    Raises:
        DataError: the qualified names still clash.
    """
    qualify = qualify or (lambda p: f"{Path(p.source.rsplit(':', 1)[0]).stem}.{p.name}")
    counts: dict[str, int] = {}
    for problem in problems:
        counts[problem.name] = counts.get(problem.name, 0) + 1
    renamed = [p.model_copy(update={"name": qualify(p)}) if counts[p.name] > 1 else p for p in problems]
    names = [p.name for p in renamed]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise DataError(f"theorem names are not unique across files even with their files: {', '.join(clash[:5])}")
    return renamed
