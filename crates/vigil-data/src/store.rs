//! The SQLite store ([`Store`]): one file, WAL journal, schema migrations keyed by
//! `PRAGMA user_version`, and a fixed `PRAGMA application_id` so a foreign SQLite file is
//! recognised and refused with a clear message instead of being modified.
//!
//! Tables: `samples` (the seed's `training_data` generalised, see [`Sample`]) and `runs`
//! (provenance: every import / generate / split writes one row with its parameters and counts).

use crate::error::{DataError, Result};
use crate::sample::{Sample, SampleKind, Split};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use vigil_taxonomy::Severity;

/// "VGIL" in ASCII.
pub const APPLICATION_ID: i64 = 0x5647_494C;
/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 1;

const MIGRATIONS: &[&str] = &[
    // 1: samples + runs.
    "CREATE TABLE samples (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN ('http_pair','code','report','chat')),
        request TEXT, response TEXT, code TEXT,
        language TEXT, framework TEXT, endpoint TEXT, title TEXT,
        analysis TEXT NOT NULL DEFAULT '',
        is_vulnerable INTEGER NOT NULL DEFAULT 0,
        vuln_type TEXT, cwe INTEGER, severity TEXT,
        fixed_code TEXT,
        source TEXT NOT NULL DEFAULT '',
        group_id TEXT NOT NULL,
        split TEXT CHECK (split IS NULL OR split IN ('train','valid','test')),
        content_hash TEXT NOT NULL UNIQUE,
        meta TEXT,
        run_id INTEGER REFERENCES runs(id),
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
    );
    CREATE INDEX samples_group ON samples(group_id);
    CREATE INDEX samples_split ON samples(split);
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        action TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT '',
        params TEXT NOT NULL DEFAULT '{}',
        added INTEGER NOT NULL DEFAULT 0,
        skipped INTEGER NOT NULL DEFAULT 0,
        started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),
        finished_at TEXT
    );",
];

/// What an insert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsertStats {
    pub added: usize,
    /// Rows whose content hash was already present.
    pub skipped: usize,
}

/// Which rows to read.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub split: Option<Split>,
    pub kind: Option<SampleKind>,
    pub limit: Option<usize>,
}

/// A provenance row.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: i64,
    pub action: String,
    pub source: String,
    pub params: String,
    pub added: i64,
    pub skipped: i64,
    pub started_at: String,
}

/// An open dataset file.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

const COLS: &str = "id, kind, request, response, code, language, framework, endpoint, title, \
    analysis, is_vulnerable, vuln_type, cwe, severity, fixed_code, source, group_id, split, meta";

impl Store {
    /// Open an existing store, or create it (and its schema) when the file does not exist.
    /// An existing file that is not SQLite, or is SQLite but not ours, is refused.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let fresh = !path.exists()
            || std::fs::metadata(&path)
                .map(|m| m.len() == 0)
                .unwrap_or(false);
        let sq = |source| DataError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sq)?;
        let mut store = Store {
            conn,
            path: path.clone(),
        };
        if !fresh {
            store.check_ours()?;
        }
        store
            .conn
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
            )
            .map_err(|e| store.classify(e))?;
        store.migrate()?;
        Ok(store)
    }

    /// Open a store read-only-in-spirit for inspection; same checks as [`Store::open`] but the
    /// file must already exist.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Store> {
        let p = path.as_ref();
        if !p.exists() {
            return Err(DataError::Other(format!(
                "{}: no dataset here; create one with `vigil data init --db {}`",
                p.display(),
                p.display()
            )));
        }
        Store::open(p)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw connection, for read-only reporting queries.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    fn classify(&self, e: rusqlite::Error) -> DataError {
        let msg = e.to_string();
        if msg.contains("not a database") || msg.contains("file is encrypted") {
            DataError::Foreign {
                path: self.path.clone(),
                reason: "the file is not an SQLite database".into(),
            }
        } else {
            DataError::Sqlite {
                path: self.path.clone(),
                source: e,
            }
        }
    }

    fn check_ours(&self) -> Result<()> {
        let app: i64 = self
            .conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| self.classify(e))?;
        if app == APPLICATION_ID {
            return Ok(());
        }
        let tables: Vec<String> = {
            let mut st = self
                .conn
                .prepare("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
                .map_err(|e| self.classify(e))?;
            let rows = st
                .query_map([], |r| r.get(0))
                .map_err(|e| self.classify(e))?;
            rows.collect::<std::result::Result<_, _>>()
                .map_err(|e| self.classify(e))?
        };
        if tables.is_empty() && app == 0 {
            return Ok(()); // an empty SQLite file: adopt it
        }
        let hint = if tables.iter().any(|t| t == "training_data") {
            " (it has a `training_data` table: import it with `vigil data import --format seed-sqlite FILE`)"
        } else {
            ""
        };
        Err(DataError::Foreign {
            path: self.path.clone(),
            reason: format!(
                "application_id is {app:#x}, tables [{}]{hint}",
                tables.join(", ")
            ),
        })
    }

    fn migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let sq = |source| DataError::Sqlite {
            path: path.clone(),
            source,
        };
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sq)?;
        if version > SCHEMA_VERSION {
            return Err(DataError::TooNew {
                path: self.path.clone(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction().map_err(sq)?;
            tx.execute_batch(sql).map_err(sq)?;
            tx.execute_batch(&format!(
                "PRAGMA user_version = {}; PRAGMA application_id = {APPLICATION_ID};",
                i + 1
            ))
            .map_err(sq)?;
            tx.commit().map_err(sq)?;
        }
        Ok(())
    }

    fn sq(&self) -> impl Fn(rusqlite::Error) -> DataError + '_ {
        move |source| DataError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Insert samples in ONE transaction (all or nothing), recording a run. Rows whose content
    /// hash is already stored are skipped, so re-importing a file adds nothing.
    pub fn insert_all(
        &mut self,
        samples: &[Sample],
        action: &str,
        source: &str,
        params_json: &str,
        mut progress: impl FnMut(usize),
    ) -> Result<InsertStats> {
        let path = self.path.clone();
        let sq = |source| DataError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sq)?;
        tx.execute(
            "INSERT INTO runs(action, source, params) VALUES (?1, ?2, ?3)",
            params![action, source, params_json],
        )
        .map_err(sq)?;
        let run_id = tx.last_insert_rowid();
        let mut stats = InsertStats::default();
        {
            let mut st = tx
                .prepare(
                    "INSERT OR IGNORE INTO samples (kind, request, response, code, language, framework,
                     endpoint, title, analysis, is_vulnerable, vuln_type, cwe, severity, fixed_code,
                     source, group_id, split, content_hash, meta, run_id)
                     VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20)",
                )
                .map_err(sq)?;
            for (i, s) in samples.iter().enumerate() {
                let mut s2;
                let s = if s.group_id.is_empty() {
                    s2 = s.clone();
                    s2.ensure_group();
                    &s2
                } else {
                    s
                };
                let n = st
                    .execute(params![
                        s.kind.as_str(),
                        s.request,
                        s.response,
                        s.code,
                        s.language,
                        s.framework,
                        s.endpoint,
                        s.title,
                        s.analysis,
                        s.is_vulnerable,
                        s.vuln_type,
                        s.cwe,
                        s.severity.map(|x| x.as_str()),
                        s.fixed_code,
                        s.source,
                        s.group_id,
                        s.split.map(|x| x.as_str()),
                        s.content_hash(),
                        s.meta.as_ref().map(|m| m.to_string()),
                        run_id,
                    ])
                    .map_err(sq)?;
                if n == 1 {
                    stats.added += 1;
                } else {
                    stats.skipped += 1;
                }
                if i % 1000 == 999 {
                    progress(i + 1);
                }
            }
        }
        tx.execute(
            "UPDATE runs SET added=?1, skipped=?2, finished_at=strftime('%Y-%m-%dT%H:%M:%SZ','now') WHERE id=?3",
            params![stats.added as i64, stats.skipped as i64, run_id],
        )
        .map_err(sq)?;
        tx.commit().map_err(sq)?;
        progress(samples.len());
        Ok(stats)
    }

    /// Record a run that changes no rows' content (split, check).
    pub fn record_run(&self, action: &str, params_json: &str, changed: usize) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO runs(action, params, added, finished_at) VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%SZ','now'))",
                params![action, params_json, changed as i64],
            )
            .map_err(self.sq())?;
        Ok(())
    }

    /// Number of samples.
    pub fn count(&self) -> Result<usize> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM samples", [], |r| r.get(0))
            .map_err(self.sq())?;
        Ok(n as usize)
    }

    /// Read samples in id order, calling `f` for each; a row that cannot be decoded (for
    /// example a kind or severity written by hand) is an error naming its id.
    pub fn for_each(&self, filter: &Filter, mut f: impl FnMut(Sample) -> Result<()>) -> Result<()> {
        let mut sql = format!("SELECT {COLS} FROM samples WHERE 1=1");
        if let Some(s) = filter.split {
            sql.push_str(&format!(" AND split = '{}'", s.as_str()));
        }
        if let Some(k) = filter.kind {
            sql.push_str(&format!(" AND kind = '{}'", k.as_str()));
        }
        sql.push_str(" ORDER BY id");
        if let Some(l) = filter.limit {
            sql.push_str(&format!(" LIMIT {l}"));
        }
        let mut st = self.conn.prepare(&sql).map_err(self.sq())?;
        let mut rows = st.query([]).map_err(self.sq())?;
        while let Some(row) = rows.next().map_err(self.sq())? {
            let s = self.decode(row)?;
            f(s)?;
        }
        Ok(())
    }

    /// All samples matching a filter.
    pub fn samples(&self, filter: &Filter) -> Result<Vec<Sample>> {
        let mut out = Vec::new();
        self.for_each(filter, |s| {
            out.push(s);
            Ok(())
        })?;
        Ok(out)
    }

    /// One sample by id.
    pub fn get(&self, id: i64) -> Result<Option<Sample>> {
        let sql = format!("SELECT {COLS} FROM samples WHERE id = ?1");
        let mut st = self.conn.prepare(&sql).map_err(self.sq())?;
        let mut rows = st.query([id]).map_err(self.sq())?;
        match rows.next().map_err(self.sq())? {
            Some(row) => Ok(Some(self.decode(row)?)),
            None => Ok(None),
        }
    }

    fn decode(&self, row: &rusqlite::Row<'_>) -> Result<Sample> {
        let sq = self.sq();
        let id: i64 = row.get(0).map_err(&sq)?;
        let bad = |what: &str, v: &str| {
            DataError::Invalid(format!(
                "{}: sample {id} has an unknown {what} {v:?}",
                self.path.display()
            ))
        };
        let kind_s: String = row.get(1).map_err(&sq)?;
        let kind = SampleKind::parse(&kind_s).ok_or_else(|| bad("kind", &kind_s))?;
        let sev: Option<String> = row.get(13).map_err(&sq)?;
        let severity = match sev {
            Some(s) => Some(Severity::parse(&s).ok_or_else(|| bad("severity", &s))?),
            None => None,
        };
        let split: Option<String> = row.get(17).map_err(&sq)?;
        let split = match split {
            Some(s) => Some(Split::parse(&s).ok_or_else(|| bad("split", &s))?),
            None => None,
        };
        let meta: Option<String> = row.get(18).map_err(&sq)?;
        let meta = match meta {
            Some(m) => Some(serde_json::from_str(&m).map_err(|e| bad("meta", &e.to_string()))?),
            None => None,
        };
        let cwe: Option<i64> = row.get(12).map_err(&sq)?;
        Ok(Sample {
            id: Some(id),
            kind,
            request: row.get(2).map_err(&sq)?,
            response: row.get(3).map_err(&sq)?,
            code: row.get(4).map_err(&sq)?,
            language: row.get(5).map_err(&sq)?,
            framework: row.get(6).map_err(&sq)?,
            endpoint: row.get(7).map_err(&sq)?,
            title: row.get(8).map_err(&sq)?,
            analysis: row.get(9).map_err(&sq)?,
            is_vulnerable: row.get(10).map_err(&sq)?,
            vuln_type: row.get(11).map_err(&sq)?,
            cwe: cwe.and_then(|c| u32::try_from(c).ok()),
            severity,
            fixed_code: row.get(14).map_err(&sq)?,
            source: row.get(15).map_err(&sq)?,
            group_id: row.get(16).map_err(&sq)?,
            split,
            meta,
        })
    }

    /// (id, group_id, split) of every row, in id order — what the splitter needs.
    pub fn split_keys(&self) -> Result<Vec<(i64, String, Option<Split>)>> {
        let mut st = self
            .conn
            .prepare("SELECT id, group_id, split FROM samples ORDER BY id")
            .map_err(self.sq())?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(self.sq())?;
        let mut out = Vec::new();
        for r in rows {
            let (id, g, s) = r.map_err(self.sq())?;
            out.push((id, g, s.and_then(|s| Split::parse(&s))));
        }
        Ok(out)
    }

    /// Set splits in one transaction.
    pub fn set_splits(&mut self, assignments: &[(i64, Split)]) -> Result<()> {
        let path = self.path.clone();
        let sq = |source| DataError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sq)?;
        {
            let mut st = tx
                .prepare("UPDATE samples SET split = ?1 WHERE id = ?2")
                .map_err(sq)?;
            for (id, s) in assignments {
                st.execute(params![s.as_str(), id]).map_err(sq)?;
            }
        }
        tx.commit().map_err(sq)?;
        Ok(())
    }

    /// Clear every split (for `vigil data split --reset`).
    pub fn clear_splits(&mut self) -> Result<usize> {
        let n = self
            .conn
            .execute(
                "UPDATE samples SET split = NULL WHERE split IS NOT NULL",
                [],
            )
            .map_err(self.sq())?;
        Ok(n)
    }

    /// `(value, count)` for a column, most frequent first; `NULL` shows as `(none)`.
    pub fn distribution(&self, column: &str, filter: &Filter) -> Result<Vec<(String, usize)>> {
        const ALLOWED: &[&str] = &[
            "kind",
            "language",
            "framework",
            "vuln_type",
            "severity",
            "split",
            "source",
            "is_vulnerable",
            "cwe",
        ];
        if !ALLOWED.contains(&column) {
            return Err(DataError::Other(format!("unknown column {column:?}")));
        }
        let mut sql = format!(
            "SELECT COALESCE(CAST({column} AS TEXT), '(none)'), COUNT(*) FROM samples WHERE 1=1"
        );
        if let Some(s) = filter.split {
            sql.push_str(&format!(" AND split = '{}'", s.as_str()));
        }
        if let Some(k) = filter.kind {
            sql.push_str(&format!(" AND kind = '{}'", k.as_str()));
        }
        sql.push_str(" GROUP BY 1 ORDER BY 2 DESC, 1");
        let mut st = self.conn.prepare(&sql).map_err(self.sq())?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as usize))
            })
            .map_err(self.sq())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.sq())
    }

    /// The provenance table, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<Run>> {
        let mut st = self
            .conn
            .prepare("SELECT id, action, source, params, added, skipped, started_at FROM runs ORDER BY id DESC LIMIT ?1")
            .map_err(self.sq())?;
        let rows = st
            .query_map([limit as i64], |r| {
                Ok(Run {
                    id: r.get(0)?,
                    action: r.get(1)?,
                    source: r.get(2)?,
                    params: r.get(3)?,
                    added: r.get(4)?,
                    skipped: r.get(5)?,
                    started_at: r.get(6)?,
                })
            })
            .map_err(self.sq())?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(self.sq())
    }

    /// Does a table with this name exist? (Used by the seed importer on foreign files.)
    pub fn has_table(conn: &Connection, name: &str) -> bool {
        conn.query_row(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1",
            [name],
            |_| Ok(()),
        )
        .optional()
        .ok()
        .flatten()
        .is_some()
    }
}
