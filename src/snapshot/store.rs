//! Content-addressed storage: every byte stream a run stores (its raw evidence files and the
//! canonical stream of each of its tables) is a blob named by the SHA-256 of its bytes. A blob
//! is cut into content-defined chunks; each chunk is stored once, deflated, under the SHA-256 of
//! its bytes, and a blob lists its chunks. The same stream stored again costs nothing, and a
//! stream that changed in one place costs the chunks around the change, since chunk boundaries
//! follow the content, not the offset.
//!
//! Writing and reading stream chunk by chunk: no blob is ever held whole in memory.

use std::io::{self, Read, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::model::hex;

/// No chunk is cut shorter than this (but a blob's last one).
const MIN_CHUNK: usize = 16 * 1024;
/// A chunk is cut here at the latest.
const MAX_CHUNK: usize = 256 * 1024;
/// A boundary falls where the top bits of the rolling hash are zero: one position in 2^15,
/// so chunks average about `MIN_CHUNK + 32 KiB`.
const BOUNDARY_MASK: u64 = !(u64::MAX >> 15);

/// The gear table of the rolling hash: fixed pseudo-random values (splitmix64 from 0), so the
/// same bytes are cut at the same places by every version (which only matters for sharing
/// chunks: a blob's content never depends on where it was cut).
const GEAR: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut state: u64 = 0;
    let mut i = 0;
    while i < 256 {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        table[i] = z ^ (z >> 31);
        i += 1;
    }
    table
};

/// Whether a blob named `sha256` is stored.
pub fn has_blob(conn: &Connection, sha256: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM blobs WHERE sha256 = ?1")?
        .query_row([sha256], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}

/// Streams bytes into a new blob: cuts chunks as the bytes arrive, stores each chunk that is not
/// stored yet, and on [`finish`](BlobWriter::finish) records the blob.
pub struct BlobWriter<'c> {
    conn: &'c Connection,
    chunk: Vec<u8>,
    rolling: u64,
    whole: Sha256,
    size: u64,
    /// The chunk ids so far, 8 bytes big-endian each.
    chunk_ids: Vec<u8>,
}

impl<'c> BlobWriter<'c> {
    pub fn new(conn: &'c Connection) -> Self {
        BlobWriter {
            conn,
            chunk: Vec::with_capacity(MAX_CHUNK),
            rolling: 0,
            whole: Sha256::new(),
            size: 0,
            chunk_ids: Vec::new(),
        }
    }

    /// Appends `data` to the blob.
    pub fn put(&mut self, data: &[u8]) -> rusqlite::Result<()> {
        self.whole.update(data);
        self.size += data.len() as u64;
        let mut start = 0;
        for (i, &byte) in data.iter().enumerate() {
            self.rolling = (self.rolling << 1).wrapping_add(GEAR[byte as usize]);
            let len = self.chunk.len() + (i + 1 - start);
            if (len >= MIN_CHUNK && self.rolling & BOUNDARY_MASK == 0) || len >= MAX_CHUNK {
                self.chunk.extend_from_slice(&data[start..=i]);
                self.cut()?;
                start = i + 1;
            }
        }
        self.chunk.extend_from_slice(&data[start..]);
        Ok(())
    }

    /// Stores the chunk so far unless a chunk with its bytes is stored already.
    fn cut(&mut self) -> rusqlite::Result<()> {
        let sha256 = hex(&Sha256::digest(&self.chunk));
        let existing: Option<i64> = self
            .conn
            .prepare_cached("SELECT id FROM chunks WHERE sha256 = ?1")?
            .query_row([&sha256], |r| r.get(0))
            .optional()?;
        let id = match existing {
            Some(id) => id,
            None => {
                let mut deflated = DeflateEncoder::new(
                    Vec::with_capacity(self.chunk.len() / 4),
                    Compression::default(),
                );
                deflated
                    .write_all(&self.chunk)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                let data = deflated
                    .finish()
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                self.conn
                    .prepare_cached("INSERT INTO chunks (sha256, size, data) VALUES (?1, ?2, ?3)")?
                    .execute(params![sha256, self.chunk.len() as i64, data])?;
                self.conn.last_insert_rowid()
            }
        };
        self.chunk_ids.extend_from_slice(&id.to_be_bytes());
        self.chunk.clear();
        self.rolling = 0;
        Ok(())
    }

    /// Stores the last chunk and the blob (once: the same bytes stored again name the same
    /// blob); gives its SHA-256 and size.
    pub fn finish(mut self) -> rusqlite::Result<(String, u64)> {
        if !self.chunk.is_empty() {
            self.cut()?;
        }
        let sha256 = hex(&self.whole.finalize_reset());
        self.conn
            .prepare_cached(
                "INSERT INTO blobs (sha256, size, chunks) VALUES (?1, ?2, ?3)
                 ON CONFLICT (sha256) DO NOTHING",
            )?
            .execute(params![sha256, self.size as i64, self.chunk_ids])?;
        Ok((sha256, self.size))
    }
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.put(buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a stored blob is not what its name says.
fn corrupt(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads a stored blob back, chunk by chunk. With `checked`, each chunk's bytes must hash to
/// the SHA-256 it is stored under, and the whole to the blob's name (`verify` reads so).
pub struct BlobReader<'c> {
    conn: &'c Connection,
    sha256: String,
    size: u64,
    chunk_ids: Vec<i64>,
    next_chunk: usize,
    current: Vec<u8>,
    position: usize,
    read: u64,
    checked: Option<Sha256>,
}

impl<'c> BlobReader<'c> {
    /// The blob named `sha256`, or `None` when no such blob is stored.
    pub fn open(
        conn: &'c Connection,
        sha256: &str,
        checked: bool,
    ) -> rusqlite::Result<Option<Self>> {
        let row: Option<(i64, Vec<u8>)> = conn
            .prepare_cached("SELECT size, chunks FROM blobs WHERE sha256 = ?1")?
            .query_row([sha256], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((size, packed)) = row else {
            return Ok(None);
        };
        let chunk_ids = packed
            .chunks(8)
            .map(|id| {
                <[u8; 8]>::try_from(id)
                    .map(i64::from_be_bytes)
                    .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(2, packed.len() as i64))
            })
            .collect::<rusqlite::Result<_>>()?;
        Ok(Some(BlobReader {
            conn,
            sha256: sha256.to_string(),
            size: u64::try_from(size).unwrap_or(u64::MAX),
            chunk_ids,
            next_chunk: 0,
            current: Vec::new(),
            position: 0,
            read: 0,
            checked: checked.then(Sha256::new),
        }))
    }

    /// Loads the next chunk; `false` at the end of the blob (after the checks of the whole).
    fn load_next(&mut self) -> io::Result<bool> {
        let Some(&id) = self.chunk_ids.get(self.next_chunk) else {
            self.check_whole()?;
            return Ok(false);
        };
        self.next_chunk += 1;
        let (sha256, size, data): (String, i64, Vec<u8>) = self
            .conn
            .prepare_cached("SELECT sha256, size, data FROM chunks WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
            .optional()
            .map_err(io::Error::other)?
            .ok_or_else(|| {
                corrupt(format!(
                    "blob {} lists chunk {id}, which is not stored",
                    self.sha256
                ))
            })?;
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        self.current.clear();
        // Never more than the recorded size (plus one byte to notice more): a planted chunk
        // cannot inflate without bound.
        DeflateDecoder::new(data.as_slice())
            .take(size.saturating_add(1) as u64)
            .read_to_end(&mut self.current)
            .map_err(|e| corrupt(format!("chunk {id} does not inflate: {e}")))?;
        if self.current.len() != size {
            return Err(corrupt(format!(
                "chunk {id} inflates to {} bytes, not the {size} recorded",
                self.current.len()
            )));
        }
        if let Some(whole) = &mut self.checked {
            if hex(&Sha256::digest(&self.current)) != sha256 {
                return Err(corrupt(format!(
                    "chunk {id} does not match its recorded SHA-256"
                )));
            }
            whole.update(&self.current);
        }
        self.position = 0;
        Ok(true)
    }

    fn check_whole(&mut self) -> io::Result<()> {
        if self.read != self.size {
            return Err(corrupt(format!(
                "blob {} holds {} bytes, not the {} recorded",
                self.sha256, self.read, self.size
            )));
        }
        if let Some(whole) = &mut self.checked
            && hex(&whole.finalize_reset()) != self.sha256
        {
            return Err(corrupt(format!(
                "blob {} does not match its SHA-256",
                self.sha256
            )));
        }
        Ok(())
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.position == self.current.len() {
            if !self.load_next()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.current.len() - self.position);
        buf[..n].copy_from_slice(&self.current[self.position..self.position + n]);
        self.position += n;
        self.read += n as u64;
        Ok(n)
    }
}

/// Why the blob named `sha256` is not intact (missing, a chunk missing or changed, the whole
/// not hashing to its name), or `None`.
pub fn blob_fault(conn: &Connection, sha256: &str) -> rusqlite::Result<Option<String>> {
    let Some(mut reader) = BlobReader::open(conn, sha256, true)? else {
        return Ok(Some(format!("blob {sha256} is not stored")));
    };
    match io::copy(&mut reader, &mut io::sink()) {
        Ok(_) => Ok(None),
        Err(e) => Ok(Some(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE chunks (id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE,
               size INTEGER NOT NULL, data BLOB NOT NULL);
             CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL,
               chunks BLOB NOT NULL);",
        )
        .unwrap();
        conn
    }

    /// Bytes that do not repeat (so they are cut by content, not by the maximum).
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 33) as u8
            })
            .collect()
    }

    fn write(conn: &Connection, bytes: &[u8]) -> String {
        let mut writer = BlobWriter::new(conn);
        // In uneven pieces, as a stream arrives.
        for piece in bytes.chunks(7777) {
            writer.put(piece).unwrap();
        }
        writer.finish().unwrap().0
    }

    fn read(conn: &Connection, sha256: &str) -> Vec<u8> {
        let mut out = Vec::new();
        BlobReader::open(conn, sha256, true)
            .unwrap()
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn blobs_round_trip_and_are_stored_once() {
        let conn = store();
        let bytes = noise(1_000_000, 1);
        let sha = write(&conn, &bytes);
        assert_eq!(sha, crate::model::sha256_hex(&bytes));
        assert_eq!(read(&conn, &sha), bytes);
        let chunks = count(&conn, "chunks");
        assert!((4..=60).contains(&chunks), "{chunks} chunks");
        // The same bytes again add nothing.
        assert_eq!(write(&conn, &bytes), sha);
        assert_eq!((count(&conn, "chunks"), count(&conn, "blobs")), (chunks, 1));
        // The empty blob is a blob too.
        let empty = write(&conn, b"");
        assert_eq!(read(&conn, &empty), b"");
    }

    #[test]
    fn a_change_in_one_place_adds_the_chunks_around_it() {
        let conn = store();
        let mut bytes = noise(2_000_000, 2);
        write(&conn, &bytes);
        let before = count(&conn, "chunks");
        // Ten bytes inserted in the middle shift every later offset.
        bytes.splice(1_000_000..1_000_000, *b"0123456789");
        let sha = write(&conn, &bytes);
        assert_eq!(read(&conn, &sha), bytes);
        let added = count(&conn, "chunks") - before;
        assert!((1..=3).contains(&added), "{added} chunks added");
    }

    #[test]
    fn changed_chunks_are_named() {
        let conn = store();
        let bytes = noise(300_000, 3);
        let sha = write(&conn, &bytes);
        assert_eq!(blob_fault(&conn, &sha).unwrap(), None);
        // A chunk replaced by another, validly deflated, chunk of the same size.
        let mut other = DeflateEncoder::new(Vec::new(), Compression::default());
        let (size,): (i64,) = conn
            .query_row("SELECT size FROM chunks WHERE id = 1", [], |r| {
                Ok((r.get(0)?,))
            })
            .unwrap();
        other.write_all(&vec![b'x'; size as usize]).unwrap();
        conn.execute(
            "UPDATE chunks SET data = ?1 WHERE id = 1",
            [other.finish().unwrap()],
        )
        .unwrap();
        let why = blob_fault(&conn, &sha).unwrap().unwrap();
        assert!(why.contains("does not match its recorded SHA-256"), "{why}");
        // A missing blob is named.
        assert_eq!(
            blob_fault(&conn, "00").unwrap().unwrap(),
            "blob 00 is not stored"
        );
    }

    #[test]
    fn a_chunk_cannot_inflate_past_its_recorded_size() {
        let conn = store();
        let sha = write(&conn, &noise(50_000, 4));
        conn.execute("UPDATE chunks SET size = 10", []).unwrap();
        let why = blob_fault(&conn, &sha).unwrap().unwrap();
        assert!(why.contains("not the 10 recorded"), "{why}");
    }
}
