//! Department queues: cases the engine routed, persisted so they survive a
//! restart, with an audit trail of every state change.
//!
//! [`CaseStore`] is the seam for a server database later; [`SqliteStore`] is
//! the embedded default (one file, WAL mode, migrations at start-up). Stored
//! text is the engine's masked text, never the raw complaint.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::engine::Triage;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("case `{0}` not found")]
    NotFound(String),
    #[error("case `{id}` is {status}: {action} is not allowed")]
    Conflict {
        id: String,
        status: String,
        action: String,
    },
    #[error("storage failed: {0}")]
    Backend(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: String,
    pub actor: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub id: String,
    pub queue: String,
    /// `open`, `acknowledged` or `resolved`.
    pub status: String,
    pub customer_id: Option<String>,
    /// The case this one repeats (same customer, same category, still open).
    pub repeat_of: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub triage: Triage,
    pub audit: Vec<AuditEntry>,
}

/// One line of a queue listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseSummary {
    pub id: String,
    pub status: String,
    /// Axis → label, as the engine answered (after any rule raises).
    pub labels: BTreeMap<String, String>,
    /// The deadline that matters now: first response until acknowledged, then resolution.
    pub next_due: String,
    pub overdue: bool,
    pub text_masked: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    pub queue: String,
    pub open: u64,
    pub acknowledged: u64,
    pub overdue: u64,
    pub nearest_deadline: Option<String>,
}

/// A state change on a case.
#[derive(Debug, Clone)]
pub enum Transition {
    Acknowledge,
    Resolve { note: String },
}

/// Persistence for cases and their audit trail.
pub trait CaseStore: Send + Sync {
    /// Store `triage` as a case unless a case with its id exists; returns the
    /// stored case and whether it was created now. `repeat_key` is what repeat
    /// detection compares (the label of the configured axis).
    fn insert_if_absent(
        &self,
        triage: &Triage,
        customer_id: Option<&str>,
        repeat_key: &str,
        repeat_of: Option<&str>,
        actor: &str,
    ) -> Result<(Case, bool), StoreError>;
    fn get(&self, id: &str) -> Result<Option<Case>, StoreError>;
    /// An unresolved case of `customer_id` in `category`, if any.
    fn open_case_for(
        &self,
        customer_id: &str,
        category: &str,
    ) -> Result<Option<String>, StoreError>;
    fn list_queue(
        &self,
        queue: &str,
        limit: u32,
        offset: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<CaseSummary>, StoreError>;
    fn queue_stats(&self, now: DateTime<Utc>) -> Result<Vec<QueueStats>, StoreError>;
    fn transition(&self, id: &str, t: Transition, actor: &str) -> Result<Case, StoreError>;
    fn ping(&self) -> Result<(), StoreError>;
    /// Flush and close; later calls fail.
    fn close(&self) -> Result<(), StoreError>;
}

const MIGRATIONS: &[&str] = &[
    // 1: cases and audit trail
    "CREATE TABLE cases (
        id TEXT PRIMARY KEY,
        queue TEXT NOT NULL,
        status TEXT NOT NULL,
        customer_id TEXT,
        repeat_key TEXT NOT NULL,
        labels TEXT NOT NULL,
        repeat_of TEXT,
        first_response_due INTEGER NOT NULL,
        resolution_due INTEGER NOT NULL,
        next_due INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        triage TEXT NOT NULL
     );
     CREATE INDEX cases_queue_due ON cases(queue, status, next_due);
     CREATE INDEX cases_customer ON cases(customer_id, repeat_key, status);
     CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        case_id TEXT NOT NULL REFERENCES cases(id),
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        note TEXT
     );
     CREATE INDEX audit_case ON audit(case_id, seq);",
];

fn ts(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.timestamp())
        .unwrap_or(i64::MAX)
}

fn fmt_ts(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .map(|d| {
            d.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
                .to_rfc3339()
        })
        .unwrap_or_default()
}

fn now_string() -> String {
    Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// SQLite-backed store: one file under the data directory.
pub struct SqliteStore {
    conn: Mutex<Option<Connection>>,
}

impl SqliteStore {
    /// Open (creating if needed) `dir/cases.sqlite3` and run pending migrations.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Backend(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let conn = Connection::open(dir.join("cases.sqlite3"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")?;
        let current: i64 = conn.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![i as i64 + 1, now_string()],
            )?;
            tx.commit()?;
        }
        Ok(Self {
            conn: Mutex::new(Some(conn)),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(c) => f(c),
            None => Err(StoreError::Backend("the store is closed".into())),
        }
    }

    fn load(conn: &Connection, id: &str) -> Result<Option<Case>, StoreError> {
        let row = conn
            .query_row(
                "SELECT id, queue, status, customer_id, repeat_of, created_at, updated_at, triage FROM cases WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, String>(7)?,
                    ))
                },
            )
            .optional()?;
        let Some((id, queue, status, customer_id, repeat_of, created_at, updated_at, triage)) = row
        else {
            return Ok(None);
        };
        let triage: Triage = serde_json::from_str(&triage)
            .map_err(|e| StoreError::Backend(format!("case {id} is corrupt: {e}")))?;
        let mut stmt = conn.prepare_cached(
            "SELECT at, actor, action, note FROM audit WHERE case_id = ?1 ORDER BY seq",
        )?;
        let audit = stmt
            .query_map([&id], |r| {
                Ok(AuditEntry {
                    at: r.get(0)?,
                    actor: r.get(1)?,
                    action: r.get(2)?,
                    note: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Case {
            id,
            queue,
            status,
            customer_id,
            repeat_of,
            created_at,
            updated_at,
            triage,
            audit,
        }))
    }
}

impl CaseStore for SqliteStore {
    fn insert_if_absent(
        &self,
        t: &Triage,
        customer_id: Option<&str>,
        repeat_key: &str,
        repeat_of: Option<&str>,
        actor: &str,
    ) -> Result<(Case, bool), StoreError> {
        self.with(|conn| {
            let tx = conn.unchecked_transaction()?;
            let now = now_string();
            let json = serde_json::to_string(t).map_err(|e| StoreError::Backend(e.to_string()))?;
            let labels: BTreeMap<&str, &str> = t.labels.iter().map(|(a, l)| (a.as_str(), l.value.as_str())).collect();
            let labels = serde_json::to_string(&labels).map_err(|e| StoreError::Backend(e.to_string()))?;
            let first = ts(&t.route.first_response_due);
            let created = tx.execute(
                "INSERT OR IGNORE INTO cases (id, queue, status, customer_id, repeat_key, labels, repeat_of,
                    first_response_due, resolution_due, next_due, created_at, updated_at, triage)
                 VALUES (?1, ?2, 'open', ?3, ?4, ?5, ?6, ?7, ?8, ?7, ?9, ?9, ?10)",
                params![t.id, t.route.queue, customer_id, repeat_key, labels, repeat_of, first, ts(&t.route.resolution_due), now, json],
            )? == 1;
            if created {
                let note = format!("routed to {}{}", t.route.queue, repeat_of.map(|r| format!(" (repeat of {r})")).unwrap_or_default());
                tx.execute("INSERT INTO audit (case_id, at, actor, action, note) VALUES (?1, ?2, ?3, 'created', ?4)", params![t.id, now, actor, note])?;
            }
            tx.commit()?;
            let case = Self::load(conn, &t.id)?.ok_or_else(|| StoreError::NotFound(t.id.clone()))?;
            Ok((case, created))
        })
    }

    fn get(&self, id: &str) -> Result<Option<Case>, StoreError> {
        self.with(|conn| Self::load(conn, id))
    }

    fn open_case_for(
        &self,
        customer_id: &str,
        repeat_key: &str,
    ) -> Result<Option<String>, StoreError> {
        self.with(|conn| {
            Ok(conn
                .query_row(
                    "SELECT id FROM cases WHERE customer_id = ?1 AND repeat_key = ?2 AND status != 'resolved' ORDER BY created_at LIMIT 1",
                    params![customer_id, repeat_key],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }

    fn list_queue(
        &self,
        queue: &str,
        limit: u32,
        offset: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<CaseSummary>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, status, labels, next_due, created_at, json_extract(triage, '$.text_masked')
                 FROM cases WHERE queue = ?1 AND status != 'resolved' ORDER BY next_due, created_at LIMIT ?2 OFFSET ?3",
            )?;
            let rows = stmt.query_map(params![queue, limit, offset], |r| {
                let due: i64 = r.get(3)?;
                let labels: String = r.get(2)?;
                Ok(CaseSummary {
                    id: r.get(0)?,
                    status: r.get(1)?,
                    labels: serde_json::from_str(&labels).unwrap_or_default(),
                    next_due: fmt_ts(due),
                    overdue: due < now.timestamp(),
                    created_at: r.get(4)?,
                    text_masked: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn queue_stats(&self, now: DateTime<Utc>) -> Result<Vec<QueueStats>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT queue,
                        SUM(status = 'open'), SUM(status = 'acknowledged'), SUM(next_due < ?1), MIN(next_due)
                 FROM cases WHERE status != 'resolved' GROUP BY queue ORDER BY queue",
            )?;
            let rows = stmt.query_map([now.timestamp()], |r| {
                Ok(QueueStats {
                    queue: r.get(0)?,
                    open: r.get::<_, i64>(1)? as u64,
                    acknowledged: r.get::<_, i64>(2)? as u64,
                    overdue: r.get::<_, i64>(3)? as u64,
                    nearest_deadline: r.get::<_, Option<i64>>(4)?.map(fmt_ts),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn transition(&self, id: &str, t: Transition, actor: &str) -> Result<Case, StoreError> {
        self.with(|conn| {
            let tx = conn.unchecked_transaction()?;
            let row: Option<(String, i64)> =
                tx.query_row("SELECT status, resolution_due FROM cases WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
            let Some((status, resolution_due)) = row else {
                return Err(StoreError::NotFound(id.to_owned()));
            };
            let now = now_string();
            let (action, note) = match &t {
                Transition::Acknowledge => ("acknowledge", None),
                Transition::Resolve { note } => ("resolve", Some(note.clone())),
            };
            let allowed = match t {
                Transition::Acknowledge => status == "open",
                Transition::Resolve { .. } => status != "resolved",
            };
            if !allowed {
                return Err(StoreError::Conflict { id: id.to_owned(), status, action: action.into() });
            }
            match t {
                Transition::Acknowledge => {
                    tx.execute("UPDATE cases SET status = 'acknowledged', next_due = ?2, updated_at = ?3 WHERE id = ?1", params![id, resolution_due, now])?
                }
                Transition::Resolve { .. } => tx.execute("UPDATE cases SET status = 'resolved', updated_at = ?2 WHERE id = ?1", params![id, now])?,
            };
            tx.execute("INSERT INTO audit (case_id, at, actor, action, note) VALUES (?1, ?2, ?3, ?4, ?5)", params![id, now, actor, action, note])?;
            tx.commit()?;
            Self::load(conn, id)?.ok_or_else(|| StoreError::NotFound(id.to_owned()))
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.with(|conn| {
            Ok(conn
                .query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())?)
        })
    }

    fn close(&self) -> Result<(), StoreError> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(conn) = guard.take() {
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
            conn.close().map_err(|(_, e)| StoreError::from(e))?;
        }
        Ok(())
    }
}
