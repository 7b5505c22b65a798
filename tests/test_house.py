"""House rules of the prose: the README, docs, library, scripts and notebooks say what the project is and does,
not how it was developed; and the links between the README and the docs resolve."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ["README.md", "docs", "lib", "bench", "studies", "notebooks"]
TEXT = {".md", ".py", ".ipynb", ".yaml", ".yml", ".txt", ".csv", ".json", ".js", ".html", ".css", ".toml", ".sh"}
# words that narrate development instead of describing the project
HISTORY = re.compile(r"\bsessions? #?\d+|\bissues? #?\d+|\bearlier readings?\b|\bold default\b|\bstretch of work\b"
                     r"|\bthis change\b", re.I)


def _files():
    for name in SCANNED:
        path = ROOT / name
        paths = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for p in paths:
            if p.suffix in TEXT and not any(part.startswith(".") or part == "__pycache__" for part in p.parts):
                yield p


def history_words(paths) -> list[str]:
    """'file:line: text' for every line of ``paths`` that narrates development."""
    found = []
    for p in paths:
        for i, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if HISTORY.search(line):
                found.append(f"{p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}:{i}: {line.strip()[:160]}")
    return found


def test_the_finder_names_file_and_line(tmp_path):
    f = tmp_path / "note.md"
    f.write_text("fine\nSee issue #12 for the old default.\nsession 3 changed it\nreissue 4 is a word\n")
    hits = history_words([f])
    assert [h.split(":")[1] for h in hits] == ["2", "3"], hits
    assert hits[0].startswith(str(f)) and "issue #12" in hits[0]


def test_no_development_history_in_prose_code_or_notebooks():
    files = list(_files())
    assert any(f.suffix == ".ipynb" for f in files) and any(f.parts[-2:] == ("docs", "running.md") for f in files)
    found = history_words(files)
    assert not found, "development history (say what is, not how it came to be):\n" + "\n".join(found)


LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_links_of_the_readme_and_docs_resolve():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) > 5
    broken = []
    for page in pages:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # an external address
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", dest.read_text(encoding="utf-8"), re.M)
                if anchor not in {_anchor(h) for h in headings}:
                    broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
