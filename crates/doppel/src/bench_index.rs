//! `doppel bench index`: builds, freezes and searches a doppel index over `.npy` data and
//! prints one JSON object on stdout (progress goes to stderr).
//!
//! ```text
//! doppel bench index --base BASE.npy --queries Q.npy [--ground-truth GT.npy] --metric cosine|l2
//!     --k 10 --m 16 --ef-construction 200 --ef 16,32,64,128 [--filter-fraction 0.01] [--threads 1] --json
//! ```
//! BASE/Q: float32 C-order matrices; GT: int32/int64, one row per query, ids = BASE row numbers.
//! Recall is reported only when GT is given (for the filtered run the command computes the
//! exact GT over the allowed subset itself).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use clap::{Args, ValueEnum};
use doppel_index::{
    Bitset, BuildParams, Metric, Neighbor, PointId, Progress, SearchRequest, VectorIndex,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Metric names on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MetricArg {
    /// Cosine similarity (vectors normalised by the index).
    Cosine,
    /// Euclidean distance.
    L2,
}

/// Flags of `doppel bench index`.
#[derive(Args, Debug)]
pub struct BenchIndexArgs {
    /// Base vectors: float32 .npy, n × d.
    #[arg(long)]
    pub base: PathBuf,
    /// Query vectors: float32 .npy, q × d.
    #[arg(long)]
    pub queries: PathBuf,
    /// Exact neighbours: int32/int64 .npy, q × ≥k, ids are BASE row numbers.
    #[arg(long)]
    pub ground_truth: Option<PathBuf>,
    /// Similarity measure.
    #[arg(long, value_enum, default_value = "cosine")]
    pub metric: MetricArg,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// HNSW links per node (layer 0 keeps 2m).
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// HNSW construction breadth.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// Search breadths to sweep, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128")]
    pub ef: Vec<usize>,
    /// Also run filtered searches over a seeded random subset of this fraction of BASE
    /// (several comma-separated fractions: `filtered` holds the first, `filtered_runs` all).
    #[arg(long, value_delimiter = ',')]
    pub filter_fraction: Vec<f64>,
    /// Query threads (the build uses all cores).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Print JSON (the only output format; accepted for scripts).
    #[arg(long)]
    pub json: bool,
}

/// One row of the ef sweep.
#[derive(Clone, Debug, Serialize)]
struct SweepPoint {
    ef: usize,
    recall_at_k: Option<f64>,
    qps: f64,
    p50_us: f64,
    p99_us: f64,
}

/// The printed report.
#[derive(Debug, Serialize)]
struct Report {
    n: usize,
    dim: usize,
    queries: usize,
    metric: String,
    k: usize,
    m: usize,
    ef_construction: usize,
    build_s: f64,
    /// Of `build_s`, seconds in hnsw_rs (the upper layers).
    upper_s: f64,
    freeze_s: f64,
    /// Layer-0 links the freeze added so every node is reachable.
    repaired_links: usize,
    /// Nodes still unreachable from the entry point over layer 0 (0 unless the repair gave up).
    unreachable: usize,
    index_bytes: usize,
    peak_rss_bytes: Option<u64>,
    /// Resident bytes just before the build (input vectors loaded).
    rss_before_build_bytes: Option<u64>,
    /// Peak resident bytes during the build and freeze (the high-water mark is reset first).
    build_peak_rss_bytes: Option<u64>,
    results: Vec<SweepPoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter_fraction: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filtered_allowed: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filtered: Option<Vec<SweepPoint>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    filtered_runs: Vec<FilteredRun>,
}

/// The sweep over one allowed subset.
#[derive(Debug, Serialize)]
struct FilteredRun {
    fraction: f64,
    allowed: usize,
    results: Vec<SweepPoint>,
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn set_total(&self, total: u64) {
        self.0.set_length(total);
    }
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
}

/// Runs the benchmark.
pub fn run(args: &BenchIndexArgs) -> anyhow::Result<()> {
    ensure!(args.k > 0, "--k must be at least 1");
    ensure!(args.threads > 0, "--threads must be at least 1");
    ensure!(!args.ef.is_empty(), "--ef needs at least one value");
    let base = read_npy(&args.base).with_context(|| format!("reading {}", args.base.display()))?;
    let queries =
        read_npy(&args.queries).with_context(|| format!("reading {}", args.queries.display()))?;
    let (n, dim) = (base.rows, base.cols);
    ensure!(
        queries.cols == dim,
        "queries have {} dims, base has {dim}",
        queries.cols
    );
    ensure!(n < u32::MAX as usize, "too many base rows");
    let base_v = base.into_f32()?;
    let query_v = queries.into_f32()?;
    let gt = match &args.ground_truth {
        Some(p) => {
            let g = read_npy(p).with_context(|| format!("reading {}", p.display()))?;
            ensure!(
                g.rows == query_v.len() / dim,
                "ground truth has {} rows for {} queries",
                g.rows,
                query_v.len() / dim
            );
            ensure!(
                g.cols >= args.k,
                "ground truth has {} columns, k is {}",
                g.cols,
                args.k
            );
            Some(g.into_ids()?)
        }
        None => None,
    };
    let metric = match args.metric {
        MetricArg::Cosine => Metric::Cosine,
        MetricArg::L2 => Metric::L2,
    };
    let mut params = BuildParams::new(dim, metric);
    params.m = args.m;
    params.ef_construction = args.ef_construction;

    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template("build {bar:40} {pos}/{len} {elapsed_precise} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let ids: Vec<PointId> = (0..n as PointId).collect();
    let rss_before_build_bytes = reset_peak_rss().then(|| status_bytes("VmRSS:")).flatten();
    let (index, timings) = VectorIndex::build_timed(params, &ids, &base_v, &Bar(bar.clone()))?;
    let build_peak_rss_bytes = rss_before_build_bytes.and_then(|_| peak_rss_bytes());
    bar.finish_and_clear();
    drop(base_v);
    eprintln!(
        "built in {:.1} s (hnsw_rs upper layers {:.1} s) + freeze {:.2} s ({} links added for reachability)",
        timings.graph_s, timings.upper_s, timings.freeze_s, timings.repaired_links
    );

    let qs: Vec<&[f32]> = query_v.chunks_exact(dim).collect();
    let mut results = Vec::new();
    for &ef in &args.ef {
        let point = sweep(&index, &qs, args, ef, None, gt.as_deref());
        eprintln!(
            "ef {ef}: recall {:?} qps {:.0}",
            point.recall_at_k, point.qps
        );
        results.push(point);
    }

    let mut filtered_runs = Vec::new();
    for &f in &args.filter_fraction {
        ensure!(f > 0.0 && f <= 1.0, "--filter-fraction must be in (0, 1]");
        let allowed = random_subset(n, f, 0x5eed);
        let mut fgt = Vec::with_capacity(qs.len());
        for q in &qs {
            let req = SearchRequest {
                query: q,
                k: args.k,
                ef: args.k,
                allowed: Some(&allowed),
            };
            fgt.push(
                index
                    .exact_search(&req)?
                    .iter()
                    .map(|nb| nb.id)
                    .collect::<Vec<_>>(),
            );
        }
        let mut rows = Vec::new();
        for &ef in &args.ef {
            let point = sweep(&index, &qs, args, ef, Some(&allowed), Some(&fgt));
            eprintln!(
                "filtered {f} ef {ef}: recall {:?} qps {:.0}",
                point.recall_at_k, point.qps
            );
            rows.push(point);
        }
        filtered_runs.push(FilteredRun {
            fraction: f,
            allowed: allowed.count(),
            results: rows,
        });
    }
    let first = filtered_runs.first();
    let filter_fraction = first.map(|r| r.fraction);
    let filtered_allowed = first.map(|r| r.allowed);
    let filtered = first.map(|r| r.results.clone());
    if filtered_runs.len() == 1 {
        filtered_runs.clear();
    }

    let report = Report {
        n,
        dim,
        queries: qs.len(),
        metric: format!("{metric:?}").to_lowercase(),
        k: args.k,
        m: args.m,
        ef_construction: args.ef_construction,
        build_s: timings.graph_s,
        upper_s: timings.upper_s,
        freeze_s: timings.freeze_s,
        repaired_links: timings.repaired_links,
        unreachable: timings.unreachable,
        index_bytes: index.stats().memory_bytes,
        peak_rss_bytes: peak_rss_bytes(),
        rss_before_build_bytes,
        build_peak_rss_bytes,
        results,
        filter_fraction,
        filtered_allowed,
        filtered,
        filtered_runs,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Runs every query once at `ef` on `args.threads` threads.
fn sweep(
    index: &VectorIndex,
    qs: &[&[f32]],
    args: &BenchIndexArgs,
    ef: usize,
    allowed: Option<&Bitset>,
    gt: Option<&[Vec<u32>]>,
) -> SweepPoint {
    let k = args.k;
    let threads = args.threads.min(qs.len()).max(1);
    let per = qs.len().div_ceil(threads);
    let started = Instant::now();
    let parts: Vec<Vec<(usize, f64, Vec<Neighbor>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let lo = (t * per).min(qs.len());
                    let hi = ((t + 1) * per).min(qs.len());
                    (lo..hi)
                        .map(|i| {
                            let req = SearchRequest {
                                query: qs[i],
                                k,
                                ef,
                                allowed,
                            };
                            let t0 = Instant::now();
                            let res = index.search(&req).unwrap_or_default();
                            (i, t0.elapsed().as_secs_f64() * 1e6, res)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let mut lat: Vec<f64> = parts.iter().flatten().map(|(_, us, _)| *us).collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    let recall_at_k = gt.map(|gt| {
        let mut hit = 0usize;
        let mut total = 0usize;
        for (i, _, res) in parts.iter().flatten() {
            let want = &gt[*i][..k.min(gt[*i].len())];
            total += want.len();
            hit += res.iter().filter(|nb| want.contains(&nb.id)).count();
        }
        if total == 0 {
            1.0
        } else {
            hit as f64 / total as f64
        }
    });
    SweepPoint {
        ef,
        recall_at_k,
        qps: qs.len() as f64 / wall.max(1e-9),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    }
}

/// A seeded random subset (splitmix64) of `0..n` holding about `fraction` of the ids.
fn random_subset(n: usize, fraction: f64, seed: u64) -> Bitset {
    let mut state = seed;
    let threshold = (fraction * u64::MAX as f64) as u64;
    let mut set = Bitset::new(n);
    for id in 0..n as PointId {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        if z <= threshold {
            set.insert(id);
        }
    }
    set
}

/// Peak resident set size (VmHWM) of this process, Linux only.
fn peak_rss_bytes() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// A `/proc/self/status` line in bytes (`VmHWM:`, `VmRSS:`).
fn status_bytes(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets the peak-RSS mark (`VmHWM`) to the current RSS (Linux: 5 → `/proc/self/clear_refs`).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Element types this reader understands.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Dtype {
    F32,
    F64,
    I32,
    I64,
}

/// A 2-D .npy matrix (C order, little endian).
struct Npy {
    rows: usize,
    cols: usize,
    dtype: Dtype,
    data: Vec<u8>,
}

impl Npy {
    fn values(&self) -> impl Iterator<Item = &[u8]> {
        let w = match self.dtype {
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
        };
        self.data.chunks_exact(w)
    }

    fn into_f32(self) -> anyhow::Result<Vec<f32>> {
        Ok(match self.dtype {
            Dtype::F32 => self
                .values()
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F64 => self
                .values()
                .map(|b| {
                    f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                })
                .collect(),
            other => bail!("expected a float matrix, found {other:?}"),
        })
    }

    /// Rows of ids (as u32; negative or huge ids are an error).
    fn into_ids(self) -> anyhow::Result<Vec<Vec<u32>>> {
        let flat: Vec<i64> = match self.dtype {
            Dtype::I32 => self
                .values()
                .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
            Dtype::I64 => self
                .values()
                .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect(),
            other => bail!("expected an int32/int64 matrix, found {other:?}"),
        };
        flat.chunks(self.cols.max(1))
            .map(|row| {
                row.iter()
                    .map(|&v| u32::try_from(v).context("ground-truth id out of range"))
                    .collect()
            })
            .collect()
    }
}

/// Reads a 2-D (or 1-D, as one column) C-order little-endian .npy file.
fn read_npy(path: &Path) -> anyhow::Result<Npy> {
    let bytes = std::fs::read(path)?;
    ensure!(
        bytes.len() >= 10 && &bytes[..6] == b"\x93NUMPY",
        "not a .npy file"
    );
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 => {
            ensure!(bytes.len() >= 12, "truncated .npy header");
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => bail!("unsupported .npy version {v}"),
    };
    let header = bytes
        .get(start..start + header_len)
        .context("truncated .npy header")?;
    let header = std::str::from_utf8(header).context("header is not text")?;
    let descr = dict_value(header, "descr").context("no descr")?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .context("bad descr")?;
    let dtype = match descr {
        "<f4" => Dtype::F32,
        "<f8" => Dtype::F64,
        "<i4" => Dtype::I32,
        "<i8" => Dtype::I64,
        other => bail!("unsupported dtype {other}"),
    };
    let fortran = dict_value(header, "fortran_order").context("no fortran_order")?;
    ensure!(
        fortran.starts_with("False"),
        "Fortran-order arrays are not supported"
    );
    let shape_start = header.find('(').context("no shape")?;
    let shape_end = header[shape_start..].find(')').context("no shape")? + shape_start;
    let dims: Vec<usize> = header[shape_start + 1..shape_end]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().context("bad shape"))
        .collect::<anyhow::Result<_>>()?;
    let (rows, cols) = match dims.as_slice() {
        [r, c] => (*r, *c),
        [r] => (*r, 1),
        _ => bail!("expected a 1-D or 2-D array, got shape {dims:?}"),
    };
    let width = match dtype {
        Dtype::F32 | Dtype::I32 => 4,
        Dtype::F64 | Dtype::I64 => 8,
    };
    let body = &bytes[start + header_len..];
    let need = rows
        .checked_mul(cols)
        .and_then(|x| x.checked_mul(width))
        .context("shape too large")?;
    ensure!(
        body.len() >= need,
        "file holds {} data bytes, shape needs {need}",
        body.len()
    );
    Ok(Npy {
        rows,
        cols,
        dtype,
        data: body[..need].to_vec(),
    })
}

/// The raw text after `'key':` in a .npy header dict, up to the next top-level comma.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))?;
    let rest = header[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?;
    Some(rest.trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn reads_float_and_int_matrices() {
        let dir = std::env::temp_dir().join(format!("doppel-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let f: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let p = dir.join("f.npy");
        std::fs::write(&p, npy("<f4", "(2, 3)", &f)).unwrap_or_default();
        let m = read_npy(&p).expect("read");
        assert_eq!((m.rows, m.cols), (2, 3));
        assert_eq!(
            m.into_f32().expect("f32"),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        let i: Vec<u8> = [7i64, 8, 9, 10]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        std::fs::write(&p, npy("<i8", "(2, 2)", &i)).unwrap_or_default();
        assert_eq!(
            read_npy(&p).expect("read").into_ids().expect("ids"),
            vec![vec![7, 8], vec![9, 10]]
        );
        std::fs::write(&p, npy("<f4", "(5, 3)", &f)).unwrap_or_default();
        assert!(read_npy(&p).is_err(), "short data refused");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn subset_fraction_is_close() {
        let s = random_subset(100_000, 0.01, 1);
        assert!((900..1100).contains(&s.count()), "{}", s.count());
    }
}
