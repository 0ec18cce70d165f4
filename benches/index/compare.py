#!/usr/bin/env python3
"""Side-by-side: `doppel bench index` (release) vs hnswlib on the same data.

Data sets (written as .npy to a scratch dir, never committed):
  gauss   200k x 64 Gaussian mixture (200 clusters, normalised, seeded), 1000 queries, cosine
  fashion Fashion-MNIST (Debian package dataset-fashion-mnist), 60k base, 10k queries, l2 on raw pixels

Both use the same M / ef_construction and one query thread; hnswlib builds with all cores.
Prints recall@10 / QPS per ef, QPS ratio at equal recall (interpolated), build time, memory,
and filtered search at 10 % and 1 % allowed. Usage:

  python3 benches/index/compare.py [--sets gauss,fashion] [--scratch /tmp/doppel-bench]
"""

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

K = 10
EFS = [10, 16, 24, 32, 48, 64, 128]
FILTERS = [0.1, 0.01]
FASHION = "/usr/share/datasets/fashion-mnist"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def exact_gt(base, queries, metric, k=K, allowed=None):
    """Exact top-k row ids (by dot for cosine on normalised data, by L2 otherwise)."""
    ids = np.arange(len(base)) if allowed is None else np.flatnonzero(allowed)
    b = base[ids]
    out = np.empty((len(queries), k), dtype=np.int64)
    bn = (b * b).sum(1) if metric == "l2" else None
    for s in range(0, len(queries), 500):
        q = queries[s:s + 500]
        sims = q @ b.T
        if metric == "l2":
            sims = 2 * sims - bn[None, :]
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.take_along_axis(sims, part, 1).argsort(axis=1)[:, ::-1]
        out[s:s + 500] = ids[np.take_along_axis(part, order, 1)]
    return out


def gauss(seed=42, n=200_000, nq=1000, dim=64, clusters=200):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)

    def draw(m):
        c = rng.integers(0, clusters, size=m)
        x = centres[c] + 0.35 * rng.normal(size=(m, dim)).astype(np.float32)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    return draw(n), draw(nq), "cosine"


def idx_images(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    n, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows * cols).astype(np.float32)


def fashion():
    base = idx_images(os.path.join(FASHION, "train-images-idx3-ubyte.gz"))
    queries = idx_images(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz"))
    return base, queries, "l2"


def random_subset(n, fraction, seed=0x5EED):
    """Same splitmix64 subset as `doppel bench index --filter-fraction`."""
    mask = np.zeros(n, dtype=bool)
    state = seed
    thr = int(fraction * float(2**64 - 1))
    m64 = (1 << 64) - 1
    for i in range(n):
        state = (state + 0x9E3779B97F4A7C15) & m64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m64
        z ^= z >> 31
        mask[i] = z <= thr
    return mask


def recall(found, gt):
    return float(np.mean([len(set(f[:K]) & set(g[:K])) / K for f, g in zip(found, gt)]))


def run_hnswlib(base, queries, metric, gt, m, efc, scratch, allowed_sets):
    import hnswlib

    space = "ip" if metric == "cosine" else "l2"  # cosine data are already normalised
    idx = hnswlib.Index(space=space, dim=base.shape[1])
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    idx.init_index(max_elements=len(base), M=m, ef_construction=efc, random_seed=100)
    idx.set_num_threads(os.cpu_count() or 1)
    idx.add_items(base, np.arange(len(base)))
    build_s = time.perf_counter() - t0
    path = os.path.join(scratch, "hnswlib.bin")
    idx.save_index(path)
    index_bytes = os.path.getsize(path)
    idx.set_num_threads(1)
    res = []
    for ef in EFS:
        idx.set_ef(max(ef, K))
        t0 = time.perf_counter()
        labels, _ = idx.knn_query(queries, k=K, num_threads=1)
        dt = time.perf_counter() - t0
        res.append({"ef": ef, "recall_at_k": recall(labels, gt), "qps": len(queries) / dt})
    filtered = {}
    for frac, (mask, fgt) in allowed_sets.items():
        rows = []
        nq = min(len(queries), 200)  # python filter callbacks are slow
        for ef in [16, 64]:
            idx.set_ef(max(ef, K))
            t0 = time.perf_counter()
            labels = []
            for q in queries[:nq]:
                lab, _ = idx.knn_query(q, k=K, num_threads=1, filter=lambda i: bool(mask[i]))
                labels.append(lab[0])
            dt = time.perf_counter() - t0
            rows.append({"ef": ef, "recall_at_k": recall(labels, fgt[:nq]), "qps": nq / dt})
        filtered[frac] = rows
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"build_s": build_s, "index_bytes": index_bytes, "rss_growth_bytes": (rss1 - rss0) * 1024,
            "results": res, "filtered": filtered}


def run_doppel(binary, files, metric, m, efc):
    cmd = [binary, "bench", "index", "--base", files["base"], "--queries", files["queries"],
           "--ground-truth", files["gt"], "--metric", metric, "--k", str(K), "--m", str(m),
           "--ef-construction", str(efc), "--ef", ",".join(map(str, EFS)),
           "--filter-fraction", ",".join(map(str, FILTERS)), "--threads", "1", "--json"]
    log("$", " ".join(cmd))
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout
    return json.loads(out)


def qps_at(results, target):
    """QPS at recall `target`, interpolated linearly between the sweep points (None if never reached)."""
    pts = sorted((r["recall_at_k"], r["qps"]) for r in results if r.get("recall_at_k") is not None)
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= target <= r1:
            return q0 if r1 == r0 else q0 + (q1 - q0) * (target - r0) / (r1 - r0)
    if pts and pts[0][0] >= target:
        return max(q for r, q in pts if r >= target)
    return None


def report(name, d, h):
    print(f"\n## {name}  (n={d['n']}, dim={d['dim']}, queries={d['queries']}, metric={d['metric']}, "
          f"M={d['m']}, ef_construction={d['ef_construction']})")
    print("| ef | doppel recall@10 | doppel QPS | doppel p99 µs | hnswlib recall@10 | hnswlib QPS |")
    print("|---|---|---|---|---|---|")
    for a, b in zip(d["results"], h["results"]):
        print(f"| {a['ef']} | {a['recall_at_k']:.4f} | {a['qps']:,.0f} | {a['p99_us']:.0f} | "
              f"{b['recall_at_k']:.4f} | {b['qps']:,.0f} |")
    for target in (0.90, 0.95, 0.99):
        qd, qh = qps_at(d["results"], target), qps_at(h["results"], target)
        ratio = f"{qd / qh:.2f}x" if qd and qh else "n/a"
        print(f"QPS at recall {target}: doppel {qd and round(qd):,} vs hnswlib {qh and round(qh):,} -> {ratio}")
    print(f"build: doppel {d['build_s']:.1f} s (+ freeze {d['freeze_s']:.2f} s) vs hnswlib {h['build_s']:.1f} s "
          f"-> {(d['build_s'] + d['freeze_s']) / h['build_s']:.2f}x")
    print(f"index memory: doppel {d['index_bytes'] / 1e6:.1f} MB vs hnswlib {h['index_bytes'] / 1e6:.1f} MB "
          f"-> {d['index_bytes'] / h['index_bytes']:.2f}x  (doppel peak RSS {d['peak_rss_bytes'] / 1e6:.0f} MB)")
    runs = d.get("filtered_runs") or [{"fraction": d["filter_fraction"], "allowed": d["filtered_allowed"],
                                       "results": d["filtered"]}]
    for run in runs:
        frac = run["fraction"]
        hb = h["filtered"].get(frac, [])
        best = {r["ef"]: r for r in run["results"]}
        for hr in hb:
            dr = best.get(hr["ef"])
            if dr:
                print(f"filtered {frac:.0%} ({run['allowed']} allowed) ef={hr['ef']}: doppel recall "
                      f"{dr['recall_at_k']:.4f} QPS {dr['qps']:,.0f} | hnswlib (python filter) recall "
                      f"{hr['recall_at_k']:.4f} QPS {hr['qps']:,.0f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="gauss,fashion")
    ap.add_argument("--scratch", default="/tmp/doppel-bench")
    ap.add_argument("--binary", default="target/release/doppel")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build --release")
    args = ap.parse_args()
    os.makedirs(args.scratch, exist_ok=True)
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "doppel"], check=True)
    for name in args.sets.split(","):
        base, queries, metric = {"gauss": gauss, "fashion": fashion}[name]()
        log(f"{name}: base {base.shape}, queries {queries.shape}, metric {metric}; computing ground truth")
        gt = exact_gt(base, queries, metric)
        files = {k: os.path.join(args.scratch, f"{name}_{k}.npy") for k in ("base", "queries", "gt")}
        np.save(files["base"], base)
        np.save(files["queries"], queries)
        np.save(files["gt"], gt)
        d = run_doppel(args.binary, files, metric, args.m, args.ef_construction)
        allowed = {}
        for f in FILTERS:
            mask = random_subset(len(base), f)
            allowed[f] = (mask, exact_gt(base, queries[:200], metric, allowed=mask))
        h = run_hnswlib(base, queries, metric, gt, args.m, args.ef_construction, args.scratch, allowed)
        with open(os.path.join(args.scratch, f"{name}_result.json"), "w") as f:
            json.dump({"doppel": d, "hnswlib": {**h, "filtered": {str(k): v for k, v in h["filtered"].items()}}}, f)
        report(name, d, h)


if __name__ == "__main__":
    main()
