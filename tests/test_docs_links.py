"""Every relative link of the README and the docs pages resolves: the file exists and an ``#anchor``
names a heading of it (GitHub's anchor rule). References to ``docs/<page>.md#<anchor>`` written in the
code, notebooks, benchmarks and studies are checked the same way, so moving a section cannot leave a
dangling link behind."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", ROOT / "studies" / "README.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE_REF = re.compile(r"docs/([A-Za-z0-9_]+\.md)#([A-Za-z0-9_\-]+)")


def _outside_code(text: str) -> str:
    """The text without fenced code blocks and inline code spans."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase; letters, marks, digits, '-' and '_' kept, other
    punctuation and symbols (``²`` included) dropped; spaces → '-'."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading keeps its text
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LM"
                   or unicodedata.category(c) == "Nd")
    return kept.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    for line in text.splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = anchor(m.group(1))
            name, n = base, 0
            while name in found:  # GitHub numbers repeated headings: x, x-1, x-2, ...
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


def _check(source: Path, target: str) -> str | None:
    path, _, frag = target.partition("#")
    dest = (source.parent / path).resolve() if path else source
    if not dest.exists():
        return f"{source.relative_to(ROOT)}: {target}: no such file"
    if frag and dest.suffix == ".md" and frag not in anchors(dest):
        return f"{source.relative_to(ROOT)}: {target}: no heading with anchor #{frag}"
    return None


def test_anchor_rule():
    assert anchor("Does it learn? (measured)") == "does-it-learn-measured"
    assert anchor("The `.index` table (LevelDB table format)") == "the-index-table-leveldb-table-format"
    assert anchor("What lmnet guarantees") == "what-lmnet-guarantees"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_markdown_links_resolve(page):
    problems = []
    for target in LINK.findall(_outside_code(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        problem = _check(page, target)
        if problem:
            problems.append(problem)
    assert not problems, "\n".join(problems)


def test_docs_anchors_named_in_code_exist():
    problems = []
    files = [p for folder in ("lmnet", "notebooks", "benchmarks", "studies", "tests")
             for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".ipynb", ".md", ".sh")]
    for f in sorted(files):
        for page, frag in CODE_REF.findall(f.read_text(encoding="utf-8")):
            dest = ROOT / "docs" / page
            if not dest.is_file():
                problems.append(f"{f.relative_to(ROOT)}: docs/{page}: no such page")
            elif frag not in anchors(dest):
                problems.append(f"{f.relative_to(ROOT)}: docs/{page}#{frag}: no such heading")
    assert not problems, "\n".join(problems)
