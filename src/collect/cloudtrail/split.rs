//! The fast reader of one CloudTrail stream: reads it in chunks into one buffer and parses each
//! record from the buffer's bytes (strings borrowed, unused fields skipped) as soon as it is
//! whole, so memory holds one chunk plus at most one record (`--max-record-size`), whatever the
//! size of the file.
//!
//! serde_json parses each record and finds where it ends (a record cut by the end of the buffer
//! is parsed again once more is read). The structure around the records (`{"Records": [`,
//! commas, other top-level members, `]}`) is checked here byte by byte, and every other member
//! is checked by serde_json: a stream accepted here is a valid JSON document, read exactly as
//! the streaming parser reads it.
//!
//! This reader only takes the common road. Anything else (malformed or truncated JSON, a key
//! spelled with escapes, a span near or over the record limit, a corrupt gzip stream, an I/O
//! error) returns [`Bail`], and the caller reads the file again with the streaming parser, whose
//! error (or result) is then the file's: error messages are the same as they always were.

use std::io::Read;
use std::ops::Range;

use serde::de::IgnoredAny;

use super::{Aggregator, LookupEvent, Obj, RawRecord};

/// The file left the common road: read it again with the streaming parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Bail;

/// Bytes read from the stream per refill, at least.
pub(super) const CHUNK: usize = 4 << 20;

/// A window on a stream: `buf[pos..end]` is read and not yet consumed.
struct Cursor<'b, R> {
    reader: R,
    buf: &'b mut Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Offset in the stream of `buf[0]`.
    base: u64,
    /// Offset in the stream where the current record's span began: the end of the previous
    /// record (or the start of the stream, or of the record array).
    span_start: u64,
    /// Largest span accepted, in bytes.
    max_span: u64,
}

/// How a value begins at the cursor.
enum Scan {
    /// The value is the next `n` bytes.
    Complete(usize),
    /// The buffer ends inside the value.
    Incomplete,
    /// Not a value this reader takes.
    Invalid,
}

impl<R: Read> Cursor<'_, R> {
    /// Reads more of the stream after what is unconsumed, which moves to the front of the
    /// buffer. False at the end of the stream.
    fn refill(&mut self) -> Result<bool, Bail> {
        if self.eof {
            return Ok(false);
        }
        self.buf.copy_within(self.pos..self.end, 0);
        self.base += self.pos as u64;
        self.end -= self.pos;
        self.pos = 0;
        if self.buf.len() - self.end < CHUNK {
            self.buf.resize(self.end + CHUNK, 0);
        }
        let before = self.end;
        while self.end < self.buf.len() {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Bail),
            }
        }
        Ok(self.end > before)
    }

    /// Fails when the bytes of the current span up to `buf[..upto]` are over the limit.
    fn check_span(&self, upto: usize) -> Result<(), Bail> {
        if self.base + upto as u64 - self.span_start > self.max_span {
            return Err(Bail);
        }
        Ok(())
    }

    /// A new span (see [`Cursor::span_start`]) begins at the cursor.
    fn new_span(&mut self) {
        self.span_start = self.base + self.pos as u64;
    }

    /// The next byte that is not JSON whitespace, not consumed; `None` at the end.
    fn peek(&mut self) -> Result<Option<u8>, Bail> {
        loop {
            while self.pos < self.end {
                match self.buf[self.pos] {
                    b' ' | b'\n' | b'\t' | b'\r' => self.pos += 1,
                    byte => {
                        self.check_span(self.pos)?;
                        return Ok(Some(byte));
                    }
                }
            }
            self.check_span(self.end)?;
            if !self.refill()? {
                return Ok(None);
            }
        }
    }

    /// Consumes `byte` (after whitespace).
    fn expect(&mut self, byte: u8) -> Result<(), Bail> {
        if self.peek()? != Some(byte) {
            return Err(Bail);
        }
        self.pos += 1;
        Ok(())
    }

    /// Consumes the next value and returns where its bytes are in `buf` (valid until the next
    /// read).
    fn value(&mut self) -> Result<Range<usize>, Bail> {
        self.peek()?;
        loop {
            match scan_value(&self.buf[self.pos..self.end]) {
                Scan::Complete(n) => {
                    self.check_span(self.pos + n)?;
                    let range = self.pos..self.pos + n;
                    self.pos += n;
                    return Ok(range);
                }
                Scan::Invalid => return Err(Bail),
                Scan::Incomplete => {
                    self.check_span(self.end)?;
                    if !self.refill()? {
                        return Err(Bail);
                    }
                }
            }
        }
    }

    /// Parses the next value as a record and folds it into `aggregator`. serde_json finds where
    /// it ends; a value cut by the end of the buffer is parsed again once more is read.
    fn record(&mut self, aggregator: &mut Aggregator) -> Result<(), Bail> {
        self.peek()?;
        loop {
            let bytes = &self.buf[self.pos..self.end];
            let mut stream =
                serde_json::Deserializer::from_slice(bytes).into_iter::<Obj<RawRecord>>();
            match stream.next() {
                // A value that ends with the buffer may go on (a number, say): read more.
                Some(Ok(_)) if stream.byte_offset() == bytes.len() && !self.eof => {}
                Some(Ok(record)) => {
                    let n = stream.byte_offset();
                    self.check_span(self.pos + n)?;
                    aggregator.add(record.0);
                    self.pos += n;
                    return Ok(());
                }
                Some(Err(e)) if e.is_eof() && !self.eof => {}
                _ => return Err(Bail),
            }
            self.check_span(self.end)?;
            if !self.refill()? {
                return Err(Bail);
            }
        }
    }

    /// Consumes the next value, which must be a valid JSON value; what it holds is not used.
    fn skip_value(&mut self) -> Result<(), Bail> {
        let range = self.value()?;
        serde_json::from_slice::<IgnoredAny>(&self.buf[range]).map_err(|_| Bail)?;
        Ok(())
    }
}

/// Where the value at the start of `bytes` ends. Strings are skipped whole; brackets are only
/// counted (serde_json checks that they match when it parses the value).
fn scan_value(bytes: &[u8]) -> Scan {
    let Some(&first) = bytes.first() else {
        return Scan::Incomplete;
    };
    match first {
        b'"' => match string_end(bytes, 1) {
            Some(end) => Scan::Complete(end),
            None => Scan::Incomplete,
        },
        b'{' | b'[' => nested_end(bytes),
        b',' | b']' | b'}' | b':' => Scan::Invalid,
        _ => match bytes
            .iter()
            .position(|b| matches!(b, b' ' | b'\n' | b'\t' | b'\r' | b',' | b']' | b'}'))
        {
            Some(end) => Scan::Complete(end),
            None => Scan::Incomplete,
        },
    }
}

/// The end (past the closing quote) of the string whose contents start at `from`.
fn string_end(bytes: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let at = from + memchr::memchr2(b'"', b'\\', &bytes[from..])?;
        if bytes[at] == b'"' {
            return Some(at + 1);
        }
        // An escape: the next byte is taken whatever it is.
        from = at + 2;
        if from > bytes.len() {
            return None;
        }
    }
}

/// The end of the object or array at the start of `bytes`.
fn nested_end(bytes: &[u8]) -> Scan {
    let mut depth = 0usize;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => match string_end(bytes, at + 1) {
                Some(end) => {
                    at = end;
                    continue;
                }
                None => return Scan::Incomplete,
            },
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Scan::Complete(at + 1);
                }
            }
            _ => {}
        }
        at += 1;
    }
    Scan::Incomplete
}

/// What an array holds.
#[derive(Clone, Copy)]
enum Kind {
    /// CloudTrail records.
    Records,
    /// lookup-events events, each with its record as a JSON string.
    Events,
}

/// Reads one stream (see the module docs) into `aggregator`, with `buffer` as its window.
///
/// `max_span` bounds the bytes from the end of one record to the end of the next (and before
/// the record array, and after it), so memory holds at most that plus a chunk. The streaming
/// parser's record budget counts the same bytes, give or take what its read buffers hold: the
/// caller passes the record limit less that slack, so a stream this reader accepts is one the
/// streaming parser accepts too. On [`Bail`], `aggregator` holds part of the file and must be
/// thrown away.
pub(super) fn read_stream<R: Read>(
    reader: R,
    buffer: &mut Vec<u8>,
    max_span: u64,
    aggregator: &mut Aggregator,
) -> Result<(), Bail> {
    let mut cursor = Cursor {
        reader,
        buf: buffer,
        pos: 0,
        end: 0,
        eof: false,
        base: 0,
        span_start: 0,
        max_span,
    };
    match cursor.peek()? {
        Some(b'[') => {
            cursor.pos += 1;
            array(&mut cursor, Kind::Records, aggregator)?;
        }
        Some(b'{') => {
            cursor.pos += 1;
            object(&mut cursor, aggregator)?;
        }
        _ => return Err(Bail),
    }
    match cursor.peek()? {
        None => Ok(()),
        Some(_) => Err(Bail),
    }
}

/// The members of the top-level object, after its `{`.
fn object<R: Read>(cursor: &mut Cursor<'_, R>, aggregator: &mut Aggregator) -> Result<(), Bail> {
    let mut found = false;
    if cursor.peek()? == Some(b'}') {
        return Err(Bail);
    }
    loop {
        let key = cursor.value()?;
        // A key with escapes is left to the streaming parser, which decodes it.
        let kind = match serde_json::from_slice::<&str>(&cursor.buf[key]).map_err(|_| Bail)? {
            "Records" => Some(Kind::Records),
            "Events" => Some(Kind::Events),
            _ => None,
        };
        cursor.expect(b':')?;
        match kind {
            Some(kind) => {
                found = true;
                array_or_null(cursor, kind, aggregator)?;
            }
            None => cursor.skip_value()?,
        }
        match cursor.peek()? {
            Some(b',') => cursor.pos += 1,
            Some(b'}') => {
                cursor.pos += 1;
                break;
            }
            _ => return Err(Bail),
        }
    }
    if found { Ok(()) } else { Err(Bail) }
}

/// `Records` or `Events`: an array, or `null` (no records).
fn array_or_null<R: Read>(
    cursor: &mut Cursor<'_, R>,
    kind: Kind,
    aggregator: &mut Aggregator,
) -> Result<(), Bail> {
    match cursor.peek()? {
        Some(b'[') => {
            cursor.pos += 1;
            array(cursor, kind, aggregator)
        }
        Some(b'n') => {
            let range = cursor.value()?;
            if &cursor.buf[range] == b"null" {
                Ok(())
            } else {
                Err(Bail)
            }
        }
        _ => Err(Bail),
    }
}

/// The elements of a record (or event) array, after its `[`, each folded in as it is read.
fn array<R: Read>(
    cursor: &mut Cursor<'_, R>,
    kind: Kind,
    aggregator: &mut Aggregator,
) -> Result<(), Bail> {
    cursor.new_span();
    if cursor.peek()? == Some(b']') {
        cursor.pos += 1;
        return Ok(());
    }
    loop {
        match kind {
            Kind::Records => cursor.record(aggregator)?,
            Kind::Events => {
                let range = cursor.value()?;
                event(&cursor.buf[range], aggregator)?;
            }
        }
        cursor.new_span();
        match cursor.peek()? {
            Some(b',') => cursor.pos += 1,
            Some(b']') => {
                cursor.pos += 1;
                return Ok(());
            }
            _ => return Err(Bail),
        }
    }
}

/// One lookup-events event: its record is a JSON string inside it.
fn event(bytes: &[u8], aggregator: &mut Aggregator) -> Result<(), Bail> {
    let event: Obj<LookupEvent> = serde_json::from_slice(bytes).map_err(|_| Bail)?;
    let Some(text) = event.0.and_then(|e| e.cloud_trail_event.0) else {
        aggregator.records += 1;
        aggregator.file_records += 1;
        aggregator.skip("lookup event without CloudTrailEvent");
        return Ok(());
    };
    let record: Obj<RawRecord> = serde_json::from_str(&text).map_err(|_| Bail)?;
    aggregator.add(record.0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> Option<usize> {
        match scan_value(text.as_bytes()) {
            Scan::Complete(n) => Some(n),
            Scan::Incomplete | Scan::Invalid => None,
        }
    }

    #[test]
    fn values_end_where_json_says() {
        let nested = r#"{"a": "}\"]", "b": [1, {"c": null}]}, {"#;
        assert_eq!(scan(nested), nested.find("]}, {").map(|at| at + 2));
        assert_eq!(scan(r#""x\\" , 1"#), Some(5));
        assert_eq!(scan("12.5e3, 4"), Some(6));
        assert_eq!(scan("null]"), Some(4));
        // Cut short: more must be read.
        assert_eq!(scan(r#"{"a": "b"#), None);
        assert!(matches!(scan_value(br#""abc\"#), Scan::Incomplete));
        assert!(matches!(scan_value(b", 1"), Scan::Invalid));
    }

    fn records(text: &str, chunk_reader: usize) -> Result<Aggregator, Bail> {
        /// Hands out at most `n` bytes per read, to cut values at every place.
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.1).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut aggregator = Aggregator::default();
        let mut buffer = Vec::new();
        read_stream(
            Trickle(text.as_bytes(), chunk_reader),
            &mut buffer,
            1 << 20,
            &mut aggregator,
        )?;
        Ok(aggregator)
    }

    #[test]
    fn the_common_shapes_are_read_and_the_rest_left_to_the_streaming_parser() {
        let record = r#"{"eventVersion":"1.08","eventTime":"2026-10-30T09:00:00Z","userIdentity":{"accessKeyId":"AKIAX"}}"#;
        for reads in [1, 7, CHUNK] {
            let s3 = format!(r#"{{"Other": {{"x": [1]}}, "Records": [{record}, "odd"] }} "#);
            let d = records(&s3, reads).expect("read");
            assert_eq!((d.records, d.skipped), (2, 1));
            assert_eq!(
                records(&format!("[{record}]"), reads).map(|d| d.records),
                Ok(1)
            );
            assert_eq!(
                records(r#"{"Records": null}"#, reads).map(|d| d.records),
                Ok(0)
            );
        }
        for bad in [
            "",
            "null",
            "{}",
            r#"{"Other": 1}"#,
            r#"{"Rec\u006frds": []}"#,
            r#"{"Records": [1,]}"#,
            r#"{"Records": [1 2]}"#,
            r#"{"Records": [{"a": 1]]}"#,
            r#"{"Records": []} x"#,
            r#"{"Records": [], "Other": tru}"#,
            r#"{"Records": [{"eventVersion": "1.08"}"#,
            r#"{"Events": [{"CloudTrailEvent": "{not json"}]}"#,
        ] {
            assert_eq!(records(bad, 3).map(|d| d.records), Err(Bail), "{bad}");
        }
    }
}
