//! The read side: list, resolve, show, search, export, shipping.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Serialize, Serializer};
use serde_json::{json, Value};

use super::{schema, Error};

/// Which events [`Reader::export`] passes on; every part narrows it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportFilter<'a> {
    /// At or after this time (Unix ms).
    pub since_ms: Option<i64>,
    /// One session, named as [`Reader::resolve`] takes it.
    pub session: Option<&'a str>,
    /// With an id above this one: event ids only grow and are never used
    /// again, so the last id an export passed is where the next one starts.
    pub after_id: Option<i64>,
}

/// See [`Reader::overview`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overview {
    pub sessions: i64,
    pub events: i64,
    /// The latest event's time (Unix ms); `None` when empty.
    pub last_at_ms: Option<i64>,
}

/// One recorded session: a proxy run × an agent session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionSummary {
    /// 16 hex characters ([`crate::audit::event::session_id`]).
    pub id: String,
    pub run_id: String,
    /// `X-Claude-Code-Session-Id`; `None` for traffic without one.
    pub agent_session: Option<String>,
    pub run_started_at_ms: i64,
    /// The first event's time.
    pub started_at_ms: i64,
    /// The latest event's time.
    pub last_at_ms: i64,
    pub profile: String,
    pub mode: String,
    pub gateway: Option<String>,
    pub user: Option<String>,
    pub user_agent: Option<String>,
    pub hoopctl_version: String,
    pub events: i64,
    pub requests: i64,
    pub tool_calls: i64,
    /// Tool calls blocked or denied at review, and egress targets denied.
    pub blocked: i64,
    pub errors: i64,
}

const SESSION_COLUMNS: &str = "id, run_id, agent_session, run_started_at, started_at, last_at, \
     profile, mode, gateway, user, user_agent, hoopctl_version, events, requests, tool_calls, \
     blocked, errors";

fn session_from_row(r: &Row<'_>) -> rusqlite::Result<SessionSummary> {
    Ok(SessionSummary {
        id: r.get(0)?,
        run_id: r.get(1)?,
        agent_session: r.get(2)?,
        run_started_at_ms: r.get(3)?,
        started_at_ms: r.get(4)?,
        last_at_ms: r.get(5)?,
        profile: r.get(6)?,
        mode: r.get(7)?,
        gateway: r.get(8)?,
        user: r.get(9)?,
        user_agent: r.get(10)?,
        hoopctl_version: r.get(11)?,
        events: r.get(12)?,
        requests: r.get(13)?,
        tool_calls: r.get(14)?,
        blocked: r.get(15)?,
        errors: r.get(16)?,
    })
}

/// One event as stored, body decompressed.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// `events.id`: increases with every event written (the export and
    /// shipping order).
    pub id: i64,
    pub session_id: String,
    /// Position in the session's chain, from 1.
    pub seq: i64,
    pub at_ms: i64,
    pub kind: String,
    pub request_id: Option<String>,
    pub data: Value,
    /// What search indexes.
    pub text: Option<String>,
    /// Uncompressed.
    pub body: Option<Vec<u8>>,
    /// Hex SHA-256 of the uncompressed body.
    pub body_sha256: Option<String>,
    pub hash: String,
    pub prev_hash: String,
}

impl StoredEvent {
    /// The export (JSONL) and SIEM shape: `id`, `session`, `seq`, `at`
    /// (RFC 3339, milliseconds, UTC), `kind`, `request_id`, `data`, `text`,
    /// `body` (parsed when it is JSON, else a UTF-8 string, lossily; null
    /// when none), `hash`, `prev_hash`.
    pub fn to_json(&self) -> Value {
        let body = self.body.as_ref().map(|b| {
            serde_json::from_slice::<Value>(b)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(b).into_owned()))
        });
        json!({
            "id": self.id,
            "session": self.session_id,
            "seq": self.seq,
            "at": rfc3339_ms(self.at_ms),
            "kind": self.kind,
            "request_id": self.request_id,
            "data": self.data,
            "text": self.text,
            "body": body,
            "hash": self.hash,
            "prev_hash": self.prev_hash,
        })
    }
}

impl Serialize for StoredEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// RFC 3339 in UTC with milliseconds (`2025-01-31T09:15:02.123Z`).
pub fn rfc3339_ms(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => ms.to_string(),
    }
}

/// A search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub event: StoredEvent,
    /// Up to about 160 characters of the event's text around the first
    /// match, whitespace collapsed, `…` where cut.
    pub snippet: String,
}

pub(super) const EVENT_COLUMNS: &str = "id, session_id, seq, at, kind, request_id, data, text, \
     body, body_len, body_sha256, prev_hash, hash";

/// The most a stored body may decompress to: more than any body the proxy
/// records (masked requests and inspected answers stop at 64 MiB), so a
/// larger one was not written by hoopctl.
pub const MAX_STORED_BODY: u64 = 128 * 1024 * 1024;

/// Decompresses the body of one stored zstd blob, refusing to produce more
/// than [`MAX_STORED_BODY`] (a planted blob could expand without bound).
pub(super) fn unpack(blob: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(blob)?
        .take(MAX_STORED_BODY + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 > MAX_STORED_BODY {
        return Err(std::io::Error::other(format!(
            "it decompresses to more than {} MiB",
            MAX_STORED_BODY >> 20
        )));
    }
    Ok(out)
}

fn event_from_row(path: &Path, r: &Row<'_>) -> Result<StoredEvent, Error> {
    let id: i64 = r.get(0)?;
    let corrupt = |reason: String| Error::Corrupt {
        path: path.to_path_buf(),
        event_id: id,
        reason: format!("{reason}; run `hoopctl sessions verify`"),
    };
    let data: String = r.get(6)?;
    let data =
        serde_json::from_str(&data).map_err(|e| corrupt(format!("its data is not JSON ({e})")))?;
    let blob: Option<Vec<u8>> = r.get(8)?;
    let body = match blob {
        None => None,
        Some(blob) => Some(
            unpack(&blob).map_err(|e| corrupt(format!("its body cannot be decompressed ({e})")))?,
        ),
    };
    Ok(StoredEvent {
        id,
        session_id: r.get(1)?,
        seq: r.get(2)?,
        at_ms: r.get(3)?,
        kind: r.get(4)?,
        request_id: r.get(5)?,
        data,
        text: r.get(7)?,
        body,
        body_sha256: r.get(10)?,
        prev_hash: r.get(11)?,
        hash: r.get(12)?,
    })
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reads a store; fine while a [`super::Writer`] writes it (WAL). The
/// connection is `query_only`.
pub struct Reader {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
}

impl Reader {
    /// Opens an existing store (migrating it if it is older than this
    /// binary). A missing file is [`Error::Missing`]: "no recorded sessions
    /// yet at PATH".
    pub fn open(path: &Path) -> Result<Reader, Error> {
        if !path.exists() {
            return Err(Error::Missing {
                path: path.to_path_buf(),
            });
        }
        let conn = schema::connect(path)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(Reader {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sessions active since `since_ms` (all when `None`), most recently
    /// active first.
    pub fn sessions(
        &self,
        since_ms: Option<i64>,
        limit_n: usize,
    ) -> Result<Vec<SessionSummary>, Error> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE (?1 IS NULL OR last_at >= ?1) \
             ORDER BY last_at DESC, id LIMIT ?2"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params![since_ms, limit(limit_n)], session_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Finds a session by its exact id, its agent session id
    /// (`X-Claude-Code-Session-Id`), or a unique prefix (4 characters or
    /// more) of either. Several matches are [`Error::Ambiguous`], listing
    /// them.
    pub fn resolve(&self, id: &str) -> Result<SessionSummary, Error> {
        let id = id.trim();
        if id.is_empty() {
            return Err(Error::NoSuchSession(id.to_string()));
        }
        if let Some(s) = self.find_sessions("id = ?1", id)?.pop() {
            return Ok(s);
        }
        let mut found = self.find_sessions("agent_session = ?1", id)?;
        if found.is_empty() && id.chars().count() >= 4 {
            found = self.find_sessions(
                "substr(id, 1, length(?1)) = ?1 OR substr(agent_session, 1, length(?1)) = ?1",
                id,
            )?;
        }
        match found.len() {
            0 if id.chars().count() < 4 => Err(Error::ShortPrefix(id.to_string())),
            0 => Err(Error::NoSuchSession(id.to_string())),
            1 => Ok(found.remove(0)),
            _ => Err(Error::Ambiguous {
                id: id.to_string(),
                candidates: found
                    .iter()
                    .map(|s| match &s.agent_session {
                        Some(agent) => format!("{} (agent session {agent})", s.id),
                        None => s.id.clone(),
                    })
                    .collect(),
            }),
        }
    }

    fn find_sessions(&self, condition: &str, id: &str) -> Result<Vec<SessionSummary>, Error> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE {condition} \
             ORDER BY last_at DESC LIMIT 20"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([id], session_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A session's events (exact id), in chain order, bodies decompressed.
    pub fn events(&self, session_id: &str) -> Result<Vec<StoredEvent>, Error> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE session_id = ?1 ORDER BY seq");
        self.collect(&sql, params![session_id])
    }

    /// Every event of one request (request, answer, tool calls, decisions,
    /// errors), in the order they were recorded.
    pub fn request(&self, request_id: &str) -> Result<Vec<StoredEvent>, Error> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE request_id = ?1 ORDER BY id");
        self.collect(&sql, params![request_id])
    }

    /// One event by id.
    pub fn event(&self, event_id: i64) -> Result<Option<StoredEvent>, Error> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1");
        Ok(self.collect(&sql, params![event_id])?.pop())
    }

    fn collect(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<StoredEvent>, Error> {
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(event_from_row(&self.path, row)?);
        }
        Ok(out)
    }

    /// Full-text search over what events recorded as text (prompts,
    /// responses, commands), newest first.
    ///
    /// By default `query` is user text: every whitespace-separated word is
    /// searched as a literal (quoted) FTS5 string and all must match, so
    /// `DROP TABLE`, `rm -rf` or `a"b*:c` need no escaping. With `raw` it
    /// is FTS5 query syntax (`OR`, `NEAR`, `prefix*`, `"phrases"`); a
    /// syntax error is [`Error::Query`].
    pub fn search(&self, query: &str, raw: bool, limit_n: usize) -> Result<Vec<Hit>, Error> {
        let fts = if raw {
            query.trim().to_string()
        } else {
            quote_terms(query)
        };
        if fts.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE id IN \
             (SELECT rowid FROM events_fts WHERE events_fts MATCH ?1 ORDER BY rowid DESC LIMIT ?2) \
             ORDER BY id DESC"
        );
        let events = self
            .collect(&sql, params![fts, limit(limit_n)])
            .map_err(|e| match e {
                // A generic SQLITE_ERROR from MATCH: the query's syntax.
                Error::Sqlite(rusqlite::Error::SqliteFailure(f, Some(message)))
                    if f.code == rusqlite::ErrorCode::Unknown =>
                {
                    Error::Query {
                        query: query.to_string(),
                        message,
                    }
                }
                other => other,
            })?;
        let terms = snippet_terms(query, raw);
        Ok(events
            .into_iter()
            .map(|event| {
                let snippet = match &event.text {
                    Some(text) => snippet(text, &terms),
                    None => snippet(&event.data.to_string(), &terms),
                };
                Hit { event, snippet }
            })
            .collect())
    }

    /// Streams the events `filter` selects to `each`, in id order, without
    /// loading them all. Returns how many were passed.
    pub fn export(
        &self,
        filter: &ExportFilter<'_>,
        each: &mut dyn FnMut(StoredEvent) -> Result<(), Error>,
    ) -> Result<u64, Error> {
        let session_id = match filter.session {
            Some(s) => Some(self.resolve(s)?.id),
            None => None,
        };
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE (?1 IS NULL OR at >= ?1) \
             AND (?2 IS NULL OR session_id = ?2) AND (?3 IS NULL OR id > ?3) ORDER BY id"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(params![filter.since_ms, session_id, filter.after_id])?;
        let mut n = 0u64;
        while let Some(row) = rows.next()? {
            each(event_from_row(&self.path, row)?)?;
            n += 1;
        }
        Ok(n)
    }

    /// Up to `limit` events with an id above `event_id`, in id order: what a
    /// shipper sends next after its cursor.
    pub fn events_after(&self, event_id: i64, limit_n: usize) -> Result<Vec<StoredEvent>, Error> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id > ?1 ORDER BY id LIMIT ?2");
        self.collect(&sql, params![event_id, limit(limit_n)])
    }

    /// The shipper `name`'s cursor (0 when it never ran).
    pub fn cursor(&self, name: &str) -> Result<i64, Error> {
        super::cursor_on(&self.conn, name)
    }

    /// What the store holds, in brief (`hoopctl status`): read from the
    /// sessions' counters, so it costs no scan of the events.
    pub fn overview(&self) -> Result<Overview, Error> {
        Ok(self.conn.query_row(
            "SELECT count(*), coalesce(sum(events), 0), max(last_at) FROM sessions",
            [],
            |r| {
                Ok(Overview {
                    sessions: r.get(0)?,
                    events: r.get(1)?,
                    last_at_ms: r.get(2)?,
                })
            },
        )?)
    }

    /// The highest event id in the store (0 when empty).
    pub fn last_event_id(&self) -> Result<i64, Error> {
        Ok(self
            .conn
            .query_row("SELECT max(id) FROM events", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .optional()?
            .flatten()
            .unwrap_or(0))
    }
}

/// User text to an FTS5 query: each whitespace-separated word as a quoted
/// string (inner `"` doubled), joined by spaces (AND). Words with no letter
/// or digit (`-`, `*`, `:`) cannot match anything and are dropped.
pub fn quote_terms(query: &str) -> String {
    query
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The words to look for when cutting a snippet.
fn snippet_terms(query: &str, raw: bool) -> Vec<String> {
    if raw {
        query
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .filter(|w| !w.is_empty() && !matches!(*w, "AND" | "OR" | "NOT" | "NEAR"))
            .map(str::to_string)
            .collect()
    } else {
        query
            .split_whitespace()
            .filter(|w| w.chars().any(char::is_alphanumeric))
            .map(str::to_string)
            .collect()
    }
}

/// About 160 characters of `text` around the earliest match of any term.
pub(super) fn snippet(text: &str, terms: &[String]) -> String {
    const BEFORE: usize = 50;
    const AFTER: usize = 110;
    let hit = terms
        .iter()
        .filter_map(|t| {
            find_ci(text, t)
                .or_else(|| find_ci(text, t.trim_matches(|c: char| !c.is_alphanumeric())))
        })
        .min();
    let (from, to) = match hit {
        Some((start, end)) => {
            let from = text[..start]
                .char_indices()
                .rev()
                .nth(BEFORE - 1)
                .map_or(0, |(i, _)| i);
            let to = text[end..]
                .char_indices()
                .nth(AFTER)
                .map_or(text.len(), |(i, _)| end + i);
            (from, to)
        }
        None => (
            0,
            text.char_indices()
                .nth(BEFORE + AFTER)
                .map_or(text.len(), |(i, _)| i),
        ),
    };
    let mut out = String::new();
    if from > 0 {
        out.push('…');
    }
    out.push_str(
        &text[from..to]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    );
    if to < text.len() {
        out.push('…');
    }
    out
}

/// Case-insensitive find: the byte range of the first match.
fn find_ci(hay: &str, needle: &str) -> Option<(usize, usize)> {
    let needle: Vec<char> = needle.chars().flat_map(char::to_lowercase).collect();
    if needle.is_empty() {
        return None;
    }
    'start: for (start, _) in hay.char_indices() {
        let mut want = needle.iter();
        let mut end = start;
        for (i, c) in hay[start..].char_indices() {
            for lower in c.to_lowercase() {
                match want.next() {
                    Some(w) if *w == lower => {}
                    Some(_) => continue 'start,
                    None => return Some((start, end)),
                }
            }
            end = start + i + c.len_utf8();
            if want.len() == 0 {
                return Some((start, end));
            }
        }
        if want.len() > 0 {
            return None;
        }
    }
    None
}
