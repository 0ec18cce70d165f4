#!/usr/bin/env python3
"""Side-by-side: `doppel bench index` (release) vs hnswlib on the same data.

Data sets (written as .npy to a scratch dir, never committed):
  gauss   200k x 64 Gaussian mixture (200 equal-odds clusters, normalised, seed 42), 1000 queries, cosine
  zipf    200k x 64 Gaussian mixture with Zipf-sized clusters (1000 clusters, P(rank r) ~ r^-1.1,
          normalised, seed 42), 1000 queries from the same distribution, cosine
  fashion Fashion-MNIST (Debian package dataset-fashion-mnist), 60k base, 10k queries, l2 on raw pixels

Both use the same M / ef_construction and one query thread, and build with the same number of
threads (--build-threads, default RAYON_NUM_THREADS or all cores: doppel gets it as
RAYON_NUM_THREADS, hnswlib as num_threads). Prints recall@10 / QPS per ef, QPS ratio at equal
recall (interpolated), build time and the build ratio doppel/hnswlib, memory, and filtered
search at 10 % and 1 % allowed. Usage:

  python3 benches/index/compare.py [--sets gauss,zipf,fashion] [--n 100000] [--nq 1000]
      [--fashion-n 60000] [--json results.json] [--scratch /tmp/doppel-bench] [--no-build]
"""

import argparse
import gzip
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from importlib import metadata

import numpy as np

K = 10
EFS = [10, 16, 24, 32, 48, 64, 128]
FILTERS = [0.1, 0.01]
FASHION = "/usr/share/datasets/fashion-mnist"  # dpkg -L dataset-fashion-mnist
DEFAULT_N = {"gauss": 200_000, "zipf": 200_000, "fashion": 60_000}


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


def gauss(n=200_000, nq=1000, seed=42, dim=64, clusters=200):
    """Equal-odds mixture. Same draw order as before --n existed, so the default data are
    unchanged; the queries are drawn after the base, so they change with n."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)

    def draw(m):
        c = rng.integers(0, clusters, size=m)
        x = centres[c] + 0.35 * rng.normal(size=(m, dim)).astype(np.float32)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    base = draw(n)
    return base, draw(nq), "cosine", {"seed": seed, "clusters": clusters, "sigma": 0.35}


def zipf(n=200_000, nq=1000, seed=42, dim=64, clusters=1000, exponent=1.1, sigma=0.35):
    """Mixture whose cluster of rank r (1-based) is drawn with probability ~ r^-exponent:
    at 200k the largest cluster holds ~18 % of the points, the top 10 ~48 %, and the
    smallest expect ~18 each. Centres, base and queries come from independent child seeds
    of `seed`, so the queries are the same for every n. Rows are in random cluster order."""
    rng_c, rng_b, rng_q = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    centres = rng_c.normal(size=(clusters, dim)).astype(np.float32)
    p = 1.0 / np.arange(1, clusters + 1, dtype=np.float64) ** exponent
    p /= p.sum()

    def draw(rng, m):
        c = rng.choice(clusters, size=m, p=p)
        x = centres[c] + sigma * rng.normal(size=(m, dim)).astype(np.float32)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), c

    base, labels = draw(rng_b, n)
    queries, _ = draw(rng_q, nq)
    sizes = np.sort(np.bincount(labels, minlength=clusters))[::-1]
    info = {"seed": seed, "clusters": clusters, "exponent": exponent, "sigma": sigma,
            "largest_cluster": int(sizes[0]), "top10_share": float(sizes[:10].sum() / n),
            "clusters_under_50": int((sizes < 50).sum()), "empty_clusters": int((sizes == 0).sum())}
    return base, queries, "cosine", info


def idx_images(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    n, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows * cols).astype(np.float32)


def fashion(n=60_000, nq=10_000):
    """First n training images as base, first nq test images as queries."""
    base = idx_images(os.path.join(FASHION, "train-images-idx3-ubyte.gz"))[:n]
    queries = idx_images(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz"))[:nq]
    return base, queries, "l2", {"source": FASHION}


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


def proc_status(pid="self"):
    """VmRSS / VmHWM (bytes) and Threads from /proc/PID/status; {} if it is gone."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(val.split()[0]) * 1024
                elif key == "Threads":
                    out[key] = int(val)
    except OSError:
        pass
    return out


def thread_cpu_seconds(pid):
    """{thread id: user + system CPU seconds} for every thread of PID ({} if it is gone)."""
    tck = os.sysconf("SC_CLK_TCK")
    out = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / tck
    except OSError:
        pass
    return out


def default_build_threads():
    """What rayon's global pool would use: RAYON_NUM_THREADS, else the cores this process may run on."""
    env = os.environ.get("RAYON_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else len(os.sched_getaffinity(0))


def run_hnswlib(base, queries, metric, gt, m, efc, scratch, allowed_sets, build_threads):
    import hnswlib

    space = "ip" if metric == "cosine" else "l2"  # cosine data are already normalised
    idx = hnswlib.Index(space=space, dim=base.shape[1])
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    vm0 = proc_status().get("VmRSS", 0)
    cpu0 = time.process_time()  # all threads of this process
    t0 = time.perf_counter()
    idx.init_index(max_elements=len(base), M=m, ef_construction=efc, random_seed=100)
    idx.set_num_threads(build_threads)
    idx.add_items(base, np.arange(len(base)), num_threads=build_threads)
    build_s = time.perf_counter() - t0
    build_cpu_s = time.process_time() - cpu0
    vm1 = proc_status().get("VmRSS", 0)
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
    # rss_growth_bytes: growth of this process's peak RSS over the whole run (0 once an earlier
    # set set a higher peak); build_rss_delta_bytes: VmRSS after add_items minus before init_index.
    return {"build_s": build_s, "build_threads": build_threads, "build_cpu_s": build_cpu_s,
            "build_cores_used": build_cpu_s / build_s if build_s else None, "index_bytes": index_bytes,
            "rss_growth_bytes": (rss1 - rss0) * 1024, "build_rss_delta_bytes": vm1 - vm0,
            "results": res, "filtered": filtered}


def run_doppel(binary, files, metric, m, efc, build_threads):
    """Runs `doppel bench index` and returns (its JSON, what compare.py saw from outside).

    doppel's JSON has no build-thread count and only a whole-run peak RSS, so /proc/PID is read
    when its stderr says "built in" (graph + freeze done, before any search): VmHWM there is
    the peak RSS through loading + build + freeze (build + freeze only for a doppel that resets
    the mark before building and reports build_peak_rss_bytes itself); the threads other than main that have used
    at least 10 % of the busiest one's CPU are the rayon workers the build ran on (the global
    pool outlives the build; a search thread may already exist, with ~0 CPU); and CPU seconds
    of all threads / (graph + freeze seconds) the cores the build kept busy on average."""
    cmd = [binary, "bench", "index", "--base", files["base"], "--queries", files["queries"],
           "--ground-truth", files["gt"], "--metric", metric, "--k", str(K), "--m", str(m),
           "--ef-construction", str(efc), "--ef", ",".join(map(str, EFS)),
           "--filter-fraction", ",".join(map(str, FILTERS)), "--threads", "1", "--json"]
    env = {**os.environ, "RAYON_NUM_THREADS": str(build_threads)}
    log(f"$ RAYON_NUM_THREADS={build_threads}", " ".join(cmd))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    seen = {}

    def relay_stderr():
        for line in proc.stderr:
            if line.startswith("built in") and not seen:
                seen.update(proc_status(proc.pid))
                seen["cpu"] = thread_cpu_seconds(proc.pid)
            sys.stderr.write(line)
            sys.stderr.flush()

    relay = threading.Thread(target=relay_stderr, daemon=True)
    relay.start()
    out = proc.stdout.read()
    proc.wait()
    relay.join()
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    d = json.loads(out)
    cpu = seen.get("cpu") or {}
    workers = [c for tid, c in cpu.items() if tid != proc.pid]
    busy = [c for c in workers if c >= 0.1 * max(workers)] if workers and max(workers) > 0 else []
    build_wall = d["build_s"] + d["freeze_s"]
    observed = {
        "rayon_num_threads": build_threads,
        "build_worker_threads": len(busy) if cpu else None,
        "build_cpu_s": sum(cpu.values()) if cpu else None,
        "build_cores_used": sum(cpu.values()) / build_wall if cpu and build_wall else None,
        "threads_at_build_end": seen.get("Threads"),
        "peak_rss_through_build_bytes": seen.get("VmHWM"),
    }
    return d, observed


def qps_at(results, target):
    """QPS at recall `target`, interpolated linearly between the sweep points (None if never reached)."""
    pts = sorted((r["recall_at_k"], r["qps"]) for r in results if r.get("recall_at_k") is not None)
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= target <= r1:
            return q0 if r1 == r0 else q0 + (q1 - q0) * (target - r0) / (r1 - r0)
    if pts and pts[0][0] >= target:
        return max(q for r, q in pts if r >= target)
    return None


def fmt_qps(q):
    return f"{q:,.0f}" if q is not None else "not reached"


def summarise(d, obs, h):
    """The headline numbers for one set (also what --json writes under "summary")."""
    qps = {}
    for target in (0.90, 0.95, 0.99):
        qd, qh = qps_at(d["results"], target), qps_at(h["results"], target)
        qps[str(target)] = {"doppel": qd, "hnswlib": qh, "ratio": qd / qh if qd and qh else None}
    doppel_build = d["build_s"] + d["freeze_s"]
    return {
        "qps_at_recall": qps,
        "qps_ratio_at_recall_0.95": qps["0.95"]["ratio"],
        "build_s": {"doppel_graph": d["build_s"], "doppel_freeze": d["freeze_s"],
                    "doppel_total": doppel_build, "hnswlib": h["build_s"]},
        "build_ratio_doppel_over_hnswlib": doppel_build / h["build_s"] if h["build_s"] else None,
        "build_threads": {"doppel_rayon_num_threads": obs["rayon_num_threads"],
                          "doppel_workers_seen": obs["build_worker_threads"],
                          "hnswlib": h["build_threads"],
                          "doppel_cores_used": obs["build_cores_used"],
                          "hnswlib_cores_used": h["build_cores_used"]},
        "index_bytes": {"doppel": d["index_bytes"], "hnswlib": h["index_bytes"],
                        "ratio": d["index_bytes"] / h["index_bytes"]},
        "doppel_peak_rss_bytes": d.get("peak_rss_bytes"),
        # Reported by newer doppel binaries only (None otherwise).
        "doppel_build_peak_rss_bytes": d.get("build_peak_rss_bytes"),
        "doppel_rss_before_build_bytes": d.get("rss_before_build_bytes"),
        "doppel_upper_s": d.get("upper_s"),
        "doppel_peak_rss_at_build_end_bytes": obs["peak_rss_through_build_bytes"],
    }


def report(name, info, d, obs, h, summary):
    print(f"\n## {name}  (n={d['n']}, dim={d['dim']}, queries={d['queries']}, metric={d['metric']}, "
          f"M={d['m']}, ef_construction={d['ef_construction']})")
    if info:
        print("data: " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in info.items()))
    print("| ef | doppel recall@10 | doppel QPS | doppel p99 µs | hnswlib recall@10 | hnswlib QPS |")
    print("|---|---|---|---|---|---|")
    for a, b in zip(d["results"], h["results"]):
        rd = f"{a['recall_at_k']:.4f}" if a["recall_at_k"] is not None else "n/a"
        print(f"| {a['ef']} | {rd} | {a['qps']:,.0f} | {a['p99_us']:.0f} | "
              f"{b['recall_at_k']:.4f} | {b['qps']:,.0f} |")
    for target, row in summary["qps_at_recall"].items():
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] else "n/a"
        print(f"QPS at recall {target}: doppel {fmt_qps(row['doppel'])} vs hnswlib "
              f"{fmt_qps(row['hnswlib'])} -> {ratio}")
    bt = summary["build_threads"]
    seen = bt["doppel_workers_seen"]
    def cores(c):
        return f"{c:.2f}" if c is not None else "?"

    print(f"build threads: doppel {bt['doppel_rayon_num_threads']} (RAYON_NUM_THREADS; "
          f"{seen if seen is not None else '?'} busy rayon workers seen, {cores(bt['doppel_cores_used'])} "
          f"cores used on average) | hnswlib {bt['hnswlib']} (num_threads; {cores(bt['hnswlib_cores_used'])} "
          f"cores used on average)")
    if seen is not None and seen != bt["hnswlib"]:
        print(f"WARNING: doppel built on {seen} threads, hnswlib on {bt['hnswlib']}: build times not comparable")
    b = summary["build_s"]
    ratio = summary["build_ratio_doppel_over_hnswlib"]
    upper = f" (of which hnsw_rs upper layers {d['upper_s']:.2f} s)" if d.get("upper_s") is not None else ""
    print(f"build ratio doppel/hnswlib: {ratio:.2f}x  (doppel {b['doppel_graph']:.2f} s graph{upper} + "
          f"{b['doppel_freeze']:.2f} s freeze = {b['doppel_total']:.2f} s vs hnswlib {b['hnswlib']:.2f} s)")
    rss = d.get("peak_rss_bytes")
    rss_build = obs["peak_rss_through_build_bytes"]
    print(f"index memory: doppel {d['index_bytes'] / 1e6:.1f} MB vs hnswlib {h['index_bytes'] / 1e6:.1f} MB "
          f"-> {d['index_bytes'] / h['index_bytes']:.2f}x")
    def mb(v):
        return f"{v / 1e6:.0f} MB" if v is not None else "n/a"

    parts = [f"{mb(rss)} whole run (peak_rss_bytes)"]
    if "build_peak_rss_bytes" in d:
        parts.append(f"{mb(d['build_peak_rss_bytes'])} during build + freeze (build_peak_rss_bytes; "
                     f"{mb(d.get('rss_before_build_bytes'))} before it, rss_before_build_bytes)")
    parts.append(f"{mb(rss_build)} VmHWM at build end, read by compare.py")
    print("doppel peak RSS: " + " | ".join(parts))
    print(f"hnswlib build RSS delta: {h['build_rss_delta_bytes'] / 1e6:.0f} MB (VmRSS after add_items - before)")
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


def run_meta(args):
    def git_head():
        try:
            return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    binary = os.path.abspath(args.binary)
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "args": vars(args),
        "git_head": git_head(),
        "doppel_binary": binary,
        "doppel_binary_mtime": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(os.path.getmtime(binary)))
        if os.path.exists(binary) else None,
        "hnswlib": metadata.version("hnswlib"),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "build_threads": args.build_threads,
        "query_threads": 1,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="gauss,zipf,fashion")
    ap.add_argument("--n", type=int, default=None,
                    help="base rows for gauss and zipf (default 200000 each)")
    ap.add_argument("--fashion-n", type=int, default=DEFAULT_N["fashion"],
                    help="base rows for fashion: the first N training images (max 60000)")
    ap.add_argument("--nq", type=int, default=None,
                    help="cap on queries for every set (default: gauss/zipf 1000, fashion 10000)")
    ap.add_argument("--json", metavar="PATH", default=None,
                    help="write every set's results (doppel, hnswlib, summary) to PATH, rewritten after each set")
    ap.add_argument("--scratch", default="/tmp/doppel-bench")
    ap.add_argument("--binary", default="target/release/doppel")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--build-threads", type=int, default=default_build_threads(),
                    help="build threads for both (doppel via RAYON_NUM_THREADS); default "
                         "RAYON_NUM_THREADS or all usable cores")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build --release")
    args = ap.parse_args()
    makers = {"gauss": gauss, "zipf": zipf, "fashion": fashion}
    names = [s for s in args.sets.split(",") if s]
    unknown = [s for s in names if s not in makers]
    if unknown:
        ap.error(f"unknown set(s) {unknown}; choose from {sorted(makers)}")
    os.makedirs(args.scratch, exist_ok=True)
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "doppel"], check=True)
    out = {"meta": run_meta(args), "sets": {}}
    for name in names:
        if name == "fashion":
            base, queries, metric, info = fashion(n=args.fashion_n)
        else:
            base, queries, metric, info = makers[name](n=args.n or DEFAULT_N[name])
        if args.nq:
            queries = queries[:args.nq]
        log(f"{name}: base {base.shape}, queries {queries.shape}, metric {metric}, {info}; computing ground truth")
        gt = exact_gt(base, queries, metric)
        files = {k: os.path.join(args.scratch, f"{name}_{k}.npy") for k in ("base", "queries", "gt")}
        np.save(files["base"], base)
        np.save(files["queries"], queries)
        np.save(files["gt"], gt)
        load_before = os.getloadavg()
        d, obs = run_doppel(args.binary, files, metric, args.m, args.ef_construction, args.build_threads)
        allowed = {}
        for f in FILTERS:
            mask = random_subset(len(base), f)
            allowed[f] = (mask, exact_gt(base, queries[:200], metric, allowed=mask))
        h = run_hnswlib(base, queries, metric, gt, args.m, args.ef_construction, args.scratch, allowed,
                        args.build_threads)
        summary = summarise(d, obs, h)
        entry = {"data": {"n": len(base), "dim": base.shape[1], "queries": len(queries), "metric": metric,
                          **info},
                 "doppel": d, "doppel_observed": obs,
                 "hnswlib": {**h, "filtered": {str(k): v for k, v in h["filtered"].items()}},
                 "summary": summary,
                 "loadavg_1m_before_after": [load_before[0], os.getloadavg()[0]]}
        with open(os.path.join(args.scratch, f"{name}_result.json"), "w") as f:
            json.dump(entry, f)
        out["sets"][name] = entry
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
        report(name, info, d, obs, h, summary)
    if args.json:
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
