//! Verifying the hash chains: the first broken link of each session.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::chain::{hex, sha256_hex, unhex32, Canon};
use super::read::{unpack, Reader};
use super::Error;

/// The outcome for one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub session_id: String,
    /// Events found for the session.
    pub events: i64,
    pub ok: bool,
    /// The first link that does not hold, in chain order.
    pub first_broken: Option<Broken>,
}

/// Where and why a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    /// The chain position (`seq`) that does not hold; for a missing event,
    /// the missing position. 0 when the session row itself is missing.
    pub seq: i64,
    /// The row found at that position, if any.
    pub event_id: Option<i64>,
    pub reason: String,
}

/// One row as verification reads it.
struct Row {
    id: i64,
    seq: i64,
    at: i64,
    kind: String,
    request_id: Option<String>,
    data: String,
    text: Option<String>,
    body: Option<Vec<u8>>,
    body_len: Option<i64>,
    body_sha256: Option<String>,
    prev_hash: String,
    hash: String,
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

impl Reader {
    /// Whether the store ends below what its marker knows was committed
    /// (see [`super::marker`]): `Some(why)` when it does.
    pub fn behind(&self, marker: &super::marker::Marker) -> Result<Option<String>, Error> {
        super::marker::behind(&self.conn, marker)
    }

    /// Recomputes the hash chain of one session (resolved like
    /// [`Reader::resolve`]; a session whose row was deleted is still found
    /// by its exact id) or of every session, and reports the first broken
    /// link of each: an edited event (any hashed column, the body blob, the
    /// hash), a deleted event (a gap, or a head the chain no longer
    /// reaches), inserted or reordered rows.
    pub fn verify(&self, session: Option<&str>) -> Result<Vec<Verdict>, Error> {
        let ids: Vec<String> = match session {
            Some(s) => match self.resolve(s) {
                Ok(found) => vec![found.id],
                Err(Error::NoSuchSession(_)) if self.has_orphan_events(s)? => vec![s.to_string()],
                Err(e) => return Err(e),
            },
            None => {
                let mut stmt = self.conn.prepare(
                    "SELECT id FROM (SELECT id, started_at AS t FROM sessions \
                     UNION SELECT DISTINCT session_id, NULL FROM events \
                     WHERE session_id NOT IN (SELECT id FROM sessions)) ORDER BY t IS NULL, t, id",
                )?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            }
        };
        ids.iter().map(|id| self.verify_session(id)).collect()
    }

    fn has_orphan_events(&self, id: &str) -> Result<bool, Error> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM events WHERE session_id = ?1 LIMIT 1",
                [id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn verify_session(&self, id: &str) -> Result<Verdict, Error> {
        let events: i64 = self.conn.query_row(
            "SELECT count(*) FROM events WHERE session_id = ?1",
            [id],
            |r| r.get(0),
        )?;
        let first_broken = self.first_broken(id)?;
        Ok(Verdict {
            session_id: id.to_string(),
            events,
            ok: first_broken.is_none(),
            first_broken,
        })
    }

    fn first_broken(&self, id: &str) -> Result<Option<Broken>, Error> {
        let mut stmt = self.conn.prepare(
            "SELECT id, seq, at, kind, request_id, data, text, body, body_len, body_sha256, \
             prev_hash, hash FROM events WHERE session_id = ?1 ORDER BY seq",
        )?;
        let mut rows = stmt.query([id])?;
        let mut prev = [0u8; 32];
        let mut prev_id: Option<i64> = None;
        let mut expected = 1i64;
        let mut count = 0i64;
        while let Some(r) = rows.next()? {
            let row = Row {
                id: r.get(0)?,
                seq: r.get(1)?,
                at: r.get(2)?,
                kind: r.get(3)?,
                request_id: r.get(4)?,
                data: r.get(5)?,
                text: r.get(6)?,
                body: r.get(7)?,
                body_len: r.get(8)?,
                body_sha256: r.get(9)?,
                prev_hash: r.get(10)?,
                hash: r.get(11)?,
            };
            count += 1;
            let at = |reason: String| {
                Ok(Some(Broken {
                    seq: row.seq,
                    event_id: Some(row.id),
                    reason,
                }))
            };
            if row.seq > expected {
                let reason = if row.seq == expected + 1 {
                    format!("seq {expected} missing (event deleted)")
                } else {
                    format!("seq {expected} to {} missing (events deleted)", row.seq - 1)
                };
                return Ok(Some(Broken {
                    seq: expected,
                    event_id: None,
                    reason,
                }));
            }
            if row.seq < expected {
                return at(format!(
                    "seq {} appears again after seq {} (event inserted or renumbered)",
                    row.seq,
                    expected - 1
                ));
            }
            if let Some(reason) = body_problem(&row) {
                return at(reason);
            }
            let computed = Canon {
                session_id: id,
                seq: row.seq,
                at_ms: row.at,
                kind: &row.kind,
                request_id: row.request_id.as_deref(),
                data: &row.data,
                text: row.text.as_deref(),
                body_sha256: row.body_sha256.as_deref(),
            }
            .hash(&prev);
            if hex(&computed) != row.hash {
                return at(self.diagnose(id, &row, &prev, &computed, prev_id)?);
            }
            if row.prev_hash != hex(&prev) {
                return at("prev_hash column edited (it does not name the previous event)".into());
            }
            if prev_id.is_some_and(|p| row.id < p) {
                return at("out of order (rows reordered: ids do not follow the chain)".into());
            }
            prev = computed;
            prev_id = Some(row.id);
            expected = row.seq + 1;
        }
        drop(rows);
        self.check_head(id, expected - 1, &hex(&prev), count)
    }

    /// Why a row's recomputed hash differs from the stored one.
    fn diagnose(
        &self,
        id: &str,
        row: &Row,
        prev: &[u8; 32],
        computed: &[u8; 32],
        prev_id: Option<i64>,
    ) -> Result<String, Error> {
        let next: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT id, prev_hash FROM events WHERE session_id = ?1 AND seq > ?2 \
                 ORDER BY seq LIMIT 1",
                params![id, row.seq],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let reordered = prev_id.is_some_and(|p| row.id < p)
            || next.as_ref().is_some_and(|(next_id, _)| *next_id < row.id);
        if reordered {
            return Ok("out of order (rows reordered)".into());
        }
        if next.is_some_and(|(_, next_prev)| next_prev == hex(computed)) {
            return Ok("hash column edited".into());
        }
        if row.prev_hash != hex(prev) {
            if let Some(own_prev) = unhex32(&row.prev_hash) {
                let canon = Canon {
                    session_id: id,
                    seq: row.seq,
                    at_ms: row.at,
                    kind: &row.kind,
                    request_id: row.request_id.as_deref(),
                    data: &row.data,
                    text: row.text.as_deref(),
                    body_sha256: row.body_sha256.as_deref(),
                };
                if hex(&canon.hash(&own_prev)) == row.hash {
                    return Ok(format!(
                        "does not follow seq {} (the previous event was replaced)",
                        row.seq - 1
                    ));
                }
            }
        }
        Ok("hash mismatch (event edited)".into())
    }

    /// The session row's head must be where the chain ends.
    fn check_head(
        &self,
        id: &str,
        last_seq: i64,
        last_hash: &str,
        count: i64,
    ) -> Result<Option<Broken>, Error> {
        let head: Option<(i64, String, i64)> = self
            .conn
            .query_row(
                "SELECT head_seq, head_hash, events FROM sessions WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((head_seq, head_hash, head_events)) = head else {
            return Ok(Some(Broken {
                seq: 0,
                event_id: None,
                reason: "session row missing (deleted)".into(),
            }));
        };
        let last_hash = if last_seq == 0 { "" } else { last_hash };
        let mismatch = |what: &str| {
            format!(
                "head mismatch: the session says {head_seq} events ending in {}, the chain ends \
                 at {last_seq}{} ({what})",
                short(&head_hash),
                if last_seq > 0 {
                    format!(" in {}", short(last_hash))
                } else {
                    String::new()
                }
            )
        };
        let broken = if head_seq > last_seq {
            let what = if head_seq == last_seq + 1 {
                "last event deleted"
            } else {
                "last events deleted"
            };
            Some((last_seq + 1, mismatch(what)))
        } else if head_seq < last_seq {
            Some((head_seq + 1, mismatch("events added after the head")))
        } else if head_hash != last_hash {
            Some((
                last_seq,
                mismatch("last event replaced, or the head edited"),
            ))
        } else if head_events != count {
            Some((
                last_seq,
                format!("the session's event count was edited (it says {head_events}, the chain has {count})"),
            ))
        } else {
            None
        };
        Ok(broken.map(|(seq, reason)| Broken {
            seq,
            event_id: None,
            reason,
        }))
    }
}

/// A body that no longer matches its recorded SHA-256 or length.
fn body_problem(row: &Row) -> Option<String> {
    match (&row.body, &row.body_sha256) {
        (None, None) => None,
        (None, Some(_)) => Some("body removed (event edited)".into()),
        (Some(_), None) => Some("body added (event edited)".into()),
        (Some(blob), Some(sha)) => match unpack(blob) {
            Err(_) => Some("body cannot be decompressed (event edited)".into()),
            Ok(body) if sha256_hex(&body) != *sha => {
                Some("body edited (its SHA-256 no longer matches)".into())
            }
            Ok(body) if row.body_len != Some(body.len() as i64) => {
                Some("body length edited (event edited)".into())
            }
            Ok(_) => None,
        },
    }
}
