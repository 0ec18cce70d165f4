//! The on-disk format of a `VectorIndex`: one file, read in chunks of 1 MiB. It holds the frozen
//! graph, the tombstones and the live delta.
//!
//! ```text
//! 0   magic  "DOPPELIX"            8 bytes
//! 8   format version               u32 LE (= 1)
//! 12  body length                  u64 LE
//! 20  crc32 of the body            u32 LE
//! 24  body:
//!     dim u32, metric u8, m u32, ef_construction u32,
//!     n u32, entry u32, upper_len u64, hidden_bits u64, delta_n u32,
//!     ids [n]u32, levels [n]u8, upper_start [n]u32,
//!     links0 [n·(1+2m)]u32, upper [upper_len]u32, vectors [n·padded]f32,
//!     hidden words [⌈hidden_bits/64⌉]u64, delta ids [delta_n]u32, delta vectors [delta_n·padded]f32
//! ```
//! Every count is checked against the remaining bytes before anything is allocated, and the
//! graph's links are range-checked, so a damaged file gives [`Error::Corrupt`], never a panic.
//!
//! This module knows the index's parts ([`FrozenGraph`], [`Bitset`], [`LiveDelta`]) but not
//! `VectorIndex` itself, which calls it: the import goes one way.

use std::io::{Read, Write};
use std::path::Path;

use crate::aligned_rows::{AlignedRows, padded_dim};
use crate::bitset::Bitset;
use crate::error::{Error, Result};
use crate::frozen_graph::{FrozenGraph, GraphParts};
use crate::live_delta::LiveDelta;
use crate::point_id::PointId;
use crate::types::{BuildParams, Metric};
use crate::vector_index::VectorIndex;

/// Unchanged since the first release (and since the frozen graph was called a "segment"), so
/// files written by any earlier build still load; the bytes must never change.
const MAGIC: &[u8; 8] = b"DOPPELIX";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const HEADER: usize = 24;

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32s(&mut self, v: &[u32]) {
        self.0.reserve(v.len() * 4);
        v.iter().for_each(|&x| self.u32(x));
    }
    fn f32s(&mut self, v: &[f32]) {
        self.0.reserve(v.len() * 4);
        v.iter()
            .for_each(|&x| self.0.extend_from_slice(&x.to_le_bytes()));
    }
}

/// Serialises an index's parts into file bytes (header + body).
pub(crate) fn encode(
    params: &BuildParams,
    f: &FrozenGraph,
    hidden: &Bitset,
    delta: &LiveDelta,
) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(
        f.memory_parts().total() + delta.memory_bytes() + 64,
    ));
    w.u32(params.dim as u32);
    w.u8(params.metric.code());
    w.u32(params.m as u32);
    w.u32(params.ef_construction as u32);
    w.u32(f.len() as u32);
    w.u32(f.entry);
    w.u64(f.upper.len() as u64);
    w.u64(hidden.len_bits() as u64);
    w.u32(delta.len() as u32);
    w.u32s(&f.ids);
    w.0.extend_from_slice(&f.levels);
    w.u32s(&f.upper_start);
    w.u32s(&f.links0);
    w.u32s(&f.upper);
    w.f32s(f.vectors.as_flat());
    hidden.words().iter().for_each(|&x| w.u64(x));
    w.u32s(&delta.ids);
    w.f32s(delta.rows.as_flat());
    let body = w.0;
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// Writes `bytes` to `path` via a temporary file, fsync and rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Bytes a section is read in. Whole elements and whole 64-byte row lines, so a section's
/// chunks convert one by one; the file is never held whole (at 10M customers a snapshot is
/// 4.3 GB, and a whole-file buffer was a second copy of it to allocate and fill).
const CHUNK: usize = 1 << 20;

/// A file body read in order: counts checked against the bytes left before anything is
/// allocated, the checksum summed as the bytes go by.
struct Body<R> {
    src: R,
    /// Body bytes not read yet.
    left: u64,
    /// The checksum of the body bytes read so far.
    crc: crc32fast::Hasher,
    /// The last bytes read.
    buf: Vec<u8>,
    /// Bytes a section is read in ([`CHUNK`], smaller in tests).
    chunk: usize,
}

impl<R: Read> Body<R> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if n as u64 > self.left {
            return Err(Error::corrupt("truncated body"));
        }
        if self.buf.len() < n {
            self.buf.resize(n, 0);
        }
        let chunk = &mut self.buf[..n];
        self.src.read_exact(chunk).map_err(eof_is_corrupt)?;
        self.left -= n as u64;
        self.crc.update(chunk);
        Ok(chunk)
    }
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
    fn size(&self, count: u64, elem: usize) -> Result<usize> {
        let n = usize::try_from(count).map_err(|_| Error::corrupt("count too large"))?;
        match n.checked_mul(elem) {
            Some(bytes) if bytes as u64 <= self.left => Ok(n),
            _ => Err(Error::corrupt("section longer than the file")),
        }
    }
    /// Reads `bytes` bytes in chunks of at most [`CHUNK`], handing each to `f`.
    fn chunks(&mut self, bytes: usize, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        let mut rest = bytes;
        while rest > 0 {
            let n = rest.min(self.chunk);
            f(self.take(n)?);
            rest -= n;
        }
        Ok(())
    }
    /// Reads the rest of the body, for its checksum.
    fn drain(&mut self) -> Result<()> {
        let rest = usize::try_from(self.left).map_err(|_| Error::corrupt("body too large"))?;
        self.chunks(rest, &mut |_| {})
    }
    fn u8s(&mut self, count: u64) -> Result<Vec<u8>> {
        let n = self.size(count, 1)?;
        let mut out = Vec::with_capacity(n);
        self.chunks(n, &mut |c| out.extend_from_slice(c))?;
        Ok(out)
    }
    fn u32s(&mut self, count: u64) -> Result<Vec<u32>> {
        let n = self.size(count, 4)?;
        let mut out = Vec::with_capacity(n);
        self.chunks(n * 4, &mut |c| {
            out.extend(
                c.chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            )
        })?;
        Ok(out)
    }
    fn u64s(&mut self, count: u64) -> Result<Vec<u64>> {
        let n = self.size(count, 8)?;
        let mut out = Vec::with_capacity(n);
        self.chunks(n * 8, &mut |c| {
            out.extend(c.chunks_exact(8).map(|b| {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                u64::from_le_bytes(a)
            }))
        })?;
        Ok(out)
    }
    /// `count` padded rows of `dim` saved as little-endian floats.
    fn rows(&mut self, dim: usize, count: u64) -> Result<AlignedRows> {
        let n = self.size(count, padded_dim(dim) * 4)?;
        let mut rows = AlignedRows::with_capacity(dim, n);
        self.chunks(n * padded_dim(dim) * 4, &mut |c| rows.extend_le_lines(c))?;
        Ok(rows)
    }
}

/// A file that ends early, read as damaged (not as an I/O failure).
fn eof_is_corrupt(e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::corrupt("file shorter than its header says"),
        _ => Error::Io(e),
    }
}

/// Parses and checks a file of `file_len` bytes read from `src`; with `index_ids`, the
/// graph's id → node map is built too (else the caller renames the ids and builds it).
pub(crate) fn decode(
    src: impl Read,
    file_len: u64,
    index_ids: bool,
) -> Result<(BuildParams, FrozenGraph, Bitset, LiveDelta)> {
    decode_in_chunks(src, file_len, index_ids, CHUNK)
}

/// The sections of a body, read but not yet checked as a whole.
struct Sections {
    params: BuildParams,
    graph: GraphParts,
    hidden_len: usize,
    words: Vec<u64>,
    delta_ids: Vec<u32>,
    delta_rows: AlignedRows,
}

/// Reads every section of the body, each count checked against the bytes left.
fn read_sections<R: Read>(r: &mut Body<R>) -> Result<Sections> {
    let dim = r.u32()? as usize;
    let metric = Metric::from_code(r.u8()?).ok_or_else(|| Error::corrupt("unknown metric"))?;
    let m = r.u32()? as usize;
    let ef_construction = r.u32()? as usize;
    let params = BuildParams {
        dim,
        metric,
        m,
        ef_construction,
        threads: 0,
    };
    params
        .validate()
        .map_err(|e| Error::corrupt(format!("bad parameters: {e}")))?;
    let n = u64::from(r.u32()?);
    let entry = r.u32()?;
    let upper_len = r.u64()?;
    let hidden_bits = r.u64()?;
    let delta_n = u64::from(r.u32()?);
    let ids = r.u32s(n)?;
    let levels = r.u8s(n)?;
    let upper_start = r.u32s(n)?;
    let links0 = r.u32s(n * (1 + 2 * m as u64))?;
    let upper = r.u32s(upper_len)?;
    let vectors = r.rows(dim, n)?;
    let hidden_len = usize::try_from(hidden_bits).map_err(|_| Error::corrupt("tombstone size"))?;
    let words = r.u64s(hidden_bits.div_ceil(64))?;
    let delta_ids = r.u32s(delta_n)?;
    let delta_rows = r.rows(dim, delta_n)?;
    if r.left != 0 {
        return Err(Error::corrupt("trailing bytes after the last section"));
    }
    Ok(Sections {
        params,
        graph: GraphParts {
            dim,
            metric,
            m,
            ids,
            vectors,
            levels,
            links0,
            upper_start,
            upper,
            entry,
        },
        hidden_len,
        words,
        delta_ids,
        delta_rows,
    })
}

/// [`decode`], reading sections `chunk` bytes at a time.
fn decode_in_chunks(
    mut src: impl Read,
    file_len: u64,
    index_ids: bool,
    chunk: usize,
) -> Result<(BuildParams, FrozenGraph, Bitset, LiveDelta)> {
    if file_len < HEADER as u64 {
        return Err(Error::corrupt("file shorter than its header"));
    }
    let mut header = [0u8; HEADER];
    src.read_exact(&mut header).map_err(eof_is_corrupt)?;
    if &header[..8] != MAGIC {
        return Err(Error::corrupt("not a doppel index file (bad magic)"));
    }
    let field =
        |at: usize| -> [u8; 4] { [header[at], header[at + 1], header[at + 2], header[at + 3]] };
    let version = u32::from_le_bytes(field(8));
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedFormat { version });
    }
    let body_len = u64::from_le_bytes([
        header[12], header[13], header[14], header[15], header[16], header[17], header[18],
        header[19],
    ]);
    let crc = u32::from_le_bytes(field(20));
    let body = file_len - HEADER as u64;
    if body != body_len {
        return Err(Error::corrupt(format!(
            "body is {body} bytes, header says {body_len} (truncated?)"
        )));
    }
    let mut r = Body {
        src,
        left: body_len,
        crc: crc32fast::Hasher::new(),
        buf: Vec::new(),
        chunk,
    };
    let read = read_sections(&mut r);
    if read.is_err() {
        // A damaged byte usually shows first as a bad count or parameter: the rest of the
        // body is read so that the checksum, the likelier truth, is what is reported.
        r.drain()?;
    }
    if r.crc.finalize() != crc {
        return Err(Error::corrupt("checksum mismatch"));
    }
    let read = read?;
    let hidden = Bitset::from_words(read.words, read.hidden_len)
        .ok_or_else(|| Error::corrupt("tombstone section"))?;
    if !read.graph.vectors.all_finite() || !read.delta_rows.all_finite() {
        return Err(Error::corrupt("non-finite vector component"));
    }
    let params = read.params;
    let frozen = if index_ids {
        FrozenGraph::from_parts(read.graph)
    } else {
        FrozenGraph::from_parts_unindexed(read.graph)
    }
    .map_err(Error::corrupt)?;
    let mut delta = LiveDelta::new(params.dim);
    for (j, &id) in read.delta_ids.iter().enumerate() {
        if delta.contains(id) {
            return Err(Error::corrupt("duplicate id in delta"));
        }
        delta.upsert(id, read.delta_rows.row(j));
    }
    Ok((params, frozen, hidden, delta))
}

/// Reads and checks the index file at `path`, in chunks (`index_ids` as for [`decode`]).
pub(crate) fn read_file(
    path: &Path,
    index_ids: bool,
) -> Result<(BuildParams, FrozenGraph, Bitset, LiveDelta)> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    decode(file, len, index_ids)
}

/// An index file read and checked but not yet a [`VectorIndex`]: its ids are still those
/// it was saved with. Reading (most of a load: the file, its checks, the rows) needs nothing
/// of the owner, so it can run before the owner knows which ids the saved ones become.
/// Every check is made here but one: that no two points share an id, which
/// [`IndexFile::relabel`] checks of the new ids.
pub struct IndexFile {
    params: BuildParams,
    frozen: FrozenGraph,
    hidden: Bitset,
    delta: LiveDelta,
}

impl IndexFile {
    /// Reads and checks an index written by [`VectorIndex::save`].
    pub fn read(path: &Path) -> Result<Self> {
        // The saved ids are renamed before use: `relabel` maps the new ones.
        let (params, frozen, hidden, delta) = read_file(path, false)?;
        Ok(Self {
            params,
            frozen,
            hidden,
            delta,
        })
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.params.dim
    }

    /// Points the file holds (graph and delta, tombstoned ones included).
    pub fn points(&self) -> usize {
        self.frozen.len() + self.delta.len()
    }

    /// The index with its ids renamed by `map`, as [`VectorIndex::load_relabeled`] does.
    pub fn relabel(self, map: &dyn Fn(PointId) -> Option<PointId>) -> Result<VectorIndex> {
        let Self {
            params,
            mut frozen,
            mut hidden,
            delta,
        } = self;
        for (i, id) in frozen.ids.iter_mut().enumerate() {
            match map(*id) {
                Some(new) => *id = new,
                None => {
                    hidden.insert(i as PointId);
                    // A label no owner uses, unique per node, so the id map stays valid.
                    *id = PointId::MAX - i as PointId;
                }
            }
        }
        if !frozen.index_ids() {
            return Err(Error::corrupt("two ids map to the same new id"));
        }
        let mut relabeled = LiveDelta::new(params.dim);
        for (j, &id) in delta.ids.iter().enumerate() {
            if let Some(new) = map(id) {
                relabeled.upsert(new, delta.rows.row(j));
            }
        }
        Ok(VectorIndex::from_state(
            params,
            frozen,
            hidden,
            Some(relabeled),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::NoProgress;

    /// A reader that hands out one byte per `read`, as a slow pipe might.
    struct OneByte<'a>(&'a [u8]);

    impl Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some((&first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            match buf.first_mut() {
                Some(b) => {
                    *b = first;
                    self.0 = rest;
                    Ok(1)
                }
                None => Ok(0),
            }
        }
    }

    fn file_bytes() -> Vec<u8> {
        let dim = 20;
        let ids: Vec<PointId> = (0..300).map(|i| i * 3).collect();
        let rows: Vec<f32> = (0..300 * dim)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let params = BuildParams::new(dim, Metric::Cosine);
        let index = VectorIndex::build(params, &ids, &rows, &NoProgress).expect("build");
        index.upsert(5_000, &rows[..dim]).expect("upsert");
        index.delete(3);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("i.seg");
        index.save(&path).expect("save");
        std::fs::read(&path).expect("read")
    }

    #[test]
    fn any_chunk_size_and_any_read_size_give_the_same_index() {
        let bytes = file_bytes();
        let len = bytes.len() as u64;
        let (params, whole, hidden, delta) = decode(&bytes[..], len, true).expect("whole");
        // 64 bytes: every section of more than one line crosses chunks.
        for (name, got) in [
            (
                "64-byte chunks",
                decode_in_chunks(&bytes[..], len, true, 64),
            ),
            (
                "1-byte reads",
                decode_in_chunks(OneByte(&bytes), len, true, 192),
            ),
        ] {
            let (p, frozen, h, d) = got.expect(name);
            assert_eq!(
                (p.dim, p.m, frozen.len()),
                (params.dim, params.m, whole.len())
            );
            assert_eq!(frozen.ids, whole.ids, "{name}");
            assert_eq!(frozen.links0, whole.links0, "{name}");
            assert_eq!(frozen.upper, whole.upper, "{name}");
            assert_eq!(frozen.vectors.as_flat(), whole.vectors.as_flat(), "{name}");
            assert_eq!(h.words(), hidden.words(), "{name}");
            assert_eq!(d.ids, delta.ids, "{name}");
            assert_eq!(d.rows.as_flat(), delta.rows.as_flat(), "{name}");
        }
    }

    #[test]
    fn a_damaged_count_reports_the_checksum() {
        let mut bytes = file_bytes();
        // The body's first field is the dimension: 0 would be "bad parameters".
        bytes[HEADER..HEADER + 4].copy_from_slice(&0u32.to_le_bytes());
        let len = bytes.len() as u64;
        let e = decode_in_chunks(&bytes[..], len, true, 64)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("checksum mismatch"), "{e}");
        // Cut short: the header's length disagrees before anything is read.
        let e = decode(&bytes[..100], 100, true).err().expect("refused");
        assert!(e.to_string().contains("truncated"), "{e}");
    }
}
