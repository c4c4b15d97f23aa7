//! Incremental Server-Sent-Events framer for `text/event-stream` bodies
//! (SPEC section 3): bytes in, whole events out, each keeping its exact
//! original bytes so a proxy can forward what it does not change untouched.
//!
//! Owns: line splitting (`\n`, `\r\n`, lone `\r`), field parsing, the event
//! size bound, and [`encode`] for events hoopctl writes itself. Must not: do
//! I/O or know what the events mean (that is `inspect::machine`).
//!
//! Framing follows the WHATWG "event stream interpretation": a blank line ends
//! an event, `:` starts a comment, one space after the field colon is
//! stripped, `data` lines join with `\n`, a leading BOM is ignored. Unlike a
//! browser, every blank line yields an [`Event`] (even one with no fields, so
//! comment-only keep-alives and stray blank lines are still forwarded), and
//! bytes are never dropped.

use bytes::{Bytes, BytesMut};

/// The default bound on one event (and on the buffered part of an unfinished
/// one): 16 MiB, far above any real Messages event.
pub const DEFAULT_EVENT_LIMIT: usize = 16 * 1024 * 1024;

/// One framed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The exact original bytes, including the blank line that ended the
    /// event (absent only for a trailing event returned by
    /// [`Framer::finish`]). Concatenating `raw` of all events gives back the
    /// input.
    pub raw: Bytes,
    /// The last `event:` field; `None` when absent or empty.
    pub name: Option<String>,
    /// The `data:` fields joined with `\n` (empty when there were none).
    /// Invalid UTF-8 is replaced with U+FFFD here; `raw` is untouched.
    pub data: String,
}

/// Framing errors. The stream cannot be relayed safely past one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("server-sent event larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
}

/// Splits a byte stream into [`Event`]s; feed it chunks as they arrive.
///
/// ```
/// use hoopctl::anthropic::sse::Framer;
/// let mut framer = Framer::new();
/// let mut names = Vec::new();
/// for chunk in [&b"event: ping\nda"[..], b"ta: {}\n\n"] {
///     for event in framer.push(chunk) {
///         names.push(event.unwrap().name);
///     }
/// }
/// assert!(framer.finish().next().is_none());
/// assert_eq!(names, [Some("ping".to_string())]);
/// ```
#[derive(Debug)]
pub struct Framer {
    /// Bytes of the event being framed (complete events are split off).
    buf: BytesMut,
    /// Start of the first line of `buf` not yet parsed.
    line_start: usize,
    /// Where to resume looking for a line terminator (≥ `line_start`).
    search_from: usize,
    /// Fields parsed so far for the event in `buf`.
    name: Option<String>,
    data: String,
    has_data: bool,
    /// True until the first line of the stream is parsed (BOM stripping).
    first_line: bool,
    limit: usize,
    eof: bool,
    failed: bool,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer {
    /// A framer bounded by [`DEFAULT_EVENT_LIMIT`].
    pub fn new() -> Self {
        Self::with_limit(DEFAULT_EVENT_LIMIT)
    }

    /// A framer whose events (and buffered partial event) may not exceed
    /// `limit` bytes.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            line_start: 0,
            search_from: 0,
            name: None,
            data: String::new(),
            has_data: false,
            first_line: true,
            limit,
            eof: false,
            failed: false,
        }
    }

    /// Appends `chunk` and yields every event it completes. Drain the
    /// iterator: the size bound on the unfinished event is checked when it
    /// runs dry. After an error the framer is unusable and each later call
    /// yields that error once.
    ///
    /// A line ending in `\r` at the very end of the input is held until the
    /// next byte shows whether it is `\r\n`, so a stream that uses lone `\r`
    /// line endings sees each event when the next one starts.
    pub fn push(&mut self, chunk: &[u8]) -> Events<'_> {
        if !self.failed && !self.eof {
            self.buf.extend_from_slice(chunk);
        }
        Events {
            framer: self,
            done: false,
        }
    }

    /// Ends the stream: yields the events still buffered, including a
    /// trailing event without its blank line (raw bytes preserved, its last
    /// line parsed as if terminated).
    pub fn finish(&mut self) -> Events<'_> {
        self.eof = true;
        Events {
            framer: self,
            done: false,
        }
    }

    /// Bytes buffered for the unfinished event.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    fn next_event(&mut self) -> Option<Result<Event, Error>> {
        if self.failed {
            return Some(Err(self.too_large()));
        }
        loop {
            let from = self.search_from;
            let Some(offset) = self.buf[from..]
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
            else {
                self.search_from = self.buf.len();
                break;
            };
            let end = from + offset;
            let term = match self.buf[end] {
                b'\r' => match self.buf.get(end + 1) {
                    Some(b'\n') => 2,
                    Some(_) => 1,
                    None if self.eof => 1,
                    // `\r` or `\r\n`? Wait for the next byte.
                    None => {
                        self.search_from = end;
                        break;
                    }
                },
                _ => 1,
            };
            let next = end + term;
            if end == self.line_start {
                // A blank line: the event is complete.
                let raw = self.buf.split_to(next).freeze();
                self.line_start = 0;
                self.search_from = 0;
                return Some(self.dispatch(raw));
            }
            self.parse_line(self.line_start, end);
            self.line_start = next;
            self.search_from = next;
        }
        if self.eof && !self.buf.is_empty() {
            // A trailing event without its blank line.
            if self.line_start < self.buf.len() {
                self.parse_line(self.line_start, self.buf.len());
            }
            let raw = self.buf.split().freeze();
            self.line_start = 0;
            self.search_from = 0;
            return Some(self.dispatch(raw));
        }
        if self.buf.len() > self.limit {
            return Some(Err(self.fail()));
        }
        None
    }

    fn dispatch(&mut self, raw: Bytes) -> Result<Event, Error> {
        self.first_line = false;
        if raw.len() > self.limit {
            return Err(self.fail());
        }
        self.has_data = false;
        Ok(Event {
            raw,
            name: self.name.take(),
            data: std::mem::take(&mut self.data),
        })
    }

    fn fail(&mut self) -> Error {
        self.failed = true;
        self.buf = BytesMut::new();
        self.data = String::new();
        self.too_large()
    }

    fn too_large(&self) -> Error {
        Error::TooLarge { limit: self.limit }
    }

    /// Parses the line `buf[start..end]` (terminator excluded) into the
    /// pending fields.
    fn parse_line(&mut self, start: usize, end: usize) {
        let mut line = &self.buf[start..end];
        if std::mem::take(&mut self.first_line) {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.first() == Some(&b':') {
            return; // comment
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"event" => {
                let value = String::from_utf8_lossy(value);
                self.name = (!value.is_empty()).then(|| value.into_owned());
            }
            b"data" => {
                if std::mem::replace(&mut self.has_data, true) {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
            }
            // `id`, `retry` and unknown fields stay in `raw` only.
            _ => {}
        }
    }
}

/// The events completed by one [`Framer::push`] or [`Framer::finish`].
#[derive(Debug)]
pub struct Events<'a> {
    framer: &'a mut Framer,
    done: bool,
}

impl Iterator for Events<'_> {
    type Item = Result<Event, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.framer.next_event();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// Encodes one event as `event: NAME\ndata: DATA\n\n`. A line break inside
/// `data` becomes a further `data:` line (which a reader joins back with
/// `\n`); line breaks in `name` are dropped.
pub fn encode(name: &str, data: &str) -> Bytes {
    let mut out = String::with_capacity(name.len() + data.len() + 16);
    out.push_str("event: ");
    out.extend(name.chars().filter(|c| *c != '\n' && *c != '\r'));
    out.push('\n');
    let mut rest = data;
    loop {
        out.push_str("data: ");
        match rest.find(['\n', '\r']) {
            Some(i) => {
                out.push_str(&rest[..i]);
                out.push('\n');
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
            None => {
                out.push_str(rest);
                out.push('\n');
                break;
            }
        }
    }
    out.push('\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames `input` split at the given offsets, draining after each chunk.
    fn frame_chunks(input: &[u8], cuts: &[usize]) -> Vec<Event> {
        let mut framer = Framer::new();
        let mut out = Vec::new();
        let mut prev = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            out.extend(framer.push(&input[prev..cut]).map(|e| e.unwrap()));
            prev = cut;
        }
        out.extend(framer.finish().map(|e| e.unwrap()));
        out
    }

    fn frame(input: &[u8]) -> Vec<Event> {
        frame_chunks(input, &[])
    }

    fn summary(events: &[Event]) -> Vec<(Option<&str>, &str)> {
        events
            .iter()
            .map(|e| (e.name.as_deref(), e.data.as_str()))
            .collect()
    }

    /// Every split point, every pair of split points for short inputs, and
    /// 1-byte chunks all give the same events as the whole input.
    fn assert_split_invariant(input: &[u8]) {
        let whole = frame(input);
        let joined: Vec<u8> = whole.iter().flat_map(|e| e.raw.to_vec()).collect();
        assert_eq!(joined, input, "raw bytes must concatenate to the input");
        for cut in 0..=input.len() {
            assert_eq!(frame_chunks(input, &[cut]), whole, "cut at {cut}");
        }
        let ones: Vec<usize> = (1..input.len()).collect();
        assert_eq!(frame_chunks(input, &ones), whole, "1-byte chunks");
        if input.len() <= 64 {
            for a in 0..=input.len() {
                for b in a..=input.len() {
                    assert_eq!(frame_chunks(input, &[a, b]), whole, "cuts {a},{b}");
                }
            }
        }
    }

    /// Expected `(name, data)` of each event.
    type Summary<'a> = &'a [(Option<&'a str>, &'a str)];

    #[test]
    fn fields_table() {
        let cases: &[(&[u8], Summary)] = &[
            (b"event: ping\ndata: {}\n\n", &[(Some("ping"), "{}")]),
            (b"event:ping\ndata:{}\n\n", &[(Some("ping"), "{}")]),
            (b"event:  two\ndata:  x\n\n", &[(Some(" two"), " x")]),
            (b"data: a\ndata: b\n\n", &[(None, "a\nb")]),
            (b"data\ndata: b\n\n", &[(None, "\nb")]),
            (b"data: a\ndata:\n\n", &[(None, "a\n")]),
            (
                b": comment\nevent: x\n: more\ndata: 1\n\n",
                &[(Some("x"), "1")],
            ),
            (b"id: 7\nretry: 10\nfoo: bar\ndata: d\n\n", &[(None, "d")]),
            (b"event: a\nevent: b\ndata: d\n\n", &[(Some("b"), "d")]),
            (b"event:\ndata: d\n\n", &[(None, "d")]),
            (b"event: a\r\ndata: 1\r\n\r\n", &[(Some("a"), "1")]),
            (b"event: a\rdata: 1\r\r", &[(Some("a"), "1")]),
            (b"event: a\r\ndata: 1\n\r", &[(Some("a"), "1")]),
            (b"\xEF\xBB\xBFevent: a\ndata: 1\n\n", &[(Some("a"), "1")]),
            (b": keep-alive\n\n", &[(None, "")]),
            (b"\n\ndata: x\n\n", &[(None, ""), (None, ""), (None, "x")]),
            (b"data: \xE2\x82\xAC\n\n", &[(None, "\u{20ac}")]),
            (b"data: bad \xFF\n\n", &[(None, "bad \u{fffd}")]),
            (
                b"event: a\ndata: 1\n\nevent: b\ndata: 2\n\n",
                &[(Some("a"), "1"), (Some("b"), "2")],
            ),
            // Trailing events without their blank line.
            (
                b"event: a\ndata: 1\n\nevent: b\ndata: 2",
                &[(Some("a"), "1"), (Some("b"), "2")],
            ),
            (b"event: a\ndata: 1\n", &[(Some("a"), "1")]),
            (b"data: 1\r", &[(None, "1")]),
            (b"", &[]),
        ];
        for (input, want) in cases {
            let got = frame(input);
            assert_eq!(
                &summary(&got),
                want,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
            assert_split_invariant(input);
        }
    }

    #[test]
    fn raw_includes_the_blank_line() {
        let events = frame(b"event: a\r\ndata: 1\r\n\r\ndata: 2\n\n: c\n\n");
        let raws: Vec<&[u8]> = events.iter().map(|e| &e.raw[..]).collect();
        assert_eq!(
            raws,
            [
                &b"event: a\r\ndata: 1\r\n\r\n"[..],
                b"data: 2\n\n",
                b": c\n\n"
            ]
        );
    }

    #[test]
    fn cr_at_chunk_end_waits_for_the_next_byte() {
        let mut framer = Framer::new();
        assert!(framer.push(b"data: 1\r\n\r").next().is_none());
        let event = framer.push(b"\ndata: 2").next().unwrap().unwrap();
        assert_eq!(&event.raw[..], b"data: 1\r\n\r\n");
        let rest: Vec<Event> = framer.finish().map(|e| e.unwrap()).collect();
        assert_eq!(summary(&rest), [(None, "2")]);
    }

    #[test]
    fn utf8_split_across_chunks() {
        let input =
            "event: content_block_delta\ndata: {\"text\":\"h\u{e9}llo \u{1f600} \u{4e16}\"}\n\n";
        assert_split_invariant(input.as_bytes());
        assert_eq!(
            frame(input.as_bytes())[0].data,
            "{\"text\":\"h\u{e9}llo \u{1f600} \u{4e16}\"}"
        );
    }

    #[test]
    fn events_over_the_limit_are_errors() {
        // Complete in one chunk.
        let mut framer = Framer::with_limit(16);
        let got: Vec<_> = framer.push(b"data: 1\n\ndata: 0123456789\n\n").collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok());
        assert_eq!(got[1], Err(Error::TooLarge { limit: 16 }));
        // The framer stays failed, reporting once per call.
        assert_eq!(framer.push(b"data: 1\n\n").count(), 1);
        assert_eq!(framer.finish().count(), 1);

        // Unfinished and growing past the limit.
        let mut framer = Framer::with_limit(16);
        assert!(framer.push(b"data: 01234").next().is_none());
        assert_eq!(
            framer.push(b"567890").next(),
            Some(Err(Error::TooLarge { limit: 16 }))
        );

        // Exactly at the limit is fine.
        let mut framer = Framer::with_limit(10);
        assert!(framer.push(b"data: 12\n\n").next().unwrap().is_ok());
    }

    #[test]
    fn encode_round_trips() {
        assert_eq!(&encode("ping", "{}")[..], b"event: ping\ndata: {}\n\n");
        assert_eq!(
            &encode("x", "a\nb\r\nc\rd")[..],
            b"event: x\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
        );
        assert_eq!(&encode("a\nb", "")[..], b"event: ab\ndata: \n\n");
        for (name, data) in [("message_start", "{\"a\":1}"), ("e", "l1\nl2"), ("e", "")] {
            let events = frame(&encode(name, data));
            assert_eq!(summary(&events), [(Some(name), data)]);
        }
    }
}
