//! The machine's memory bandwidth, measured as STREAM's triad does (`a = b + s·c` over
//! arrays far larger than the caches, every core, best of several passes; 24 bytes counted
//! per element, as STREAM counts them).

use std::time::Instant;

/// Elements per array (3 × 256 MiB of f64).
const ELEMENTS: usize = 1 << 25;
/// Timed passes; the best counts.
const PASSES: usize = 5;

/// Bytes per second of the triad on every core.
pub fn triad_bytes_per_second() -> f64 {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = ELEMENTS.div_ceil(threads);
    let mut a = vec![0.0f64; ELEMENTS];
    let mut b = vec![0.0f64; ELEMENTS];
    let mut c = vec![0.0f64; ELEMENTS];
    // First touch on the threads that use the pages.
    std::thread::scope(|s| {
        for ((a, b), c) in a
            .chunks_mut(chunk)
            .zip(b.chunks_mut(chunk))
            .zip(c.chunks_mut(chunk))
        {
            s.spawn(move || {
                a.fill(0.0);
                b.fill(1.0);
                c.fill(2.0);
            });
        }
    });
    let mut best = f64::INFINITY;
    for _ in 0..PASSES {
        let started = Instant::now();
        std::thread::scope(|s| {
            for ((a, b), c) in a
                .chunks_mut(chunk)
                .zip(b.chunks(chunk))
                .zip(c.chunks(chunk))
            {
                s.spawn(move || {
                    for ((x, y), z) in a.iter_mut().zip(b).zip(c) {
                        *x = y + 3.0 * z;
                    }
                });
            }
        });
        best = best.min(started.elapsed().as_secs_f64());
    }
    std::hint::black_box(&a);
    (3 * 8 * ELEMENTS) as f64 / best
}
