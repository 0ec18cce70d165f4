#!/usr/bin/env python3
"""Side-by-side evaluation on UCI Online Retail: popularity, `implicit` ALS and (optionally) doppel.

Follows benches/eval/PROTOCOL.md exactly; `doppel evaluate` implements the same rules, so the
counts printed here must match its counts. Two sections:

  * next-best offer (NBO): top-10 items per evaluated customer, Recall/NDCG/HitRate/Precision@10
  * lookalike: 8 product groups (3-character StockCode prefixes), audience of 200 prospects,
    precision and lift vs a random audience and vs the top spenders

Models: popularity baseline; implicit.cpu.als.AlternatingLeastSquares (factors=64,
regularization=0.05, iterations=15, random_state=42) on purchase-row counts, once as is
(alpha=1.0) and once with the matrix scaled by 40 (the classic alpha=40).

Usage:
  python3 benches/eval/compare_implicit.py [--data PATH] [--out results.md] [--json results.json]
                                           [--doppel-json doppel.json] [--threads 2] [--plot lift.png]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy
import scipy.sparse as sp

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_DATA = os.path.join(os.path.dirname(REPO), "shared", "data", "online_retail.csv.gz")

PROTOCOL = "doppel-eval-v1"
K = 10                      # list length for NBO metrics
TEST_DAYS = 30              # test window = last 30 days
N_GROUPS = 8                # lookalike product groups
PREFIX_LEN = 3              # group = first 3 characters of the item id
AUDIENCE = 200              # lookalike audience size (capped by the number of candidates)
ALS_PARAMS = dict(factors=64, regularization=0.05, iterations=15, random_state=42)
ALPHAS = (1.0, 40.0)        # implicit runs: matrix as is, and matrix x 40
LABELS = {                  # JSON key -> label in the Markdown tables and the plot
    "popularity": "popularity",
    "implicit_als_alpha1": "implicit ALS α=1",
    "implicit_als_alpha40": "implicit ALS α=40 (matrix×40)",
    "doppel": "doppel",
    "popularity_doppel": "popularity (doppel's)",
}


def log(*args) -> None:
    """Progress to stderr (stdout carries the Markdown report only)."""
    print(*args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# 1. Rows
# --------------------------------------------------------------------------------------------

def load_rows(path: str) -> pd.DataFrame:
    """Read the CSV and apply the row rules of PROTOCOL.md §1.

    Returns the kept rows with columns customer (str), item (str), invoice (str), qty (int64),
    price_milli (int64, UnitPrice in 1/1000 GBP), date (datetime64), purchase (bool), ret (bool).
    """
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, compression="infer")
    keep = (raw["CustomerID"] != "") & raw["StockCode"].str.match(r"^[0-9]{5}")
    df = raw.loc[keep]
    out = pd.DataFrame({
        "customer": df["CustomerID"].astype(np.int64).astype(str),   # "17850.0" -> "17850"
        "item": df["StockCode"].str.upper(),
        "invoice": df["InvoiceNo"],
        "qty": df["Quantity"].astype(np.int64),
        "price_milli": np.rint(df["UnitPrice"].astype(float) * 1000).astype(np.int64),
        "date": pd.to_datetime(df["InvoiceDate"], format="%Y-%m-%dT%H:%M:%S"),
    })
    cancel = out["invoice"].str.startswith("C")
    out["purchase"] = (out["qty"] > 0) & ~cancel
    out["ret"] = cancel | (out["qty"] < 0)
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# 2. Split and index
# --------------------------------------------------------------------------------------------

@dataclass
class Split:
    """Train/test split, id tables and the customer x item count matrix."""
    cutoff: pd.Timestamp
    train: pd.DataFrame          # all kept rows before the cutoff (purchases and returns)
    train_p: pd.DataFrame        # train purchase rows
    test_p: pd.DataFrame         # test purchase rows
    customers: np.ndarray        # customer ids with >= 1 train purchase, ascending (as integers)
    items: np.ndarray            # item ids with >= 1 train purchase, ascending (byte order)
    counts: sp.csr_matrix        # customers x items, value = number of train purchase rows
    cust_index: dict = field(default_factory=dict)
    item_index: dict = field(default_factory=dict)


def split_rows(rows: pd.DataFrame) -> Split:
    """Cutoff = max InvoiceDate - 30 days; train = date < cutoff; test = purchases at/after it."""
    cutoff = rows["date"].max() - pd.Timedelta(days=TEST_DAYS)
    train = rows[rows["date"] < cutoff]
    train_p = train[train["purchase"]]
    test_p = rows[(rows["date"] >= cutoff) & rows["purchase"]]

    customers = np.array(sorted(train_p["customer"].unique(), key=int))
    items = np.array(sorted(train_p["item"].unique()))
    cust_index = {c: i for i, c in enumerate(customers)}
    item_index = {it: j for j, it in enumerate(items)}
    r = train_p["customer"].map(cust_index).to_numpy()
    c = train_p["item"].map(item_index).to_numpy()
    counts = sp.csr_matrix((np.ones(len(r), dtype=np.float32), (r, c)),
                           shape=(len(customers), len(items)))
    counts.sum_duplicates()
    return Split(cutoff, train, train_p, test_p, customers, items, counts, cust_index, item_index)


def relevant_sets(s: Split) -> dict[int, set[int]]:
    """relevant(c) per PROTOCOL.md §3, keyed by customer row; empty sets are left out."""
    bought = s.counts.tolil().rows      # per customer row: sorted item columns bought in train
    test = s.test_p[s.test_p["customer"].isin(s.cust_index) & s.test_p["item"].isin(s.item_index)]
    rel: dict[int, set[int]] = {}
    for cust, grp in test.groupby("customer", sort=False):
        u = s.cust_index[cust]
        items = {s.item_index[i] for i in grp["item"].unique()} - set(bought[u])
        if items:
            rel[u] = items
    return dict(sorted(rel.items()))


def dataset_counts(rows: pd.DataFrame, s: Split, rel: dict[int, set[int]]) -> dict:
    """The counts both implementations must agree on (PROTOCOL.md §6)."""
    return {
        "kept_rows": int(len(rows)),
        "purchase_rows": int(rows["purchase"].sum()),
        "return_rows": int(rows["ret"].sum()),
        "train_rows": int(len(s.train)),
        "train_purchase_rows": int(len(s.train_p)),
        "test_rows": int(len(s.test_p)),
        "customers": int(len(s.customers)),
        "items": int(len(s.items)),
        "evaluated_customers": int(len(rel)),
        "relevant_pairs": int(sum(len(v) for v in rel.values())),
    }


# --------------------------------------------------------------------------------------------
# 3. NBO models and metrics
# --------------------------------------------------------------------------------------------

def nbo_metrics(recs: dict[int, list[int]], rel: dict[int, set[int]]) -> dict:
    """Mean Recall/NDCG/HitRate/Precision@10 over the evaluated customers (PROTOCOL.md §4)."""
    disc = 1.0 / np.log2(np.arange(2, K + 2))          # rank 1..K -> 1/log2(rank+1)
    recall = ndcg = hit = prec = 0.0
    for u, relevant in rel.items():
        top = recs[u][:K]
        gains = np.array([1.0 if i in relevant else 0.0 for i in top])
        hits = gains.sum()
        recall += hits / len(relevant)
        hit += 1.0 if hits > 0 else 0.0
        prec += hits / K
        ndcg += float((gains * disc[:len(gains)]).sum()) / float(disc[:min(K, len(relevant))].sum())
    n = len(rel)
    return {"recall_at_10": recall / n, "ndcg_at_10": ndcg / n,
            "hit_rate_at_10": hit / n, "precision_at_10": prec / n}


def popularity_recs(s: Split, users: list[int]) -> dict[int, list[int]]:
    """Items by distinct train purchasers (desc), ties by item id; customer's own items skipped."""
    buyers = np.diff(s.counts.tocsc().indptr)          # distinct purchasers per item column
    order = np.lexsort((np.arange(len(s.items)), -buyers)).tolist()  # columns in item-id order
    recs = {}
    for u in users:
        own = set(s.counts.indices[s.counts.indptr[u]:s.counts.indptr[u + 1]].tolist())
        recs[u] = [int(j) for j in _take(order, own, K)]
    return recs


def _take(order: list, skip: set, k: int) -> list:
    """First k entries of `order` not in `skip`."""
    out = []
    for j in order:
        if j not in skip:
            out.append(j)
            if len(out) == k:
                break
    return out


def train_als(s: Split, alpha: float, threads: int):
    """Fit implicit's CPU ALS on counts x alpha (BLAS limited to 1 thread, as implicit advises).

    Returns (model, matrix used, wall seconds of fit()).
    """
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    matrix = (s.counts * alpha).astype(np.float32).tocsr() if alpha != 1.0 else s.counts
    with threadpool_limits(limits=1, user_api="blas"):
        model = AlternatingLeastSquares(alpha=1.0, num_threads=threads, **ALS_PARAMS)
        t0 = time.perf_counter()
        model.fit(matrix, show_progress=False)
        seconds = time.perf_counter() - t0
    return model, matrix, seconds


def als_recs(model, matrix: sp.csr_matrix, users: list[int]) -> dict[int, list[int]]:
    """Top-10 per user with recommend(..., filter_already_liked_items=True), one CSR row each."""
    recs = {}
    for u in users:
        ids, _scores = model.recommend(u, matrix[u], N=K, filter_already_liked_items=True)
        recs[u] = [int(j) for j in ids]
    return recs


# --------------------------------------------------------------------------------------------
# 4. Lookalike
# --------------------------------------------------------------------------------------------

def product_groups(s: Split) -> list[str]:
    """The 8 prefixes with most distinct train buyers; ties by prefix (PROTOCOL.md §5)."""
    tp = s.train_p.assign(prefix=s.train_p["item"].str[:PREFIX_LEN])
    buyers = tp.groupby("prefix")["customer"].nunique().reset_index(name="n")
    buyers = buyers.sort_values(["n", "prefix"], ascending=[False, True], kind="mergesort")
    return buyers["prefix"].head(N_GROUPS).tolist()


def monetary_milli(s: Split) -> np.ndarray:
    """Sum of Quantity x UnitPrice over train purchases per customer row, in 1/1000 GBP (exact)."""
    tp = s.train_p
    value = (tp["qty"] * tp["price_milli"]).groupby(tp["customer"]).sum()
    return value.reindex(s.customers).to_numpy(dtype=np.int64)


def rank_audience(scores: np.ndarray, cand: np.ndarray, n: int) -> np.ndarray:
    """Top-n candidate rows by score (desc), ties by customer id ascending (rows are id-ordered)."""
    order = np.lexsort((cand, -scores[cand]))
    return cand[order[:n]]


def centroid_scores(model) -> callable:
    """Scorer: cosine of each user factor to the mean of the seeds' L2-normalised factors."""
    uf = np.asarray(model.user_factors, dtype=np.float64)
    norms = np.linalg.norm(uf, axis=1, keepdims=True)
    unit = uf / np.where(norms > 0, norms, 1.0)

    def score(seeds: np.ndarray) -> np.ndarray:
        centroid = unit[seeds].mean(axis=0)
        cn = np.linalg.norm(centroid)
        return unit @ (centroid / cn) if cn > 0 else np.zeros(len(unit))
    return score


def lookalike(s: Split, scorers: dict[str, callable]) -> dict:
    """Per-group seeds/candidates/positives, random and top-spender baselines, model precision."""
    groups = product_groups(s)
    money = monetary_milli(s)
    n_cust = len(s.customers)
    train_prefix = s.train_p.assign(prefix=s.train_p["item"].str[:PREFIX_LEN])
    test_prefix = s.test_p.assign(prefix=s.test_p["item"].str[:PREFIX_LEN])
    rows = []
    for g in groups:
        seed_ids = train_prefix.loc[train_prefix["prefix"] == g, "customer"].unique()
        seeds = np.array(sorted(s.cust_index[c] for c in seed_ids))
        is_seed = np.zeros(n_cust, dtype=bool)
        is_seed[seeds] = True
        cand = np.flatnonzero(~is_seed)
        buyers = set(test_prefix.loc[test_prefix["prefix"] == g, "customer"])
        is_pos = np.array([c in buyers for c in s.customers]) & ~is_seed
        positives = int(is_pos.sum())
        n = min(AUDIENCE, len(cand))
        random_p = positives / len(cand) if len(cand) else 0.0
        top_p = float(is_pos[rank_audience(money.astype(float), cand, n)].mean()) if n else 0.0
        models = {}
        for name, scorer in scorers.items():
            p = float(is_pos[rank_audience(scorer(seeds), cand, n)].mean()) if n else 0.0
            models[name] = {"precision": p, "lift_vs_random": _ratio(p, random_p),
                            "lift_vs_top_spenders": _ratio(p, top_p)}
        rows.append({"group": g, "seeds": int(len(seeds)), "candidates": int(len(cand)),
                     "positives": positives, "audience": n, "random_precision": random_p,
                     "top_spenders_precision": top_p,
                     "top_spenders_lift_vs_random": _ratio(top_p, random_p), "models": models})
    return {"groups": rows, "mean_lift": mean_lifts(rows)}


def mean_lifts(rows: list[dict]) -> dict:
    """Arithmetic mean of each model's lifts over the groups where the lift is defined."""
    names = sorted({m for r in rows for m in r["models"]})
    out = {"top_spenders": {"vs_random": _mean([r["top_spenders_lift_vs_random"] for r in rows])}}
    for m in names:
        got = [r["models"][m] for r in rows if m in r["models"]]
        out[m] = {"vs_random": _mean([x["lift_vs_random"] for x in got]),
                  "vs_top_spenders": _mean([x["lift_vs_top_spenders"] for x in got])}
    return out


def _ratio(a: float, b: float):
    return a / b if b > 0 else None


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


# --------------------------------------------------------------------------------------------
# 5. doppel merge
# --------------------------------------------------------------------------------------------

def load_doppel(path: str) -> dict:
    """Read and check the JSON of `doppel evaluate --json PATH` (schema in PROTOCOL.md §7)."""
    with open(path) as f:
        d = json.load(f)
    for key in ("counts", "nbo", "train_seconds", "lookalike"):
        if key not in d:
            raise SystemExit(f"{path}: missing key {key!r} (see benches/eval/PROTOCOL.md §7)")
    metrics = ("recall_at_10", "ndcg_at_10", "hit_rate_at_10", "precision_at_10")
    missing = [k for k in metrics if k not in d["nbo"].get("doppel", {})]
    if missing:
        raise SystemExit(f"{path}: nbo.doppel lacks {', '.join(missing)}")
    entry = ("group", "seeds", "candidates", "positives", "audience", "precision",
             "lift_vs_random", "lift_vs_top_spenders")
    for g in d["lookalike"]:
        missing = [k for k in entry if k not in g]
        if missing:
            raise SystemExit(f"{path}: lookalike entry {g.get('group')!r} lacks {', '.join(missing)}")
    return d


def merge_doppel(result: dict, d: dict) -> None:
    """Put doppel's numbers beside implicit's in `result` (in place), with ratios."""
    result["doppel"] = d
    nbo = result["nbo"]
    nbo["doppel"] = dict(d["nbo"]["doppel"], train_seconds=d["train_seconds"],
                         threads=d.get("threads"))
    if "popularity" in d["nbo"]:
        nbo["popularity_doppel"] = dict(d["nbo"]["popularity"])
    ratios = {}
    for name, m in nbo.items():
        if name.startswith("implicit"):
            ratios[name] = {
                "ndcg_doppel_over_implicit": _ratio(d["nbo"]["doppel"]["ndcg_at_10"], m["ndcg_at_10"]),
                "train_seconds_implicit_over_doppel": _ratio(m["train_seconds"], d["train_seconds"]),
            }
    result["ratios"] = ratios
    by_group = {g["group"]: g for g in d["lookalike"]}
    for row in result["lookalike"]["groups"]:
        g = by_group.get(row["group"])
        if g is None:
            continue
        row["models"]["doppel"] = {k: g.get(k) for k in
                                   ("precision", "lift_vs_random", "lift_vs_top_spenders")}
        row["doppel_mismatch"] = [k for k in ("seeds", "candidates", "positives", "audience")
                                  if g.get(k) != row[k]]
    result["lookalike"]["mean_lift"] = mean_lifts(result["lookalike"]["groups"])
    result["counts_mismatch"] = [k for k, v in d["counts"].items()
                                 if k in result["counts"] and result["counts"][k] != v]
    result["lookalike_groups_missing_in_doppel"] = [
        r["group"] for r in result["lookalike"]["groups"] if r["group"] not in by_group]
    if d.get("protocol", PROTOCOL) != PROTOCOL:
        log(f"warning: doppel JSON says protocol {d['protocol']!r}, this script is {PROTOCOL!r}")
    if d.get("cutoff", result["cutoff"]) != result["cutoff"]:
        log(f"warning: cutoff differs: doppel {d['cutoff']} vs {result['cutoff']}")
    if result["counts_mismatch"]:
        log("warning: counts differ from doppel's:", ", ".join(result["counts_mismatch"]))
    if result["lookalike_groups_missing_in_doppel"]:
        log("warning: groups missing in doppel's JSON:",
            ", ".join(result["lookalike_groups_missing_in_doppel"]))


# --------------------------------------------------------------------------------------------
# 6. Report
# --------------------------------------------------------------------------------------------

def fmt(x, digits=4) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def render(result: dict) -> str:
    """The Markdown report (same numbers as the JSON)."""
    L = []
    meta = result["meta"]
    L.append("# doppel evaluation on UCI Online Retail (protocol `doppel-eval-v1`)\n")
    L.append(f"Data: `{meta['data_file']}` (sha256 `{meta['data_sha256'][:16]}…`). "
             f"Cutoff {result['cutoff']} (max InvoiceDate − {TEST_DAYS} days). "
             f"Run {meta['run_seconds']:.1f} s on {meta['cpus']} CPUs; "
             f"Python {meta['versions']['python']}, implicit {meta['versions']['implicit']}, "
             f"numpy {meta['versions']['numpy']}, scipy {meta['versions']['scipy']}, "
             f"pandas {meta['versions']['pandas']}.\n")

    L.append("## Counts\n")
    dc = result.get("doppel", {}).get("counts")
    if dc:
        L.append("| count | this script | doppel | |\n|---|---:|---:|---|")
        for k, v in result["counts"].items():
            o = dc.get(k)
            L.append(f"| {k} | {v} | {fmt(o)} | {'' if o is None or o == v else '**mismatch**'} |")
    else:
        L.append("| count | value |\n|---|---:|")
        for k, v in result["counts"].items():
            L.append(f"| {k} | {v} |")
    L.append("")

    L.append(f"## Next-best offer (top-{K}, {result['counts']['evaluated_customers']} customers)\n")
    L.append("| model | Recall@10 | NDCG@10 | HitRate@10 | Precision@10 | train s | threads |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for name, m in result["nbo"].items():
        L.append(f"| {label(name)} | {fmt(m['recall_at_10'])} | {fmt(m['ndcg_at_10'])} | "
                 f"{fmt(m['hit_rate_at_10'])} | {fmt(m['precision_at_10'])} | "
                 f"{fmt(m.get('train_seconds'), 2)} | {fmt(m.get('threads'))} |")
    L.append("")
    L.append("`implicit ALS α=1`: value = number of train purchase rows (implicit's default "
             "alpha=1.0). `implicit ALS α=40 (matrix×40)`: the same matrix multiplied by 40 "
             "before fit (alpha left at 1.0). implicit uses the value as the confidence itself "
             "(c = α·r, not 1 + α·r). Train s = wall time of `fit()` only.\n")
    if result.get("ratios"):
        L.append("| vs | doppel NDCG@10 / implicit NDCG@10 | implicit train s / doppel train s |")
        L.append("|---|---:|---:|")
        for name, r in result["ratios"].items():
            L.append(f"| {label(name)} | {fmt(r['ndcg_doppel_over_implicit'], 3)} | "
                     f"{fmt(r['train_seconds_implicit_over_doppel'], 2)} |")
        L.append("")

    la = result["lookalike"]
    models = sorted({m for r in la["groups"] for m in r["models"]}, key=_model_order)
    L.append(f"## Lookalike (audience {AUDIENCE}, groups = top {N_GROUPS} StockCode "
             f"{PREFIX_LEN}-char prefixes by train buyers)\n")
    head = "| group | seeds | candidates | positives | N | random P | top-spenders P |"
    sep = "|---|---:|---:|---:|---:|---:|---:|"
    for m in models:
        head += f" {label(m)} P | ×random | ×top-sp. |"
        sep += "---:|---:|---:|"
    L.append(head)
    L.append(sep)
    for r in la["groups"]:
        flag = " ⚠" + ",".join(r["doppel_mismatch"]) if r.get("doppel_mismatch") else ""
        line = (f"| {r['group']}{flag} | {r['seeds']} | {r['candidates']} | {r['positives']} | "
                f"{r['audience']} | {fmt(r['random_precision'])} | {fmt(r['top_spenders_precision'])} |")
        for m in models:
            x = r["models"].get(m, {})
            line += (f" {fmt(x.get('precision'), 3)} | {fmt(x.get('lift_vs_random'), 2)} | "
                     f"{fmt(x.get('lift_vs_top_spenders'), 2)} |")
        L.append(line)
    L.append("")
    ml = la["mean_lift"]
    L.append("| audience | mean lift vs random | mean lift vs top spenders |")
    L.append("|---|---:|---:|")
    L.append(f"| top spenders | {fmt(ml['top_spenders']['vs_random'], 2)} | 1.00 |")
    for m in models:
        L.append(f"| {label(m)} | {fmt(ml[m]['vs_random'], 2)} | {fmt(ml[m]['vs_top_spenders'], 2)} |")
    L.append("")
    L.append("P = share of the audience that buys from the group in the test window; random P = "
             "positives / candidates (exact expectation); ×random and ×top-sp. = model P divided "
             "by random P and by top-spenders P; mean lift = arithmetic mean over groups.\n")
    return "\n".join(L)


def label(name: str) -> str:
    """Human label of a JSON model key."""
    return LABELS.get(name, name)


def _model_order(name: str):
    return (0 if name.startswith("implicit") else 1, name)


def plot_lift(result: dict, path: str) -> bool:
    """Grouped bars of lift vs random per group; returns False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    groups = result["lookalike"]["groups"]
    series = {"top spenders": [g["top_spenders_lift_vs_random"] or 0 for g in groups]}
    for m in sorted({m for g in groups for m in g["models"]}, key=_model_order):
        series[label(m)] = [(g["models"].get(m, {}).get("lift_vs_random") or 0) for g in groups]
    x = np.arange(len(groups))
    w = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=90)
    for i, (name, ys) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * w, ys, w, label=name)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xticks(x, [g["group"] for g in groups])
    ax.set_xlabel("StockCode prefix")
    ax.set_ylabel("lift vs random")
    ax.set_title("Lookalike precision lift (audience 200), Online Retail")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------

def versions() -> dict:
    import implicit
    v = {"python": platform.python_version(), "implicit": implicit.__version__,
         "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__}
    try:
        import threadpoolctl
        v["threadpoolctl"] = threadpoolctl.__version__
    except ImportError:
        pass
    try:
        import matplotlib
        v["matplotlib"] = matplotlib.__version__
    except ImportError:
        pass
    return v


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=DEFAULT_DATA, help="online_retail.csv.gz (default: %(default)s)")
    p.add_argument("--out", default=os.path.join(HERE, "results.md"), help="Markdown report")
    p.add_argument("--json", default=os.path.join(HERE, "results.json"), help="JSON with all numbers")
    p.add_argument("--doppel-json", help="JSON written by `doppel evaluate --json PATH` to merge")
    p.add_argument("--threads", type=int, default=2,
                   help="implicit num_threads (0 = all cores; default %(default)s)")
    p.add_argument("--plot", default=os.path.join(HERE, "lift.png"),
                   help="PNG of lift per group ('' to skip; needs matplotlib)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    if not os.path.exists(args.data):
        raise SystemExit(f"data file not found: {args.data} (see /work/shared/data/README.md)")

    log("loading", args.data)
    rows = load_rows(args.data)
    s = split_rows(rows)
    rel = relevant_sets(s)
    counts = dataset_counts(rows, s, rel)
    log("counts", counts)
    users = list(rel)

    nbo = {"popularity": nbo_metrics(popularity_recs(s, users), rel)}
    threads = args.threads if args.threads > 0 else (os.cpu_count() or 1)
    scorers = {}
    for alpha in ALPHAS:
        name = f"implicit_als_alpha{alpha:g}"
        log("training", label(name))
        model, matrix, secs = train_als(s, alpha, args.threads)
        nbo[name] = dict(nbo_metrics(als_recs(model, matrix, users), rel),
                         train_seconds=secs, threads=threads, alpha_scale=alpha, **ALS_PARAMS)
        scorers[name] = centroid_scores(model)

    log("lookalike")
    result = {
        "protocol": PROTOCOL,
        "cutoff": s.cutoff.strftime("%Y-%m-%dT%H:%M:%S"),
        "counts": counts,
        "nbo": nbo,
        "lookalike": lookalike(s, scorers),
    }
    if args.doppel_json:
        merge_doppel(result, load_doppel(args.doppel_json))
    result["meta"] = {"data_file": os.path.basename(args.data), "data_sha256": sha256(args.data),
                      "cpus": os.cpu_count(), "versions": versions(),
                      "run_seconds": time.perf_counter() - t_start}

    md = render(result)
    print(md)
    for path, text in ((args.out, md + "\n"), (args.json, json.dumps(result, indent=2) + "\n")):
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
    if args.plot and plot_lift(result, args.plot):
        log("plot written to", args.plot)
    log(f"done in {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
