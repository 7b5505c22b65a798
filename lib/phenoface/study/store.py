"""The answers of a reader study in SQLite: one row per answer, written in one transaction each.

WAL mode with ``synchronous=FULL``: an answer the server acknowledged survives the server being killed (or the
machine losing power) right after; a write cut off half-way is rolled back when the file is next opened. A
rater answers an item once per round (a unique key, so a double submit is refused, not stored twice), and
only an item the server showed that rater (the ``shown`` table), so no answer can land on an item the page
never displayed. A database belongs to one study set (its id is stored on creation and checked on open).
"""

from __future__ import annotations

import contextlib
import csv
import io
import sqlite3
import time
from pathlib import Path
from typing import Iterator

import pandas as pd

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rounds (round INTEGER PRIMARY KEY, opened_at REAL NOT NULL, closed_at REAL);
CREATE TABLE IF NOT EXISTS shown (
    rater TEXT NOT NULL, item TEXT NOT NULL, round INTEGER NOT NULL, shown_at REAL NOT NULL,
    PRIMARY KEY (rater, item, round));
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rater TEXT NOT NULL, item TEXT NOT NULL, round INTEGER NOT NULL,
    said_real INTEGER NOT NULL CHECK (said_real IN (0, 1)),
    confidence INTEGER NOT NULL CHECK (confidence BETWEEN 1 AND 3),
    disease TEXT NOT NULL,
    severity INTEGER CHECK (severity IS NULL OR severity BETWEEN 0 AND 4),
    client_ms INTEGER, server_ms INTEGER NOT NULL,
    answered_at REAL NOT NULL, page_version TEXT NOT NULL,
    UNIQUE (rater, item, round));
"""
COLUMNS = ("id", "rater", "item", "round", "said_real", "confidence", "disease", "severity", "client_ms",
           "server_ms", "answered_at", "page_version")


class StoreError(Exception):
    """An answer the store refuses; ``status`` is the HTTP status the server answers with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Store:
    """One SQLite file. Each call opens its own connection: the server answers from a thread pool, and
    sqlite3 connections must not be shared between threads."""

    def __init__(self, path, set_id: str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(SCHEMA)
            con.execute("INSERT OR IGNORE INTO meta VALUES ('set_id', ?)", (set_id,))
            con.execute("INSERT OR IGNORE INTO rounds (round, opened_at) VALUES (1, ?)", (time.time(),))
            stored = con.execute("SELECT value FROM meta WHERE key = 'set_id'").fetchone()[0]
        if stored != set_id:
            raise ValueError(f"{self.path} holds answers to study set {stored}, not to this set ({set_id}): "
                             "give another database (--db) or the set it was made for")
        self.set_id = set_id

    def _open(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        con.execute("PRAGMA synchronous=FULL")
        con.execute("PRAGMA busy_timeout=30000")
        return con

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = self._open()
        try:
            yield con
        finally:
            con.close()

    def round(self) -> tuple[int, bool]:
        """The current round and whether it is open."""
        with self._connect() as con:
            r, closed = con.execute("SELECT round, closed_at FROM rounds ORDER BY round DESC LIMIT 1").fetchone()
        return int(r), closed is None

    def close_round(self) -> int:
        r, _ = self.round()
        with self._connect() as con:
            con.execute("UPDATE rounds SET closed_at = ? WHERE round = ? AND closed_at IS NULL", (time.time(), r))
        return r

    def open_round(self) -> int:
        """A new round (raters answer the set again) unless the current one is still open."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            r, closed = con.execute("SELECT round, closed_at FROM rounds ORDER BY round DESC LIMIT 1").fetchone()
            if closed is not None:
                r += 1
                con.execute("INSERT INTO rounds (round, opened_at) VALUES (?, ?)", (r, time.time()))
            con.execute("COMMIT")
        return int(r)

    def answered(self, rater: str, rnd: int) -> set[str]:
        with self._connect() as con:
            return {row[0] for row in con.execute("SELECT item FROM answers WHERE rater = ? AND round = ?", (rater, rnd))}

    def mark_shown(self, rater: str, item: str, rnd: int) -> None:
        with self._connect() as con:
            con.execute("INSERT OR IGNORE INTO shown VALUES (?, ?, ?, ?)", (rater, item, rnd, time.time()))

    def add_answer(self, rater: str, item: str, said_real: bool, confidence: int, disease: str,
                   severity: int | None, client_ms: int | None, page_version: str) -> int:
        """Store one answer of the current round; returns the rater's answer count. Refused (``StoreError``)
        when the round is closed, the item was not shown to this rater, or it is already answered."""
        now = time.time()
        con = self._open()
        try:
            con.execute("BEGIN IMMEDIATE")  # the checks and the insert see one state of the file
            rnd, closed = con.execute("SELECT round, closed_at FROM rounds ORDER BY round DESC LIMIT 1").fetchone()
            if closed is not None:
                raise StoreError(409, "the round is closed: the presenter has to open a new one")
            shown = con.execute("SELECT shown_at FROM shown WHERE rater = ? AND item = ? AND round = ?",
                                (rater, item, rnd)).fetchone()
            if shown is None:
                raise StoreError(409, "this item was not shown to this rater: ask /api/next first")
            try:
                con.execute("INSERT INTO answers (rater, item, round, said_real, confidence, disease, severity, "
                            "client_ms, server_ms, answered_at, page_version) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                            (rater, item, rnd, int(bool(said_real)), int(confidence), disease, severity, client_ms,
                             int(round((now - shown[0]) * 1000)), now, page_version))
            except sqlite3.IntegrityError:
                raise StoreError(409, "this item is already answered by this rater") from None
            count = con.execute("SELECT COUNT(*) FROM answers WHERE rater = ? AND round = ?", (rater, rnd)).fetchone()[0]
            con.execute("COMMIT")
            return int(count)
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def counts(self, rnd: int) -> dict:
        """What the presenter may see while a round is open: how many answers, per rater and per item."""
        with self._connect() as con:
            per_rater = dict(con.execute("SELECT rater, COUNT(*) FROM answers WHERE round = ? GROUP BY rater "
                                         "ORDER BY rater", (rnd,)).fetchall())
            per_item = dict(con.execute("SELECT item, COUNT(*) FROM answers WHERE round = ? GROUP BY item", (rnd,)).fetchall())
            shown = con.execute("SELECT COUNT(DISTINCT rater) FROM shown WHERE round = ?", (rnd,)).fetchone()[0]
        return {"answers": sum(per_rater.values()), "raters": per_rater, "items_answered": len(per_item),
                "raters_started": int(shown)}

    def answers(self, rnd: int | None = None) -> pd.DataFrame:
        with self._connect() as con:
            sql = f"SELECT {', '.join(COLUMNS)} FROM answers" + (" WHERE round = ?" if rnd is not None else "") + " ORDER BY id"
            rows = con.execute(sql, (() if rnd is None else (rnd,))).fetchall()
        return pd.DataFrame(rows, columns=list(COLUMNS))

    def export_csv(self) -> str:
        frame = self.answers()
        buf = io.StringIO()
        frame.to_csv(buf, index=False, quoting=csv.QUOTE_MINIMAL)
        return buf.getvalue()


def read_answers(path) -> pd.DataFrame:
    """Answers from a study database or its CSV export (the same columns)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such answers file (a study database or a CSV export)")
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path)
        missing = set(COLUMNS) - set(frame.columns) - {"id"}
        if missing:
            raise ValueError(f"{path} lacks the column(s) {sorted(missing)} of a study export")
        return frame
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM answers ORDER BY id").fetchall()
    finally:
        con.close()
    return pd.DataFrame(rows, columns=list(COLUMNS))


def database_set_id(path) -> str:
    con = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        return con.execute("SELECT value FROM meta WHERE key = 'set_id'").fetchone()[0]
    finally:
        con.close()
