#!/usr/bin/env python3
"""Side-by-side evaluation on UCI Online Retail: doppel vs peers tuned on a validation window.

Follows benches/eval/PROTOCOL.md exactly; `doppel evaluate` implements the same rules, so the
counts printed here must match its counts. Two sections:

  * next-best offer (NBO): top-10 items per evaluated customer, Recall/NDCG/HitRate/Precision@10
  * lookalike: 8 product groups (3-character StockCode prefixes, §5), audience of 200
    prospects, precision and lift vs a random audience and vs the top spenders
  * lookalike, keyword groups (§5.1): the same audiences for 8 groups chosen by a word of the
    item Description (CANDLE, WALL, ...), plus lift vs the tuned implicit ALS peer

Peers, each tuned honestly: the settings are searched on the validation split (PROTOCOL.md
§2.1: train < cutoff − 30 days, validation test = purchases in [cutoff − 30 days, cutoff)) by
NDCG@10, then the model is refitted on the protocol's train rows with the chosen settings and
scored on the test window once.

  * popularity baseline (no settings)
  * implicit.cpu.als.AlternatingLeastSquares (iterations=15, random_state=42, alpha=1.0), full
    grid over factors x regularization x matrix scale (count matrix x scale)
  * EASE (Steck 2019) on the binary customer x item matrix, grid over lambda
  * continuity row: implicit ALS at the old fixed settings (factors 64, regularization 0.05,
    matrix as is), not tuned

Usage:
  python3 benches/eval/compare_peers.py [--data PATH] [--out results.md] [--json results.json]
                                        [--doppel-json doppel.json] [--threads 2] [--plot lift.png]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
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
VALIDATION_DAYS = 30        # validation test window = the 30 days before the test window
N_GROUPS = 8                # lookalike product groups
PREFIX_LEN = 3              # group = first 3 characters of the item id
AUDIENCE = 200              # lookalike audience size (capped by the number of candidates)

# keyword groups (PROTOCOL.md §5.1)
KW_GROUPS = 8               # words kept
KW_MIN_LEN = 3              # a token has at least 3 letters
KW_SHARE = (0.05, 0.30)     # |buyers(w)| / |U| must lie in this closed range
KW_OVERLAP_MAX = 0.5        # keep w only if < 50 % of its items belong to words kept before
KW_STOP = frozenset((       # 27 words: function/packaging words, colours, sizes
    "OF AND WITH IN THE FOR SET PACK ASSORTED DESIGN "
    "PINK BLUE RED WHITE BLACK GREEN SILVER IVORY CREAM GOLD PURPLE YELLOW COLOUR "
    "SMALL LARGE MINI JUMBO").split())
PEER = "implicit_als_tuned"  # the peer of the keyword section's "× peer" column

ALS_FIXED = dict(iterations=15, random_state=42)            # never searched
ALS_GRID = {                                                # full grid, 3 x 9 x 5 = 135 fits
    "factors": (32, 64, 128),
    # 0.01..5 as issue 12 lists them; 10, 20, 50 added because at 128 factors the best
    # setting sat on the 5 edge (and a larger matrix scale wants a larger regularization)
    "regularization": (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 20.0, 50.0),
    "alpha_scale": (0.3, 1.0, 3.0, 10.0, 40.0),             # count matrix x scale; alpha=1.0
}
ALS_CONTINUITY = dict(factors=64, regularization=0.05, alpha_scale=1.0)  # the old fixed row
EASE_LAMBDAS = (50.0, 100.0, 200.0, 300.0, 500.0, 1000.0, 2000.0, 5000.0)

LABELS = {                  # JSON key -> label in the Markdown tables and the plot
    "popularity": "popularity",
    "implicit_als_tuned": "implicit ALS (tuned)",
    "ease_tuned": "EASE (tuned)",
    "implicit_als_alpha1": "implicit ALS fixed (old settings)",
    "doppel": "doppel",
    "popularity_doppel": "popularity (doppel's)",
}
PEERS = ("popularity", "implicit_als_tuned", "ease_tuned", "implicit_als_alpha1")
METRICS = ("recall_at_10", "ndcg_at_10", "hit_rate_at_10", "precision_at_10")


def log(*args) -> None:
    """Progress to stderr (stdout carries the Markdown report only)."""
    print(*args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# 1. Rows
# --------------------------------------------------------------------------------------------

def load_rows(path: str) -> pd.DataFrame:
    """Read the CSV and apply the row rules of PROTOCOL.md §1.

    Returns the kept rows with columns customer (str), item (str), invoice (str), qty (int64),
    price_milli (int64, UnitPrice in 1/1000 GBP), date (datetime64), desc (str, the upper-cased
    Description, for §5.1), purchase (bool), ret (bool).
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
        "desc": df["Description"].str.upper(),
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
    train: pd.DataFrame          # all given rows before the cutoff (purchases and returns)
    train_p: pd.DataFrame        # train purchase rows
    test_p: pd.DataFrame         # purchase rows at/after the cutoff (among the given rows)
    customers: np.ndarray        # customer ids with >= 1 train purchase, ascending (as integers)
    items: np.ndarray            # item ids with >= 1 train purchase, ascending (byte order)
    counts: sp.csr_matrix        # customers x items, value = number of train purchase rows
    cust_index: dict = field(default_factory=dict)
    item_index: dict = field(default_factory=dict)


def split_rows(rows: pd.DataFrame, cutoff: pd.Timestamp) -> Split:
    """train = rows dated < cutoff; test = purchase rows dated >= cutoff (PROTOCOL.md §2).

    The test split passes all kept rows; the validation split (§2.1) passes the rows dated
    before the test cutoff and cutoff − 30 days.
    """
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
        **split_counts(s, rel),
    }


def split_counts(s: Split, rel: dict[int, set[int]]) -> dict:
    """|U|, |I|, |E| and the number of relevant pairs of a split (the validation counts)."""
    return {
        "customers": int(len(s.customers)),
        "items": int(len(s.items)),
        "evaluated_customers": int(len(rel)),
        "relevant_pairs": int(sum(len(v) for v in rel.values())),
    }


@dataclass
class Task:
    """One split with its ground truth: what a model is fitted on and scored against."""
    s: Split
    rel: dict
    users: list


def make_task(s: Split) -> Task:
    rel = relevant_sets(s)
    return Task(s, rel, list(rel))


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


# --- implicit ALS ---------------------------------------------------------------------------

def fit_als(s: Split, settings: dict, threads: int):
    """Fit implicit's CPU ALS on counts x alpha_scale (BLAS held at 1 thread, as implicit advises).

    Returns (model, matrix used, wall seconds of fit()).
    """
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    scale = settings["alpha_scale"]
    matrix = (s.counts * scale).astype(np.float32).tocsr() if scale != 1.0 else s.counts
    with threadpool_limits(limits=1, user_api="blas"):
        model = AlternatingLeastSquares(factors=settings["factors"],
                                        regularization=settings["regularization"],
                                        alpha=1.0, num_threads=threads, **ALS_FIXED)
        t0 = time.perf_counter()
        model.fit(matrix, show_progress=False)
        seconds = time.perf_counter() - t0
    return model, matrix, seconds


def als_recs(model, matrix: sp.csr_matrix, users: list[int]) -> dict[int, list[int]]:
    """Top-10 per user from one batched recommend(..., filter_already_liked_items=True)."""
    from threadpoolctl import threadpool_limits

    uid = np.asarray(users, dtype=np.int32)
    with threadpool_limits(limits=1, user_api="blas"):
        ids, _scores = model.recommend(uid, matrix[uid], N=K, filter_already_liked_items=True)
    return {u: [int(j) for j in row if j >= 0] for u, row in zip(users, ids)}


# --- EASE -----------------------------------------------------------------------------------

def fit_ease(s: Split, lam: float, threads: int):
    """EASE (Steck 2019) on X = 1[any train purchase]: P = (XᵀX + λI)⁻¹, B = I − P/diag(P).

    B has a zero diagonal (B_ij = −P_ij / P_jj for i ≠ j). Returns (X, B, fit seconds, gram
    seconds); fit seconds = wall time of the inverse and B (float64, BLAS at `threads`).
    """
    from threadpoolctl import threadpool_limits

    x = s.counts.copy()
    x.data[:] = 1.0
    x = x.astype(np.float64).tocsr()
    t0 = time.perf_counter()
    gram = (x.T @ x).toarray()
    gram_seconds = time.perf_counter() - t0
    with threadpool_limits(limits=threads, user_api="blas"):
        t0 = time.perf_counter()
        gram[np.diag_indices_from(gram)] += lam
        p = np.linalg.inv(gram)
        b = p / (-np.diag(p))[None, :]
        b[np.diag_indices_from(b)] = 0.0
        seconds = time.perf_counter() - t0
    return x, b, seconds, gram_seconds


def ease_recs(x: sp.csr_matrix, b: np.ndarray, users: list[int]) -> dict[int, list[int]]:
    """Top-10 of X_u·B per user, own items excluded; ties by item id (stable sort)."""
    xu = x[np.asarray(users)]
    scores = np.asarray(xu @ b)
    r, c = xu.nonzero()
    scores[r, c] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    return {u: [int(j) for j in row] for u, row in zip(users, top)}


# --- tuning ---------------------------------------------------------------------------------

def als_grid() -> list[dict]:
    keys = list(ALS_GRID)
    return [dict(zip(keys, combo)) for combo in itertools.product(*ALS_GRID.values())]


def tune(name: str, candidates: list[dict], run, val: Task) -> dict:
    """Score every candidate on the validation split; chosen = best NDCG@10 (first on ties).

    `run(split, settings, users)` -> (recs, fit seconds, extra dict).
    """
    trials = []
    t0 = time.perf_counter()
    for i, settings in enumerate(candidates):
        recs, secs, _extra = run(val.s, settings, val.users)
        m = nbo_metrics(recs, val.rel)
        trials.append({"settings": settings, "validation": m, "fit_seconds": secs})
        log(f"  {name} {i + 1}/{len(candidates)} {settings} val NDCG@10 {m['ndcg_at_10']:.4f} "
            f"({secs:.2f} s)")
    best = max(range(len(trials)), key=lambda i: (trials[i]["validation"]["ndcg_at_10"], -i))
    return {"method": "full grid", "trials": trials, "chosen": trials[best]["settings"],
            "validation": trials[best]["validation"],
            "wall_seconds": time.perf_counter() - t0}


def run_als(threads: int):
    def run(s: Split, settings: dict, users: list[int]):
        model, matrix, secs = fit_als(s, settings, threads)
        return als_recs(model, matrix, users), secs, {"model": model}
    return run


def run_ease(threads: int):
    def run(s: Split, settings: dict, users: list[int]):
        x, b, secs, gram_secs = fit_ease(s, settings["lambda"], threads)
        return ease_recs(x, b, users), secs, {"gram_seconds": gram_secs}
    return run


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
    """§5: per prefix group seeds/candidates/positives, baselines and model precision."""
    train_prefix = s.train_p["item"].str[:PREFIX_LEN]
    test_prefix = s.test_p["item"].str[:PREFIX_LEN]
    specs = [(g, set(s.train_p.loc[train_prefix == g, "customer"]),
              set(s.test_p.loc[test_prefix == g, "customer"])) for g in product_groups(s)]
    rows = group_rows(s, specs, scorers)
    return {"groups": rows, "mean_lift": mean_lifts(rows)}


def group_rows(s: Split, specs: list[tuple], scorers: dict[str, callable]) -> list[dict]:
    """One row per (group, seed customer ids, test buyer ids): the §5 audiences and baselines.

    seeds = the seed ids (all in U); candidates = U minus seeds; positives = candidates among
    the test buyers; N = min(200, |candidates|).
    """
    money = monetary_milli(s).astype(float)
    n_cust = len(s.customers)
    rows = []
    for g, seed_ids, buyers in specs:
        seeds = np.array(sorted(s.cust_index[c] for c in seed_ids), dtype=np.int64)
        is_seed = np.zeros(n_cust, dtype=bool)
        is_seed[seeds] = True
        cand = np.flatnonzero(~is_seed)
        is_pos = np.array([c in buyers for c in s.customers]) & ~is_seed
        positives = int(is_pos.sum())
        n = min(AUDIENCE, len(cand))
        random_p = positives / len(cand) if len(cand) else 0.0
        top_p = float(is_pos[rank_audience(money, cand, n)].mean()) if n else 0.0
        models = {}
        for name, scorer in scorers.items():
            p = float(is_pos[rank_audience(scorer(seeds), cand, n)].mean()) if n else 0.0
            models[name] = {"precision": p, "lift_vs_random": _ratio(p, random_p),
                            "lift_vs_top_spenders": _ratio(p, top_p)}
        rows.append({"group": g, "seeds": int(len(seeds)), "candidates": int(len(cand)),
                     "positives": positives, "audience": n, "random_precision": random_p,
                     "top_spenders_precision": top_p,
                     "top_spenders_lift_vs_random": _ratio(top_p, random_p), "models": models})
    return rows


# --- keyword groups (PROTOCOL.md §5.1) -------------------------------------------------------

def tokens(desc: str) -> frozenset:
    """§5.1 tokens of an upper-cased Description: maximal runs of ASCII A–Z, ≥ 3 letters, no
    stop word."""
    out, run = set(), []
    for ch in desc + " ":
        if "A" <= ch <= "Z":
            run.append(ch)
        elif run:
            if len(run) >= KW_MIN_LEN:
                out.add("".join(run))
            run = []
    return frozenset(out - KW_STOP)


def _word_sets(df: pd.DataFrame, col: str, cache: dict) -> dict[str, set]:
    """word -> distinct values of `col` over the rows of `df` whose tokens contain the word."""
    out: dict[str, set] = {}
    for value, desc in df[[col, "desc"]].drop_duplicates().itertuples(index=False):
        toks = cache.get(desc)
        if toks is None:
            toks = cache[desc] = tokens(desc)
        for w in toks:
            out.setdefault(w, set()).add(value)
    return out


def keyword_groups(s: Split, cache: dict | None = None) -> tuple[list[str], list[dict], dict]:
    """§5.1 group words from the train purchase rows, in the order kept.

    Rank words by |items(w)| desc, ties by word; walk the ranking and keep w when
    0.05 ≤ |buyers(w)|/|U| ≤ 0.30 and |items(w) ∩ items of the kept words| / |items(w)| < 0.5;
    stop at 8. Returns (kept words, the walk over the words in the share range until the stop,
    buyers per word).
    """
    cache = {} if cache is None else cache
    items = _word_sets(s.train_p, "item", cache)
    buyers = _word_sets(s.train_p, "customer", cache)
    n_u = len(s.customers)
    kept, covered, walk = [], set(), []
    for w in sorted(items, key=lambda w: (-len(items[w]), w)):
        share = len(buyers[w]) / n_u
        if not KW_SHARE[0] <= share <= KW_SHARE[1]:
            continue
        overlap = len(items[w] & covered) / len(items[w])
        keep = overlap < KW_OVERLAP_MAX
        walk.append({"word": w, "items": len(items[w]), "buyers": len(buyers[w]),
                     "share": share, "overlap": overlap, "kept": keep})
        if keep:
            kept.append(w)
            covered |= items[w]
            if len(kept) == KW_GROUPS:
                break
    return kept, walk, buyers


def lookalike_keyword(s: Split, scorers: dict[str, callable]) -> dict:
    """§5.1: the §5 audiences for the keyword groups, plus each model's lift vs the peer."""
    cache: dict = {}
    words, walk, buyers = keyword_groups(s, cache)
    test_buyers = _word_sets(s.test_p, "customer", cache)
    specs = [(w, buyers[w], test_buyers.get(w, set())) for w in words]
    rows = group_rows(s, specs, scorers)
    add_peer_lifts(rows)
    return {"groups": rows, "mean_lift": mean_lifts(rows), "walk": walk}


def add_peer_lifts(rows: list[dict]) -> None:
    """models[m].lift_vs_peer = precision / the peer's precision (in place; peer itself 1)."""
    for r in rows:
        peer = r["models"].get(PEER)
        for x in r["models"].values():
            x["lift_vs_peer"] = _ratio(x.get("precision"), peer["precision"]) if peer else None


def mean_lifts(rows: list[dict]) -> dict:
    """Arithmetic mean of each model's lifts over the groups where the lift is defined.

    Keyword rows (§5.1) also carry `vs_peer` (mean of lift_vs_peer) and `precision` (mean P).
    """
    names = sorted({m for r in rows for m in r["models"]})
    out = {"top_spenders": {"vs_random": _mean([r["top_spenders_lift_vs_random"] for r in rows])}}
    for m in names:
        got = [r["models"][m] for r in rows if m in r["models"]]
        out[m] = {"vs_random": _mean([x["lift_vs_random"] for x in got]),
                  "vs_top_spenders": _mean([x["lift_vs_top_spenders"] for x in got])}
        if any("lift_vs_peer" in x for x in got):
            out[m]["vs_peer"] = _mean([x.get("lift_vs_peer") for x in got])
            out[m]["precision"] = _mean([x.get("precision") for x in got])
    if any("lift_vs_peer" in x for r in rows for x in r["models"].values()):
        out["top_spenders"]["precision"] = _mean([r["top_spenders_precision"] for r in rows])
        out["random"] = {"precision": _mean([r["random_precision"] for r in rows])}
    return out


def _ratio(a: float, b: float):
    return a / b if a is not None and b is not None and b > 0 else None


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
    missing = [k for k in METRICS if k not in d["nbo"].get("doppel", {})]
    if missing:
        raise SystemExit(f"{path}: nbo.doppel lacks {', '.join(missing)}")
    entry = ("group", "seeds", "candidates", "positives", "audience", "precision",
             "lift_vs_random", "lift_vs_top_spenders")
    for key in ("lookalike", "lookalike_keyword"):       # the second is optional (§5.1)
        if key in d and not isinstance(d[key], list):
            raise SystemExit(f"{path}: {key!r} must be a list")
        for g in d.get(key) or []:
            missing = [k for k in entry if k not in g]
            if missing:
                raise SystemExit(f"{path}: {key} entry {g.get('group')!r} lacks "
                                 f"{', '.join(missing)}")
    t = d.get("tuning")
    if t is not None and not isinstance(t, dict):
        raise SystemExit(f"{path}: 'tuning' must be an object")
    return d


def merge_doppel(result: dict, d: dict) -> None:
    """Put doppel's numbers beside the peers' in `result` (in place), with ratios."""
    result["doppel"] = d
    nbo = result["nbo"]
    t = d.get("tuning") or {}
    settings = t.get("chosen", d.get("model"))
    nbo["doppel"] = dict(d["nbo"]["doppel"], train_seconds=d["train_seconds"],
                         threads=d.get("threads"), settings=settings,
                         validation=t.get("validation"))
    if "popularity" in d["nbo"]:
        nbo["popularity_doppel"] = dict(d["nbo"]["popularity"])
    dn = d["nbo"]["doppel"]["ndcg_at_10"]
    dv = (t.get("validation") or {}).get("ndcg_at_10")
    ratios = {}
    for name in PEERS:
        m = nbo.get(name)
        if m is None:
            continue
        pv = (m.get("validation") or {}).get("ndcg_at_10")
        ratios[name] = {
            "ndcg_doppel_over_peer": _ratio(dn, m["ndcg_at_10"]),
            "validation_ndcg_doppel_over_peer": _ratio(dv, pv) if dv is not None and pv else None,
            "train_seconds_peer_over_doppel": (_ratio(m["train_seconds"], d["train_seconds"])
                                               if m.get("train_seconds") is not None else None),
        }
    result["ratios"] = ratios

    # validation split: doppel's cutoff and |E| must be ours (PROTOCOL.md §2.1)
    val = result["validation"]
    mism = []
    if t:
        if t.get("validation_cutoff", val["cutoff"]) != val["cutoff"]:
            mism.append("validation_cutoff")
        ve = t.get("validation_evaluated_customers")
        if ve is not None and ve != val["counts"]["evaluated_customers"]:
            mism.append("validation_evaluated_customers")
        for k, v in (t.get("validation_counts") or {}).items():
            if k in val["counts"] and val["counts"][k] != v:
                mism.append(f"validation_counts.{k}")
    result["validation_mismatch"] = mism

    result["lookalike_groups_missing_in_doppel"] = _merge_groups(result["lookalike"],
                                                                  d["lookalike"])
    if "lookalike_keyword" in d and "lookalike_keyword" in result:
        kw = result["lookalike_keyword"]
        result["lookalike_keyword_groups_missing_in_doppel"] = _merge_groups(
            kw, d["lookalike_keyword"])
        add_peer_lifts(kw["groups"])
        kw["mean_lift"] = mean_lifts(kw["groups"])
        ours = [r["group"] for r in kw["groups"]]
        theirs = [g.get("group") for g in d["lookalike_keyword"]]
        kw["doppel_groups"] = theirs
        kw["doppel_groups_mismatch"] = ours != theirs
    result["counts_mismatch"] = [k for k, v in d["counts"].items()
                                 if k in result["counts"] and result["counts"][k] != v]
    if d.get("protocol", PROTOCOL) != PROTOCOL:
        log(f"warning: doppel JSON says protocol {d['protocol']!r}, this script is {PROTOCOL!r}")
    if d.get("cutoff", result["cutoff"]) != result["cutoff"]:
        log(f"warning: cutoff differs: doppel {d['cutoff']} vs {result['cutoff']}")
    if result["counts_mismatch"]:
        log("warning: counts differ from doppel's:", ", ".join(result["counts_mismatch"]))
    if mism:
        log("warning: validation split differs from doppel's:", ", ".join(mism))
    if not t:
        log("note: doppel JSON has no 'tuning' key: its settings were not chosen on validation")
    if result["lookalike_groups_missing_in_doppel"]:
        log("warning: groups missing in doppel's JSON:",
            ", ".join(result["lookalike_groups_missing_in_doppel"]))
    kw = result.get("lookalike_keyword") or {}
    if "lookalike_keyword" not in d:
        log("note: doppel JSON has no 'lookalike_keyword' key: no doppel row in §5.1")
    elif kw.get("doppel_groups_mismatch"):
        log("warning: keyword groups differ: ours", [r["group"] for r in kw["groups"]],
            "doppel's", kw["doppel_groups"])
    for r in kw.get("groups", []):
        if r.get("doppel_mismatch"):
            log(f"warning: keyword group {r['group']}: doppel differs in",
                ", ".join(r["doppel_mismatch"]))


def _merge_groups(section: dict, entries: list[dict]) -> list[str]:
    """Put doppel's per-group entries into a lookalike section (in place): its precision and
    lifts as models.doppel, `doppel_mismatch` = the counts that differ; mean lifts redone.
    Returns our groups that doppel's list lacks."""
    by_group = {g["group"]: g for g in entries}
    for row in section["groups"]:
        g = by_group.get(row["group"])
        if g is None:
            continue
        row["models"]["doppel"] = {k: g.get(k) for k in
                                   ("precision", "lift_vs_random", "lift_vs_top_spenders")}
        row["doppel_mismatch"] = [k for k in ("seeds", "candidates", "positives", "audience")
                                  if g.get(k) != row[k]]
    section["mean_lift"] = mean_lifts(section["groups"])
    return [r["group"] for r in section["groups"] if r["group"] not in by_group]


# --------------------------------------------------------------------------------------------
# 6. Report
# --------------------------------------------------------------------------------------------

def fmt(x, digits=4) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def fmt_settings(settings) -> str:
    """Compact one-line settings: {'factors': 64, 'regularization': 0.05} -> 'factors 64, …'."""
    if not settings:
        return "–"
    if not isinstance(settings, dict):
        return str(settings)
    parts = []
    for k, v in settings.items():
        if isinstance(v, float):
            v = f"{v:.4g}"
        parts.append(f"{k} {v}")
    return ", ".join(parts)


def render(result: dict) -> str:
    """The Markdown report (same numbers as the JSON)."""
    L = []
    meta = result["meta"]
    val = result["validation"]
    L.append("# doppel vs tuned peers on UCI Online Retail (protocol `doppel-eval-v1`)\n")
    L.append(f"Data: `{meta['data_file']}` (sha256 `{meta['data_sha256'][:16]}…`). "
             f"Cutoff {result['cutoff']} (max InvoiceDate − {TEST_DAYS} days); validation "
             f"cutoff {val['cutoff']} (cutoff − {VALIDATION_DAYS} days). "
             f"Run {meta['run_seconds']:.1f} s on {meta['cpus']} CPUs; "
             f"Python {meta['versions']['python']}, implicit {meta['versions']['implicit']}, "
             f"numpy {meta['versions']['numpy']}, scipy {meta['versions']['scipy']}, "
             f"pandas {meta['versions']['pandas']}.\n")
    L.append("Every tuned model chose its settings on the validation split (PROTOCOL.md §2.1) "
             "by NDCG@10, was refitted on the train rows with them and scored on the test "
             "window once.\n")

    L.append("## Counts\n")
    d = result.get("doppel")
    dc = d.get("counts") if d else None
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
    L.append(f"Validation split (cutoff {val['cutoff']}):\n")
    t = (d or {}).get("tuning") or {}
    if d is not None:
        L.append("| validation count | this script | doppel | |\n|---|---:|---:|---|")
        dvc = dict(t.get("validation_counts") or {})
        if "validation_evaluated_customers" in t:
            dvc.setdefault("evaluated_customers", t["validation_evaluated_customers"])
        for k, v in val["counts"].items():
            o = dvc.get(k)
            L.append(f"| {k} | {v} | {fmt(o)} | {'' if o is None or o == v else '**mismatch**'} |")
        o = t.get("validation_cutoff")
        L.append(f"| cutoff | {val['cutoff']} | {fmt(o)} | "
                 f"{'' if o is None or o == val['cutoff'] else '**mismatch**'} |")
    else:
        L.append("| validation count | value |\n|---|---:|")
        for k, v in val["counts"].items():
            L.append(f"| {k} | {v} |")
    L.append("")

    L.append(f"## Next-best offer (top-{K}, {result['counts']['evaluated_customers']} test "
             f"customers, {val['counts']['evaluated_customers']} validation customers)\n")
    L.append("| model | chosen settings | validation NDCG@10 | Recall@10 | NDCG@10 | HitRate@10 "
             "| Precision@10 | fit s |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, m in result["nbo"].items():
        v = (m.get("validation") or {}).get("ndcg_at_10")
        L.append(f"| {label(name)} | {fmt_settings(m.get('settings'))} | {fmt(v)} | "
                 f"{fmt(m['recall_at_10'])} | {fmt(m['ndcg_at_10'])} | "
                 f"{fmt(m['hit_rate_at_10'])} | {fmt(m['precision_at_10'])} | "
                 f"{fmt(m.get('train_seconds'), 2)} |")
    L.append("")
    tn = result["tuning"]
    L.append(
        "Validation NDCG@10 = the chosen settings' score on the validation split; the other "
        "metrics are the test window. Fit s = wall time of the final fit on the train rows "
        f"only ({result['threads']} threads): implicit `fit()` with BLAS at 1 thread; EASE the "
        f"inverse and B with BLAS at {result['threads']} threads (the Gram XᵀX, "
        f"{fmt(result['nbo']['ease_tuned'].get('gram_seconds'), 2)} s, not included). "
        "implicit uses the matrix value as the confidence itself (c = scale·count, not "
        "1 + α·r); `alpha_scale` multiplies the count matrix, implicit's own alpha stays 1.0. "
        f"implicit: full grid of {len(tn['implicit_als']['trials'])} settings "
        f"({tn['implicit_als']['wall_seconds']:.0f} s); EASE: {len(tn['ease']['trials'])} "
        f"values of λ ({tn['ease']['wall_seconds']:.0f} s). "
        + ("The fixed row is the old untuned setting (the earlier reports' `implicit ALS α=1`), "
           "kept for continuity.\n" if "implicit_als_alpha1" in result["nbo"] else
           "The grid chose the old fixed settings, so there is no separate fixed row.\n"))
    if result.get("ratios"):
        dv = (t.get("validation") or {}).get("ndcg_at_10")
        if not t:
            L.append("doppel: its JSON has no `tuning` object, so its settings were not chosen "
                     "on the validation split.\n")
        else:
            L.append(f"doppel: validation NDCG@10 {fmt(dv)} on "
                     f"{fmt(t.get('validation_evaluated_customers'))} customers"
                     + (" **mismatch**" if result.get("validation_mismatch") else "")
                     + f", {len(t.get('trials') or [])} trials"
                     + (f" ({sum(x.get('seconds', 0) for x in t['trials']):.0f} s of fits)"
                        if t.get("trials") else "") + ".\n")
        L.append("| vs | doppel val NDCG / peer val NDCG | doppel test NDCG@10 / peer test "
                 "NDCG@10 | peer fit s / doppel fit s |")
        L.append("|---|---:|---:|---:|")
        for name, r in result["ratios"].items():
            L.append(f"| {label(name)} | {fmt(r['validation_ndcg_doppel_over_peer'], 3)} | "
                     f"{fmt(r['ndcg_doppel_over_peer'], 3)} | "
                     f"{fmt(r['train_seconds_peer_over_doppel'], 2)} |")
        L.append("")

    L.append("## Tuning on the validation split\n")
    als = tn["implicit_als"]
    L.append(f"implicit ALS, validation NDCG@10 per setting (iterations {ALS_FIXED['iterations']}, "
             f"random_state {ALS_FIXED['random_state']}); rows regularization, columns "
             "alpha_scale; **bold** = chosen.\n")
    by = {(x["settings"]["factors"], x["settings"]["regularization"], x["settings"]["alpha_scale"]):
          x["validation"]["ndcg_at_10"] for x in als["trials"]}
    ch = als["chosen"]
    for f in ALS_GRID["factors"]:
        L.append(f"factors {f}:\n")
        L.append("| reg \\ scale | " + " | ".join(f"{a:g}" for a in ALS_GRID["alpha_scale"]) + " |")
        L.append("|---|" + "---:|" * len(ALS_GRID["alpha_scale"]))
        for r in ALS_GRID["regularization"]:
            cells = []
            for a in ALS_GRID["alpha_scale"]:
                v = fmt(by.get((f, r, a)))
                if (f, r, a) == (ch["factors"], ch["regularization"], ch["alpha_scale"]):
                    v = f"**{v}**"
                cells.append(v)
            L.append(f"| {r:g} | " + " | ".join(cells) + " |")
        L.append("")
    ease = tn["ease"]
    L.append("EASE, validation NDCG@10 per λ (**bold** = chosen):\n")
    L.append("| λ | " + " | ".join(f"{x['settings']['lambda']:g}" for x in ease["trials"]) + " |")
    L.append("|---|" + "---:|" * len(ease["trials"]))
    L.append("| NDCG@10 | " + " | ".join(
        (f"**{fmt(x['validation']['ndcg_at_10'])}**" if x["settings"] == ease["chosen"]
         else fmt(x["validation"]["ndcg_at_10"])) for x in ease["trials"]) + " |")
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
             "by random P and by top-spenders P; mean lift = arithmetic mean over groups. "
             "implicit audiences: cosine of each candidate's user factor to the centroid of the "
             "seeds' normalised factors, from the tuned model (chosen by NBO validation NDCG@10, "
             "not by lookalike) and, when shown, from the fixed one. EASE has no customer vectors "
             "and is not in this section.\n")
    if result.get("lookalike_keyword"):
        L += render_keyword(result)
    return "\n".join(L)


def render_keyword(result: dict) -> list[str]:
    """The §5.1 section: per-group table, mean lifts, the word walk."""
    kw = result["lookalike_keyword"]
    rows = kw["groups"]
    models = sorted({m for r in rows for m in r["models"]}, key=_model_order)
    L = [f"## Lookalike, keyword groups (§5.1)\n",
         f"Audience {AUDIENCE}; groups = {KW_GROUPS} Description words of the train purchase "
         f"rows, ranked by distinct items, kept when {KW_SHARE[0]:g} ≤ buyers/|U| ≤ "
         f"{KW_SHARE[1]:g} and < {KW_OVERLAP_MAX:g} of their items belong to words kept "
         "before (PROTOCOL.md §5.1).\n"]
    if "doppel" in result and "doppel_groups" not in kw:
        L.append("doppel's JSON has no `lookalike_keyword`: no doppel column.\n")
    elif kw.get("doppel_groups_mismatch"):
        L.append(f"**mismatch**: doppel's groups are {', '.join(map(str, kw['doppel_groups']))}.\n")
    head = "| group | seeds | candidates | positives | N | random P | top-spenders P |"
    sep = "|---|---:|---:|---:|---:|---:|---:|"
    for m in models:
        head += f" {label(m)} P | ×random | ×top-sp. |"
        sep += "---:|---:|---:|"
        if m == "doppel":
            head += " × peer |"
            sep += "---:|"
    L.append(head)
    L.append(sep)
    for r in rows:
        flag = " ⚠ **mismatch** " + ",".join(r["doppel_mismatch"]) if r.get("doppel_mismatch") else ""
        line = (f"| {r['group']}{flag} | {r['seeds']} | {r['candidates']} | {r['positives']} | "
                f"{r['audience']} | {fmt(r['random_precision'])} | {fmt(r['top_spenders_precision'])} |")
        for m in models:
            x = r["models"].get(m, {})
            line += (f" {fmt(x.get('precision'), 3)} | {fmt(x.get('lift_vs_random'), 2)} | "
                     f"{fmt(x.get('lift_vs_top_spenders'), 2)} |")
            if m == "doppel":
                line += f" {fmt(x.get('lift_vs_peer'), 2)} |"
        L.append(line)
    L.append("")
    ml = kw["mean_lift"]
    L.append("| audience | mean P | mean lift vs random | mean lift vs top spenders | "
             "mean × peer |")
    L.append("|---|---:|---:|---:|---:|")
    L.append(f"| random | {fmt((ml.get('random') or {}).get('precision'))} | 1.00 | – | – |")
    L.append(f"| top spenders | {fmt(ml['top_spenders'].get('precision'))} | "
             f"{fmt(ml['top_spenders']['vs_random'], 2)} | 1.00 | – |")
    for m in models:
        L.append(f"| {label(m)} | {fmt(ml[m].get('precision'))} | {fmt(ml[m]['vs_random'], 2)} | "
                 f"{fmt(ml[m]['vs_top_spenders'], 2)} | {fmt(ml[m].get('vs_peer'), 2)} |")
    L.append("")
    walk = kw.get("walk") or []
    if walk:
        L.append("Words in the seed-share range, in rank order, until the 8th was kept (overlap = "
                 "share of the word's items already in a kept word):\n")
        L.append("| word | items | buyers | share of U | overlap | |")
        L.append("|---|---:|---:|---:|---:|---|")
        for w in walk:
            L.append(f"| {w['word']} | {w['items']} | {w['buyers']} | {fmt(w['share'], 3)} | "
                     f"{fmt(w['overlap'], 2)} | {'kept' if w['kept'] else 'skipped'} |")
        L.append("")
    L.append("Tokens = maximal runs of A–Z in the upper-cased Description, ≥ 3 letters, minus a "
             "27-word stop-list. Seeds = customers with a train purchase row carrying the word; "
             "positives = candidates with a test purchase row carrying it. Baselines and model "
             "audiences as in §5 (centroid cosine of the implicit user factors, the tuned model "
             "chosen by NBO validation NDCG@10). × peer = model P / the tuned implicit ALS P per "
             "group; mean P and every mean lift are arithmetic means over the groups (so a mean "
             "lift is not the ratio of the mean P). ⚠ **mismatch** = doppel's seeds, candidates, "
             "positives or audience differ from this script's.\n")
    return L


def label(name: str) -> str:
    """Human label of a JSON model key."""
    return LABELS.get(name, name)


def _model_order(name: str):
    order = {"implicit_als_tuned": 0, "implicit_als_alpha1": 1, "doppel": 2}
    return (order.get(name, 3), name)


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
                   help="implicit num_threads and EASE's BLAS threads (0 = all cores; "
                        "default %(default)s)")
    p.add_argument("--plot", default=os.path.join(HERE, "lift.png"),
                   help="PNG of lift per group ('' to skip; needs matplotlib)")
    return p.parse_args(argv)


def fmt_time(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S")


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    if not os.path.exists(args.data):
        raise SystemExit(f"data file not found: {args.data} (see /work/shared/data/README.md)")
    threads = args.threads if args.threads > 0 else (os.cpu_count() or 1)

    log("loading", args.data)
    rows = load_rows(args.data)
    cutoff = rows["date"].max() - pd.Timedelta(days=TEST_DAYS)
    test = make_task(split_rows(rows, cutoff))
    counts = dataset_counts(rows, test.s, test.rel)
    log("counts", counts)
    cutoff_val = cutoff - pd.Timedelta(days=VALIDATION_DAYS)
    val = make_task(split_rows(rows[rows["date"] < cutoff], cutoff_val))
    val_counts = split_counts(val.s, val.rel)
    log("validation cutoff", fmt_time(cutoff_val), "counts", val_counts)

    # popularity: nothing to tune; its validation score is shown for reference
    nbo = {"popularity": dict(nbo_metrics(popularity_recs(test.s, test.users), test.rel),
                              settings={},
                              validation=nbo_metrics(popularity_recs(val.s, val.users), val.rel))}

    log(f"tuning implicit ALS on validation: full grid of {len(als_grid())}")
    tuning = {"implicit_als": dict(tune("als", als_grid(), run_als(threads), val),
                                   grid={k: list(v) for k, v in ALS_GRID.items()}, fixed=ALS_FIXED)}
    log(f"tuning EASE on validation: {len(EASE_LAMBDAS)} values of lambda")
    tuning["ease"] = dict(tune("ease", [{"lambda": lam} for lam in EASE_LAMBDAS],
                               run_ease(threads), val),
                          grid={"lambda": list(EASE_LAMBDAS)})

    scorers = {}
    fits = [("implicit_als_tuned", tuning["implicit_als"]["chosen"])]
    if tuning["implicit_als"]["chosen"] != ALS_CONTINUITY:
        fits.append(("implicit_als_alpha1", ALS_CONTINUITY))
    else:
        log("the grid chose the old fixed settings: no separate fixed row")
    for name, settings in fits:
        log("fitting", label(name), settings, "on the train rows")
        model, matrix, secs = fit_als(test.s, settings, threads)
        validation = next(x["validation"] for x in tuning["implicit_als"]["trials"]
                          if x["settings"] == settings)
        nbo[name] = dict(nbo_metrics(als_recs(model, matrix, test.users), test.rel),
                         train_seconds=secs, threads=threads, settings=settings,
                         validation=validation, **ALS_FIXED)
        scorers[name] = centroid_scores(model)

    settings = tuning["ease"]["chosen"]
    log("fitting EASE", settings, "on the train rows")
    x, b, secs, gram_secs = fit_ease(test.s, settings["lambda"], threads)
    nbo["ease_tuned"] = dict(nbo_metrics(ease_recs(x, b, test.users), test.rel),
                             train_seconds=secs, gram_seconds=gram_secs, threads=threads,
                             settings=settings, validation=tuning["ease"]["validation"])
    del x, b
    nbo = {k: nbo[k] for k in PEERS if k in nbo}

    log("lookalike")
    result = {
        "protocol": PROTOCOL,
        "cutoff": fmt_time(cutoff),
        "counts": counts,
        "validation": {"cutoff": fmt_time(cutoff_val), "counts": val_counts},
        "threads": threads,
        "nbo": nbo,
        "tuning": tuning,
        "lookalike": lookalike(test.s, scorers),
        "lookalike_keyword": lookalike_keyword(test.s, scorers),
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
