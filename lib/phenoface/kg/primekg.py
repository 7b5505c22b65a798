"""Read PrimeKG's ``kg.csv`` into a :class:`KnowledgeGraph`, and merge it with the HPO graph.

Id normalisation (PrimeKG stores bare numbers plus a source column):
- ``HPO`` phenotypes: ``316`` -> ``HP:0000316`` (zero-padded to 7 digits), so they coincide with HPO.
- ``MONDO`` diseases: ``8608`` -> ``MONDO:0008608``; ``MONDO_grouped`` ids (``"123_456"``, PrimeKG's
  merged near-duplicate diseases) keep their first member as the id.
- ``NCBI`` genes: ``NCBIGene:<id>``, the same ids HPO's genes_to_phenotype uses.
- anything else: ``<source>:<id>``.

PrimeKG lists most edges in both directions; each is stored once, oriented the way the HPO graph
orients it (disease first, then phenotype, then gene; is_a child -> parent as HPO says, when HPO
knows the pair).

Merging diseases: kg.csv carries no OMIM/ORPHA cross-references, so a MONDO disease is linked to
the OMIM/ORPHA diseases whose HPO name matches its name (case, punctuation and spacing ignored),
or to those given in ``xrefs`` (e.g. from MONDO's SSSOM mapping file) — as ``disease_same_as``
edges MONDO -> OMIM/ORPHA. Both nodes are kept; profiles follow the edges (``graph.aliases``).

Bad input fails at once, with the file and the line in the message (:class:`PrimeKGFormatError`,
:class:`FileNotFoundError`), never as a pandas traceback:

- a path that does not exist or is not a file; a file that is empty, holds only a header or lacks
  a PrimeKG column (the message names the missing columns);
- bad rows: a row with more fields than the header; an empty required field (``relation``, the
  ``*_index``, ``*_id``, ``*_type`` and ``*_source`` columns; a row with too few fields shows up as
  empty trailing fields); a non-numeric ``x_index``/``y_index``; an id that is not numeric where
  PrimeKG's ids are (``HPO``, ``MONDO``, ``MONDO_grouped`` ``"123_456"``, ``NCBI``); and a last line
  cut off mid-line (a file that does not end with a newline: an interrupted download or copy), which
  could otherwise carry a cut id into the graph. Bad rows are skipped and never become nodes or
  edges. Up to :data:`MAX_BAD_ROWS` rows and :data:`MAX_BAD_FRACTION` of the rows may be bad: they
  are skipped with a :class:`PrimeKGRowWarning` giving the counts per reason and the first bad line
  numbers (also in ``graph.meta["primekg_bad_rows"]`` / ``["primekg_bad_lines"]``). More than either
  is an error naming the file and the first bad lines: such a file is not the one PrimeKG published.

The checks are vectorised (ids are checked once per distinct (id, source) pair), so the real
8M-row kg.csv loads about as fast as before.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .. import hpo
from .graph import (DISEASE, EDGE_COLUMNS, GENE, PHEN_PHEN, PHENOTYPE, SAME_AS, KnowledgeGraph, edge_frame,
                    name_key)

REQUIRED_COLUMNS = ("relation", "display_relation", "x_index", "x_id", "x_type", "x_name", "x_source",
                    "y_index", "y_id", "y_type", "y_name", "y_source")
# Fields a row cannot do without (names and display_relation may be empty).
REQUIRED_FIELDS = ("relation", "x_index", "x_id", "x_type", "x_source", "y_index", "y_id", "y_type", "y_source")
# More bad rows than either of these and the load fails (a few bad rows are skipped with a warning).
MAX_BAD_ROWS = 100
MAX_BAD_FRACTION = 0.01
# Bad lines quoted in a warning or an error.
SHOWN_BAD_LINES = 5
# Sources whose PrimeKG ids are numbers (normalise_id turns them into CURIEs).
_NUMERIC_IDS = {
    "HPO": re.compile(r"(?:HP:)?\d+(?:\.0+)?"),
    "MONDO": re.compile(r"(?:MONDO:)?\d+(?:\.0+)?"),
    "MONDO_grouped": re.compile(r"(?:MONDO:)?\d+(?:_\d+)*"),
    "NCBI": re.compile(r"\d+"),
}
_INDEX = re.compile(r"\d+")
_SKIPPED = re.compile(r"Skipping line (\d+): expected (\d+) fields, saw (\d+)")
# Which end comes first when an edge is stored once.
_TYPE_ORDER = {DISEASE: 0, PHENOTYPE: 1, GENE: 2}


class PrimeKGFormatError(ValueError):
    """A kg.csv that cannot be PrimeKG's: empty, header only, a missing column, or too many bad rows
    (the message names the file, the columns or the first bad lines)."""


class PrimeKGRowWarning(UserWarning):
    """A few bad kg.csv rows were skipped (counts and the first line numbers in the message)."""


def normalise_id(raw_id, source) -> str:
    raw = str(raw_id).strip()
    src = str(source).strip()
    if src == "HPO":
        return raw if raw.startswith("HP:") else f"HP:{int(float(raw)):07d}"
    if src.startswith("MONDO"):
        first = raw.split("_")[0]
        return first if first.startswith("MONDO:") else f"MONDO:{int(float(first)):07d}"
    if src == "NCBI":
        return f"NCBIGene:{raw}"
    return raw if raw.startswith(f"{src}:") else f"{src}:{raw}"


def _check_id(raw, source) -> tuple[str, str]:
    """(normalised id, "") for a good id, ("", why it is bad) otherwise; ("", "") for an empty id or
    source (counted as an empty field)."""
    raw, source = str(raw).strip(), str(source).strip()
    if not raw or not source:
        return "", ""
    pattern = _NUMERIC_IDS.get(source)
    if pattern is not None and not pattern.fullmatch(raw):
        return "", f"{raw[:40]!r} is not a numeric {source} id"
    try:
        return normalise_id(raw, source), ""
    except ValueError:
        return "", f"{raw[:40]!r} is not a valid {source} id"


def _normalise_column(ids: pd.Series, sources: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Normalised ids and, per row, why the id is bad ("" when it is fine). kg.csv has ~8M rows:
    each distinct (id, source) pair is checked and normalised once."""
    id_codes, id_uniq = pd.factorize(ids)
    src_codes, src_uniq = pd.factorize(sources)
    n_src = max(len(src_uniq), 1)
    codes, pairs = pd.factorize(id_codes.astype(np.int64) * n_src + src_codes)
    id_uniq, src_uniq = np.asarray(id_uniq, dtype=object), np.asarray(src_uniq, dtype=object)
    checked = [_check_id(i, s) for i, s in zip(id_uniq[pairs // n_src], src_uniq[pairs % n_src])]
    norm = np.array([c[0] for c in checked], dtype=object)
    problem = np.array([c[1] for c in checked], dtype=object)
    return norm[codes], problem[codes]


def _index_problem(values: pd.Series) -> np.ndarray:
    """Rows whose PrimeKG node index is not a number (an empty one counts as an empty field)."""
    return ~values.str.isdigit().to_numpy(dtype=bool) & (values != "").to_numpy(dtype=bool)


class _Head(io.RawIOBase):
    """The first ``limit`` bytes of a binary file (the part of kg.csv before a cut-off last line)."""

    def __init__(self, fh, limit: int):
        self.fh, self.left = fh, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = min(len(buf), self.left)
        data = self.fh.read(n) if n > 0 else b""
        buf[:len(data)] = data
        self.left -= len(data)
        return len(data)


def _complete_length(path: Path) -> tuple[int, int]:
    """(file size, length up to and including the last newline)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        end = size
        while end > 0:
            start = max(0, end - 65536)
            fh.seek(start)
            chunk = fh.read(end - start)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                return size, start + nl + 1
            end = start
    return size, 0


def _describe(path: Path, n_bad: int, n_rows: int, reasons: dict[str, int], shown: list[tuple[int, str]]) -> str:
    counts = ", ".join(f"{n:,} {why}" for why, n in reasons.items() if n)
    lines = "; ".join(f"line {line}: {why}" for line, why in shown)
    more = "" if n_bad <= len(shown) else f"; ... {n_bad - len(shown):,} more"
    return f"{path}: {n_bad:,} of {n_rows:,} rows are bad ({counts}). First bad lines: {lines}{more}"


def _read(path: Path) -> tuple[pd.DataFrame, list[tuple[int, int, int]], int]:
    """The rows of kg.csv as strings, the (line, expected, seen fields) rows pandas skipped for too many fields, and
    the line number of a cut-off last line (0 if the file ends with a newline)."""
    size, complete = _complete_length(path)
    if size == 0:
        raise PrimeKGFormatError(f"{path} is empty (0 bytes): expected PrimeKG's kg.csv with the columns "
                                 f"{', '.join(REQUIRED_COLUMNS)} (see data/README.md).")
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8", encoding_errors="replace").columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise PrimeKGFormatError(f"{path}: cannot read a CSV header ({exc}); expected PrimeKG's kg.csv "
                                 f"with the columns {', '.join(REQUIRED_COLUMNS)}.") from None
    header = [str(c).strip() for c in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        hint = " (it looks tab-separated; kg.csv is comma-separated)" if len(header) == 1 and "\t" in header[0] else ""
        found = "".join(ch if ch.isprintable() else "?" for ch in ", ".join(header)) or "none"
        raise PrimeKGFormatError(
            f"{path} is not a PrimeKG kg.csv: missing column(s) {', '.join(missing)} "
            f"(found {found[:300]}{'...' if len(found) > 300 else ''}){hint}.")
    if complete == 0:  # a header without a line end: no row can follow
        return pd.DataFrame(columns=list(REQUIRED_COLUMNS), dtype=str), [], 0
    with warnings.catch_warnings(record=True) as caught, open(path, "rb") as raw:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            df = pd.read_csv(io.BufferedReader(_Head(raw, complete), 1 << 20), dtype=str, keep_default_na=False,
                             index_col=False, on_bad_lines="warn", encoding="utf-8", encoding_errors="replace")
        except pd.errors.EmptyDataError:
            df = pd.DataFrame(columns=header, dtype=str)
        except pd.errors.ParserError as exc:
            raise PrimeKGFormatError(f"{path} is not a readable CSV file: {exc}. Fetch kg.csv again "
                                     "(see data/README.md).") from None
    skipped = []
    for w in caught:
        if issubclass(w.category, pd.errors.ParserWarning):
            skipped += [(int(m.group(1)), int(m.group(2)), int(m.group(3))) for m in _SKIPPED.finditer(str(w.message))]
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    df.columns = [str(c).strip() for c in df.columns]
    cut_line = 0
    if complete < size:
        cut_line = len(df) + len(skipped) + 2
    return df[list(REQUIRED_COLUMNS)], sorted(skipped), cut_line


def _validate(path: Path, df: pd.DataFrame, skipped, cut_line: int):
    """Check every row; returns (normalised x ids, y ids, mask of good rows, meta about bad rows),
    or raises when too many rows are bad."""
    n_rows = len(df) + len(skipped) + bool(cut_line)
    if n_rows == 0:
        raise PrimeKGFormatError(f"{path} has a header but no rows: expected PrimeKG's kg.csv with one edge "
                                 "per line (see data/README.md).")
    x, x_problem = _normalise_column(df["x_id"], df["x_source"])
    y, y_problem = _normalise_column(df["y_id"], df["y_source"])
    empty = {c: (df[c] == "").to_numpy(dtype=bool) for c in REQUIRED_FIELDS}
    checks = {
        "with an empty required field": np.logical_or.reduce(list(empty.values())),
        "with a non-numeric x_index/y_index": _index_problem(df["x_index"]) | _index_problem(df["y_index"]),
        "with a non-numeric id": (x_problem != "") | (y_problem != ""),
    }
    bad = np.logical_or.reduce(list(checks.values()))
    n_bad = int(bad.sum()) + len(skipped) + bool(cut_line)
    if n_bad == 0:
        return x, y, ~bad, {}

    # Line numbers of the rows pandas kept: data lines start at 2, minus the lines it skipped.
    bad_rows = np.flatnonzero(bad)
    if skipped:
        lines_all = np.arange(2, 2 + len(df) + len(skipped))
        lines = np.setdiff1d(lines_all, [s[0] for s in skipped], assume_unique=True)
    else:
        lines = None

    def line_of(i):
        return int(lines[i]) if lines is not None else int(i) + 2

    def why(i):
        parts = [f"empty {c}" for c in REQUIRED_FIELDS if empty[c][i]]
        for col in ("x_index", "y_index"):
            v = str(df[col].iat[i]).strip()
            if v and not _INDEX.fullmatch(v):
                parts.append(f"{col} {v[:40]!r} is not a number")
        parts += [f"x_id {x_problem[i]}"] * bool(x_problem[i]) + [f"y_id {y_problem[i]}"] * bool(y_problem[i])
        return ", ".join(parts)

    shown = [(line_of(i), why(i)) for i in bad_rows[:SHOWN_BAD_LINES + 1]]
    shown += [(line, f"{saw} fields where the header has {expected}") for line, expected, saw in skipped]
    if cut_line:
        shown.append((cut_line, "cut off mid-line (the file does not end with a newline: an interrupted "
                                "download or copy?)"))
    shown = sorted(shown)[:SHOWN_BAD_LINES]
    reasons = {"with too many fields": len(skipped), **{k: int(v.sum()) for k, v in checks.items()},
               "cut off at the end of the file": int(bool(cut_line))}
    message = _describe(path, n_bad, n_rows, reasons, shown)
    limit = min(MAX_BAD_ROWS, MAX_BAD_FRACTION * n_rows)
    if n_bad > limit:
        raise PrimeKGFormatError(
            f"{message}. At most {MAX_BAD_ROWS} bad rows, and no more than {MAX_BAD_FRACTION:.0%} of the rows, are "
            "skipped with a warning: check that this is PrimeKG's kg.csv and fetch it again (see data/README.md).")
    warnings.warn(f"{message}. These rows were skipped.", PrimeKGRowWarning, stacklevel=3)
    return x, y, ~bad, {"primekg_bad_rows": n_bad, "primekg_bad_lines": [line for line, _ in shown]}


def load_primekg(path: str | os.PathLike, relations=None, param: str | None = None) -> KnowledgeGraph:
    """PrimeKG ``kg.csv`` -> KnowledgeGraph (``relations`` keeps only those relation names).

    Rows are validated first (see the module docstring): a few bad rows are skipped with a
    :class:`PrimeKGRowWarning`, more fail with :class:`PrimeKGFormatError`. ``param`` names the
    parameter the path came from (e.g. ``"PRIMEKG_PATH"``), so a path that does not exist says so."""
    path = Path(path)
    where = f"{param} = {str(path)!r}: " if param else ""
    if not path.exists():
        raise FileNotFoundError(f"{where}PrimeKG file {path} does not exist (see data/README.md for where to get "
                                f"kg.csv{'; set ' + param + ' to an empty string to use HPO only' if param else ''}).")
    if not path.is_file():
        inside = " (it holds a kg.csv: point at that file)" if (path / "kg.csv").is_file() else ""
        raise FileNotFoundError(f"{where}{path} is a folder, not PrimeKG's kg.csv{inside}.")
    df, skipped, cut_line = _read(path)
    x, y, good, bad_meta = _validate(path, df, skipped, cut_line)
    keep = good if relations is None else good & df["relation"].isin(set(relations)).to_numpy()
    if not keep.all():
        df, x, y = df[keep], x[keep], y[keep]

    nodes = pd.concat([
        pd.DataFrame({"id": x, "type": df["x_type"].to_numpy(), "name": df["x_name"].to_numpy(),
                      "source": df["x_source"].to_numpy()}),
        pd.DataFrame({"id": y, "type": df["y_type"].to_numpy(), "name": df["y_name"].to_numpy(),
                      "source": df["y_source"].to_numpy()}),
    ]).drop_duplicates("id").set_index("id")[["type", "name", "source"]]

    xo = df["x_type"].map(_TYPE_ORDER).fillna(9).to_numpy()
    yo = df["y_type"].map(_TYPE_ORDER).fillna(9).to_numpy()
    # Same-type edges: a stable order by id makes the two mirrored copies identical.
    swap = (yo < xo) | ((yo == xo) & (y < x))
    head = np.where(swap, y, x)
    tail = np.where(swap, x, y)
    rel = df["relation"].to_numpy(dtype=object)
    is_pp = rel == PHEN_PHEN
    if is_pp.any():
        parents = hpo.ontology()["parents"]
        # HPO knows the is_a direction; PrimeKG's undirected copy does not.
        flip = np.zeros(len(rel), dtype=bool)
        idx = np.flatnonzero(is_pp)
        flip[idx] = [head[i] in parents.get(tail[i], ()) for i in idx]
        head, tail = np.where(flip, tail, head), np.where(flip, head, tail)
    edges = edge_frame(head, rel, tail, source="primekg").drop_duplicates(["head", "relation", "tail"])
    return KnowledgeGraph(nodes, edges.reset_index(drop=True),
                          {"sources": ["primekg"], "primekg_path": str(path), "primekg_bad_rows": 0, **bad_meta})


def merge(a: KnowledgeGraph, b: KnowledgeGraph, xrefs: dict[str, list[str]] | None = None) -> KnowledgeGraph:
    """Union of two graphs by id (HPO terms and genes coincide), plus ``disease_same_as`` edges
    from each MONDO disease to the OMIM/ORPHA diseases matching its name or listed in ``xrefs``."""
    nodes = pd.concat([a.nodes, b.nodes])
    nodes = nodes[~nodes.index.duplicated(keep="first")]
    edges = pd.concat([a.edges, b.edges], ignore_index=True)
    # The HPO copy of an edge carries frequency and onset: keep it over PrimeKG's bare one.
    edges = edges.assign(_hpo=(edges["source"] != "hpo")).sort_values("_hpo", kind="stable")
    edges = edges.drop_duplicates(["head", "relation", "tail"]).drop(columns="_hpo")

    dis = nodes[nodes["type"] == DISEASE]
    mondo = dis[dis.index.str.startswith("MONDO:")]
    other = dis[~dis.index.str.startswith("MONDO:")]
    by_name: dict[str, list[str]] = {}
    for did, name in other["name"].items():
        by_name.setdefault(name_key(name), []).append(did)
    links = []
    for mid, name in mondo["name"].items():
        targets = set(by_name.get(name_key(name), ())) | set((xrefs or {}).get(mid, ()))
        links += [(mid, t) for t in sorted(targets) if t in nodes.index]
    if links:
        h, t = zip(*links)
        edges = pd.concat([edges, edge_frame(h, SAME_AS, t, source="merge")], ignore_index=True)
        edges = edges.drop_duplicates(["head", "relation", "tail"])
    meta = {**a.meta, **b.meta, "sources": list(dict.fromkeys(a.meta.get("sources", []) + b.meta.get("sources", []))),
            "merged_diseases": len(links)}
    return KnowledgeGraph(nodes, edges[EDGE_COLUMNS].reset_index(drop=True), meta)
