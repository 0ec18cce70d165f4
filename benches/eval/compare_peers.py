#!/usr/bin/env python3
"""Side-by-side evaluation of next-best offers: doppel vs peers tuned on a validation split.

Two data sets (`--dataset`), each with its own protocol in benches/eval/PROTOCOL.md;
`doppel evaluate` implements the same rules, so the counts printed here must match its counts.

online-retail (default; PROTOCOL.md §1–§9, `doppel-eval-v1`), UCI Online Retail, three sections:

  * next-best offer (NBO): top-10 items per evaluated customer, Recall/NDCG/HitRate/Precision@10
  * lookalike: 8 product groups (3-character StockCode prefixes, §5), audience of 200
    prospects, precision and lift vs a random audience and vs the top spenders
  * lookalike, keyword groups (§5.1): the same audiences for 8 groups chosen by a word of the
    item Description (CANDLE, WALL, ...), plus lift vs the tuned implicit ALS peer

ml-100k (PROTOCOL.md §11, `doppel-eval-ml100k-v1`), MovieLens-100k as RecBole ships it
(benches/eval/fetch_ml100k.sh): per-user temporal 8:1:1 split, NBO only.

Peers, each tuned honestly: the settings are searched on the validation split (Online Retail:
PROTOCOL.md §2.1, train < cutoff − 30 days, validation test = purchases in
[cutoff − 30 days, cutoff); ml-100k: fit on each user's first 80 %, score on the next 10 %)
by NDCG@10, then the model is refitted on the test split's fit rows with the chosen settings
and scored on the test rows once.

  * popularity baseline (no settings)
  * implicit.cpu.als.AlternatingLeastSquares (iterations=15, random_state=42, alpha=1.0), full
    grid over factors x regularization x matrix scale (count matrix x scale)
  * EASE (Steck 2019) on the binary customer x item matrix, grid over lambda (widened when the
    best lambda sits on an edge of the grid)
  * EASE + recent-popularity prior: z_u(EASE scores) + beta x z(ln(1 + distinct buyers of the
    item in the 14 days before the fit's cutoff)), the formula doppel serves; lambda = EASE's,
    beta chosen on validation (0 when no beta beats plain EASE)
  * continuity row (Online Retail only): implicit ALS at the old fixed settings (factors 64,
    regularization 0.05, matrix as is), not tuned

With --doppel-json, doppel's rows (PROTOCOL.md §7 / §11.7): "doppel (as served)" = `nbo.doppel`,
its offers as served (its ALS scores standardised per customer + β x the same recent-popularity
prior, β chosen by the training run on the newest 10 % of its own train rows), and "doppel ALS
without prior" = `nbo.doppel_without_prior` (the same model, β = 0); ratios doppel / every peer.

Usage:
  python3 benches/eval/compare_peers.py [--data PATH] [--out results.md] [--json results.json]
                                        [--doppel-json doppel.json] [--threads 2] [--plot lift.png]
  python3 benches/eval/compare_peers.py --dataset ml-100k [--data ml-100k.inter]
                                        [--doppel-json doppel-ml100k.json]
  --quick: tiny grids, to check that the script runs (numbers not for reporting)
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
FIT_REPEATS = 5             # final fits are timed this many times; reports give the median
ALS_GRID = {                                                # full grid, 3 x 9 x 5 = 135 fits
    "factors": (32, 64, 128),
    # 0.01..5 as issue 12 lists them; 10, 20, 50 added because at 128 factors the best
    # setting sat on the 5 edge (and a larger matrix scale wants a larger regularization)
    "regularization": (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 20.0, 50.0),
    "alpha_scale": (0.3, 1.0, 3.0, 10.0, 40.0),             # count matrix x scale; alpha=1.0
}
ALS_CONTINUITY = dict(factors=64, regularization=0.05, alpha_scale=1.0)  # the old fixed row
EASE_LAMBDAS = (50.0, 100.0, 200.0, 300.0, 500.0, 1000.0, 2000.0, 5000.0)
EASE_WIDEN_LIMITS = (1.0, 1e6)  # when the best λ is an edge, extend the grid (×/÷ 2) within these
PRIOR_DAYS = 14             # EASE + prior: distinct buyers in the 14 days before the fit's cutoff
PRIOR_BETAS = (0.2, 0.4, 0.8, 1.2, 1.6, 2.4, 3.2, 4.8, 6.4, 9.6)   # β = 0 (plain EASE) comes first
QUICK_ALS_GRID = {"factors": (32, 64), "regularization": (0.05,), "alpha_scale": (1.0,)}
QUICK_EASE_LAMBDAS = (100.0, 300.0, 1000.0)

# MovieLens-100k (PROTOCOL.md §11)
ML_PROTOCOL = "doppel-eval-ml100k-v1"
ML_RATIOS = (0.8, 0.1, 0.1)  # RecBole eval_args split RS [0.8, 0.1, 0.1], order TO, group_by user
ML_HEADER = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
ML_SHA256 = "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"
ML_DEFAULT_DATA = os.path.join(os.environ.get("XDG_CACHE_HOME") or
                               os.path.join(os.path.expanduser("~"), ".cache"),
                               "doppel", "ml-100k", "ml-100k.inter")

LABELS = {                  # JSON key -> label in the Markdown tables and the plot
    "popularity": "popularity",
    "implicit_als_tuned": "implicit ALS (tuned)",
    "ease_tuned": "EASE (tuned)",
    "ease_recent_prior": "EASE + recent-popularity prior",
    "implicit_als_alpha1": "implicit ALS fixed (old settings)",
    "doppel": "doppel",
    "doppel_without_prior": "doppel ALS without prior",
    "popularity_doppel": "popularity (doppel's)",
}
NBO_LABELS = {              # the NBO tables say what doppel's offers are (the lookalike does not
                            # read the prior: there "doppel" is the same model's user factors)
    "doppel": "doppel (as served: ALS + recency shift + recent-popularity prior, w and β chosen by the run)",
}
PEERS = ("popularity", "implicit_als_tuned", "ease_tuned", "ease_recent_prior",
         "implicit_als_alpha1")
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
    return build_split(cutoff, train, train_p, test_p, customer_key=int)


def build_split(cutoff: pd.Timestamp, train: pd.DataFrame, train_p: pd.DataFrame,
                test_p: pd.DataFrame, customer_key=None) -> Split:
    """Index a split: U, I (byte order) and the U x I matrix of train purchase row counts.

    Customers order by `customer_key` (Online Retail: numerically), else as strings (byte order
    for the ASCII ids of ml-100k).
    """
    customers = np.array(sorted(train_p["customer"].unique(), key=customer_key))
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


# --------------------------------------------------------------------------------------------
# 2b. MovieLens-100k rows and per-user split (PROTOCOL.md §11)
# --------------------------------------------------------------------------------------------

def load_ml100k(path: str) -> pd.DataFrame:
    """Read RecBole's ml-100k.inter (§11.1): every row is a purchase of quantity 1.

    Returns columns customer (str, user_id as in the file), item (str, item_id as in the file),
    ts_ms (int64, timestamp seconds x 1000), date (datetime64[ms] of ts_ms, for the prior's
    window), purchase (True), ret (False).
    """
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
    if header != ML_HEADER:
        raise SystemExit(f"{path}: header {header!r}, expected {ML_HEADER!r}")
    raw = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    if not raw[ML_HEADER[3]].str.fullmatch(r"[0-9]+").all():
        raise SystemExit(f"{path}: a timestamp is not a non-negative integer")
    ts_ms = raw[ML_HEADER[3]].astype(np.int64) * 1000
    return pd.DataFrame({
        "customer": raw[ML_HEADER[0]],
        "item": raw[ML_HEADER[1]],
        "ts_ms": ts_ms,
        "date": pd.to_datetime(ts_ms, unit="ms"),
        "purchase": True,
        "ret": False,
    })


def ml_split_sizes(n: int, ratios=ML_RATIOS) -> list[int]:
    """RecBole 1.2.1 `Dataset._calcu_split_ids`, as part sizes (§11.2).

    cnt[i] = int(ratio_i x n) for the later parts, cnt[0] = n − their sum; then, for the
    parts from the last backwards, while cnt[0] > 1: a part with 0 < ratio x n < 1 gets one
    row from cnt[0]. (ratios are normalised first; [0.8, 0.1, 0.1] sums to exactly 1.0.)
    """
    total = sum(ratios)
    ratios = [r / total for r in ratios]
    cnt = [int(r * n) for r in ratios]
    cnt[0] = n - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * n < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return cnt


def ml_parts(rows: pd.DataFrame) -> pd.Series:
    """Part of each row: 0 train, 1 validation, 2 test (§11.2).

    Per user, rows ordered by timestamp, ties by item id (byte-wise); the first cnt[0] rows are
    train, the next cnt[1] validation, the rest test.
    """
    order = rows.sort_values(["customer", "ts_ms", "item"], kind="mergesort")
    rank = order.groupby("customer", sort=False).cumcount().to_numpy()
    n = order.groupby("customer", sort=False)["item"].transform("size").to_numpy()
    bounds = {m: np.cumsum(ml_split_sizes(int(m))) for m in np.unique(n)}
    b1 = np.array([bounds[m][0] for m in n])
    b2 = np.array([bounds[m][1] for m in n])
    part = np.where(rank < b1, 0, np.where(rank < b2, 1, 2))
    return pd.Series(part, index=order.index).reindex(rows.index)


def ml_split(fit: pd.DataFrame, ev: pd.DataFrame) -> Split:
    """An ml-100k evaluation: fit rows and evaluation rows (§11.3); cutoff = newest fit row + 1 ms
    (only the prior of EASE + prior reads it)."""
    cutoff = fit["date"].max() + pd.Timedelta(milliseconds=1)
    return build_split(cutoff, fit, fit, ev)


def ml_counts(s: Split, rel: dict[int, set[int]]) -> dict:
    """§11.5 counts of one evaluation."""
    return {"fit_rows": int(len(s.train_p)), **split_counts(s, rel)}


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

def fit_als(s: Split, settings: dict, threads: int, repeats: int = 1):
    """Fit implicit's CPU ALS on counts x alpha_scale (BLAS held at 1 thread, as implicit advises).

    Returns (model, matrix used, wall seconds of fit()); with `repeats` > 1 the fit runs that
    many times (same seed, same model) and the seconds are the median.
    """
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    scale = settings["alpha_scale"]
    matrix = (s.counts * scale).astype(np.float32).tocsr() if scale != 1.0 else s.counts
    with threadpool_limits(limits=1, user_api="blas"):
        runs = []
        for _ in range(repeats):
            model = AlternatingLeastSquares(factors=settings["factors"],
                                            regularization=settings["regularization"],
                                            alpha=1.0, num_threads=threads, **ALS_FIXED)
            t0 = time.perf_counter()
            model.fit(matrix, show_progress=False)
            runs.append(time.perf_counter() - t0)
    return model, matrix, float(np.median(runs))


def als_recs(model, matrix: sp.csr_matrix, users: list[int]) -> dict[int, list[int]]:
    """Top-10 per user from one batched recommend(..., filter_already_liked_items=True)."""
    from threadpoolctl import threadpool_limits

    uid = np.asarray(users, dtype=np.int32)
    with threadpool_limits(limits=1, user_api="blas"):
        ids, _scores = model.recommend(uid, matrix[uid], N=K, filter_already_liked_items=True)
    return {u: [int(j) for j in row if j >= 0] for u, row in zip(users, ids)}


# --- EASE -----------------------------------------------------------------------------------

def fit_ease(s: Split, lam: float, threads: int, repeats: int = 1):
    """EASE (Steck 2019) on X = 1[any train purchase]: P = (XᵀX + λI)⁻¹, B = I − P/diag(P).

    B has a zero diagonal (B_ij = −P_ij / P_jj for i ≠ j). Returns (X, B, fit seconds, gram
    seconds); fit seconds = wall time of the inverse and B (float64, BLAS at `threads`), the
    median of `repeats` runs.
    """
    from threadpoolctl import threadpool_limits

    x = s.counts.copy()
    x.data[:] = 1.0
    x = x.astype(np.float64).tocsr()
    t0 = time.perf_counter()
    gram = (x.T @ x).toarray()
    gram_seconds = time.perf_counter() - t0
    gram[np.diag_indices_from(gram)] += lam
    runs = []
    with threadpool_limits(limits=threads, user_api="blas"):
        for _ in range(repeats):
            t0 = time.perf_counter()
            p = np.linalg.inv(gram)
            b = p / (-np.diag(p))[None, :]
            b[np.diag_indices_from(b)] = 0.0
            runs.append(time.perf_counter() - t0)
    return x, b, float(np.median(runs)), gram_seconds


def ease_recs(x: sp.csr_matrix, b: np.ndarray, users: list[int]) -> dict[int, list[int]]:
    """Top-10 of X_u·B per user, own items excluded; ties by item id (stable sort)."""
    xu = x[np.asarray(users)]
    scores = np.asarray(xu @ b)
    r, c = xu.nonzero()
    scores[r, c] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    return {u: [int(j) for j in row] for u, row in zip(users, top)}


# --- EASE + recent-popularity prior ---------------------------------------------------------

def recent_prior(s: Split, days: float = PRIOR_DAYS) -> np.ndarray:
    """z(ln(1 + distinct buyers of each item of I in [cutoff − days, cutoff))) over I.

    Buyers are the customers of the split's train purchase rows (its fit rows) in the window;
    z = (p − mean) / sd over the catalogue I, population sd; all zeros when sd is 0.
    """
    return _zscore(np.log1p(recent_prior_raw_count(s, days).astype(np.float64)))


def _zscore(v: np.ndarray, axis=None) -> np.ndarray:
    """(v − mean) / sd along `axis` (population sd); where sd is 0, v − mean (all zeros)."""
    mean = v.mean(axis=axis, keepdims=True)
    sd = v.std(axis=axis, keepdims=True)
    return (v - mean) / np.where(sd > 1e-12, sd, 1.0)


def ease_prior_recs(x: sp.csr_matrix, b: np.ndarray, users: list[int], prior: np.ndarray,
                    beta: float) -> dict[int, list[int]]:
    """Top-10 of z_u(X_u·B) + β·prior per user (z over all of I), own items excluded; ties by
    item id (stable sort)."""
    xu = x[np.asarray(users)]
    scores = _zscore(np.asarray(xu @ b), axis=1) + beta * prior[None, :]
    r, c = xu.nonzero()
    scores[r, c] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    return {u: [int(j) for j in row] for u, row in zip(users, top)}


def tune_ease(val: "Task", threads: int, lambdas) -> dict:
    """EASE's λ grid on the validation split; while the best λ is the grid's largest (smallest),
    add twice (half) that value, within EASE_WIDEN_LIMITS. Returns the `tune` dict plus `grid`
    (every λ tried, ascending) and `widened` (the λ added)."""
    grid = sorted(float(x) for x in lambdas)
    res = tune("ease", [{"lambda": lam} for lam in grid], run_ease(threads), val)
    added = []
    while True:
        best = res["chosen"]["lambda"]
        if best == max(grid) and best * 2 <= EASE_WIDEN_LIMITS[1]:
            nxt = best * 2
        elif best == min(grid) and best / 2 >= EASE_WIDEN_LIMITS[0]:
            nxt = best / 2
        else:
            break
        log(f"  EASE: best λ {best:g} is on the edge of the grid; trying λ {nxt:g}")
        extra = tune("ease", [{"lambda": nxt}], run_ease(threads), val)
        added.append(nxt)
        grid = sorted(grid + [nxt])
        trials = sorted(res["trials"] + extra["trials"], key=lambda t: t["settings"]["lambda"])
        best_i = max(range(len(trials)),
                     key=lambda i: (trials[i]["validation"]["ndcg_at_10"], -i))
        res = {"method": "full grid, widened at the edge", "trials": trials,
               "chosen": trials[best_i]["settings"], "validation": trials[best_i]["validation"],
               "wall_seconds": res["wall_seconds"] + extra["wall_seconds"]}
    return dict(res, grid={"lambda": grid}, widened=added)


def tune_prior(val: "Task", lam: float, threads: int) -> dict:
    """β of EASE + prior on the validation split, λ fixed to EASE's choice: β = 0 (plain EASE)
    first, then PRIOR_BETAS; chosen = best NDCG@10, first on ties (so 0 unless a β beats EASE)."""
    t0 = time.perf_counter()
    x, b, _secs, _gram = fit_ease(val.s, lam, threads)
    prior = recent_prior(val.s)
    trials = []
    for beta in (0.0,) + PRIOR_BETAS:
        m = nbo_metrics(ease_prior_recs(x, b, val.users, prior, beta), val.rel)
        trials.append({"settings": {"lambda": lam, "beta": beta, "prior_days": PRIOR_DAYS},
                       "validation": m})
        log(f"  ease+prior β {beta:g} val NDCG@10 {m['ndcg_at_10']:.4f}")
    best = max(range(len(trials)), key=lambda i: (trials[i]["validation"]["ndcg_at_10"], -i))
    return {"method": "grid over β, λ of EASE", "trials": trials,
            "chosen": trials[best]["settings"], "validation": trials[best]["validation"],
            "grid": {"beta": [0.0, *PRIOR_BETAS]}, "wall_seconds": time.perf_counter() - t0}


def tune_peers(val: "Task", threads: int, quick: bool) -> dict:
    """The validation searches shared by both data sets: implicit ALS (full grid), EASE (λ,
    widened at an edge), EASE + prior (β at EASE's λ)."""
    grid = QUICK_ALS_GRID if quick else ALS_GRID
    log(f"tuning implicit ALS on validation: full grid of {len(als_grid(grid))}")
    tuning = {"implicit_als": dict(tune("als", als_grid(grid), run_als(threads), val),
                                   grid={k: list(v) for k, v in grid.items()}, fixed=ALS_FIXED)}
    lambdas = QUICK_EASE_LAMBDAS if quick else EASE_LAMBDAS
    log(f"tuning EASE on validation: {len(lambdas)} values of lambda")
    tuning["ease"] = tune_ease(val, threads, lambdas)
    log(f"tuning EASE + prior on validation: β at λ {tuning['ease']['chosen']['lambda']:g}")
    tuning["ease_prior"] = tune_prior(val, tuning["ease"]["chosen"]["lambda"], threads)
    return tuning


def implicit_fit_time_64(s: Split, tuning: dict, threads: int) -> dict:
    """implicit's fit time at 64 factors (its tuned regularisation and scale), the median of
    FIT_REPEATS fits: where issue 12 compares training cost."""
    settings = dict(tuning["implicit_als"]["chosen"], factors=64)
    log("timing implicit ALS", settings, f"x{FIT_REPEATS}")
    _model, _matrix, secs = fit_als(s, settings, threads, FIT_REPEATS)
    return {"implicit_als": {"median_seconds": secs, "settings": settings,
                             "iterations": ALS_FIXED["iterations"], "repeats": FIT_REPEATS,
                             "threads": threads}}


def final_ease_rows(test: "Task", tuning: dict, threads: int) -> dict:
    """Refit EASE with the chosen λ on the test split's fit rows; score plain EASE and EASE +
    prior (chosen β) on the test rows once."""
    settings = tuning["ease"]["chosen"]
    log("fitting EASE", settings, "on the train rows")
    x, b, secs, gram_secs = fit_ease(test.s, settings["lambda"], threads, FIT_REPEATS)
    out = {"ease_tuned": dict(nbo_metrics(ease_recs(x, b, test.users), test.rel),
                              train_seconds=secs, gram_seconds=gram_secs, threads=threads,
                              settings=settings, validation=tuning["ease"]["validation"])}
    ps = tuning["ease_prior"]["chosen"]
    t0 = time.perf_counter()
    prior = recent_prior(test.s)
    prior_secs = time.perf_counter() - t0
    out["ease_recent_prior"] = dict(
        nbo_metrics(ease_prior_recs(x, b, test.users, prior, ps["beta"]), test.rel),
        train_seconds=secs + prior_secs, gram_seconds=gram_secs, threads=threads, settings=ps,
        validation=tuning["ease_prior"]["validation"],
        prior_window={"from": fmt_time(test.s.cutoff - pd.Timedelta(days=PRIOR_DAYS)),
                      "to_exclusive": fmt_time(test.s.cutoff, ms=True),
                      "items_with_recent_buyers": int((recent_prior_raw_count(test.s) > 0).sum())})
    return out


def recent_prior_raw_count(s: Split, days: float = PRIOR_DAYS) -> np.ndarray:
    """Distinct buyers per item of I in the prior's window (for the report)."""
    tp = s.train_p
    recent = tp[(tp["date"] >= s.cutoff - pd.Timedelta(days=days)) & (tp["date"] < s.cutoff)]
    return recent.groupby("item")["customer"].nunique().reindex(s.items, fill_value=0).to_numpy()


# --- tuning ---------------------------------------------------------------------------------

def als_grid(grid: dict = ALS_GRID) -> list[dict]:
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*grid.values())]


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


def merge_doppel_nbo(result: dict, d: dict) -> dict:
    """doppel's NBO rows (as served, without the prior, its popularity) and the ratios of doppel
    to every peer, into `result` (in place). Returns doppel's `tuning` object ({} when absent).

    `nbo.doppel` is doppel's offers as served: its standardised ALS scores + β x the standardised
    recent-popularity prior, β = `model.recent_popularity_weight`, chosen by the training run on
    its own train rows (not on validation or test); its validation score is `tuning.validation`
    (the prior included, β chosen the same way on the validation train rows).
    `nbo.doppel_without_prior` (optional) is the same model's plain ALS offers (β = 0); it has
    no validation score of its own.
    """
    result["doppel"] = d
    nbo = result["nbo"]
    t = d.get("tuning") or {}
    model = d.get("model") or {}
    settings = dict(t.get("chosen") or model)
    beta = model.get("recent_popularity_weight")
    settings["recent_popularity_weight"] = beta
    recency = model.get("recency_weight")
    if recency is not None:
        settings["recency_weight"] = recency
    if "recent_popularity_days" in model:
        settings["recent_popularity_days"] = model["recent_popularity_days"]
    nbo["doppel"] = dict(d["nbo"]["doppel"], train_seconds=d["train_seconds"],
                         threads=d.get("threads"), settings=settings,
                         recent_popularity_weight=beta, recency_weight=recency,
                         recent_popularity_weight_source=model.get(
                             "recent_popularity_weight_source"),
                         validation=t.get("validation"))
    plain = d["nbo"].get("doppel_without_prior")
    if isinstance(plain, dict):
        nbo["doppel_without_prior"] = dict(
            {k: plain.get(k) for k in METRICS}, train_seconds=d["train_seconds"],
            threads=d.get("threads"),
            settings=dict(settings, recent_popularity_weight=0.0,
                          **({"recency_weight": 0.0} if recency is not None else {})),
            validation=None)
    if "popularity" in d["nbo"]:
        nbo["popularity_doppel"] = dict(d["nbo"]["popularity"])
    dn = d["nbo"]["doppel"]["ndcg_at_10"]
    dv = (t.get("validation") or {}).get("ndcg_at_10")
    dpn = (nbo.get("doppel_without_prior") or {}).get("ndcg_at_10")
    ratios = {}
    for name in PEERS:
        m = nbo.get(name)
        if m is None:
            continue
        pv = (m.get("validation") or {}).get("ndcg_at_10")
        ratios[name] = {
            "ndcg_doppel_over_peer": _ratio(dn, m["ndcg_at_10"]),
            "validation_ndcg_doppel_over_peer": _ratio(dv, pv) if dv is not None and pv else None,
            "ndcg_doppel_without_prior_over_peer": _ratio(dpn, m["ndcg_at_10"]),
            "train_seconds_peer_over_doppel": (_ratio(m["train_seconds"], d["train_seconds"])
                                               if m.get("train_seconds") is not None else None),
        }
    result["ratios"] = ratios
    timing = d.get("train_timing")
    if isinstance(timing, dict) and "fit_time_64" in result:
        result["fit_time_64"]["doppel"] = {
            "median_seconds": timing.get("factors_64_median_seconds"),
            "iterations": timing.get("iterations"), "repeats": timing.get("repeats"),
            "threads": d.get("threads")}
        result["fit_time_64"]["doppel_chosen"] = {
            "median_seconds": timing.get("median_seconds"), "factors": model.get("factors"),
            "iterations": timing.get("iterations"), "repeats": timing.get("repeats")}
    return t


def merge_doppel(result: dict, d: dict) -> None:
    """Put doppel's numbers beside the peers' in `result` (in place), with ratios."""
    t = merge_doppel_nbo(result, d)

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
    if result.get("quick"):
        L.append("**Quick run (`--quick`): tiny grids, not for reporting.**\n")
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
        L.append(f"| {nbo_label(name)} | {fmt_settings(m.get('settings'))} | {fmt(v)} | "
                 f"{fmt(m['recall_at_10'])} | {fmt(m['ndcg_at_10'])} | "
                 f"{fmt(m['hit_rate_at_10'])} | {fmt(m['precision_at_10'])} | "
                 f"{fmt(m.get('train_seconds'), 2)} |")
    L.append("")
    tn = result["tuning"]
    L.append(
        "Validation NDCG@10 = the chosen settings' score on the validation split; the other "
        "metrics are the test window. Fit s = wall time of the final fit on the train rows "
        f"only, the median of {FIT_REPEATS} fits ({result['threads']} threads): implicit `fit()` with BLAS at 1 thread; EASE the "
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
    if prior_note(result):
        L.append(prior_note(result))
    if doppel_note(result):
        L.append(doppel_note(result))
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
        L += render_ratios(result)

    L += render_tuning(tn)

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


def render_ratios(result: dict) -> list[str]:
    """Ratios of doppel (as served, and without the prior) to every peer."""
    rows = result["ratios"]
    L = ["Ratios, doppel / peer (doppel = as served, with the prior; validation NDCG only where "
         "both have one):\n",
         "| vs | doppel val NDCG@10 / peer val NDCG@10 | doppel test NDCG@10 / peer test NDCG@10 "
         "| doppel ALS without prior test NDCG@10 / peer test NDCG@10 | peer fit s / doppel fit s |",
         "|---|---:|---:|---:|---:|"]
    for name, r in rows.items():
        L.append(f"| {label(name)} | {fmt(r['validation_ndcg_doppel_over_peer'], 3)} | "
                 f"{fmt(r['ndcg_doppel_over_peer'], 3)} | "
                 f"{fmt(r.get('ndcg_doppel_without_prior_over_peer'), 3)} | "
                 f"{fmt(r['train_seconds_peer_over_doppel'], 2)} |")
    L.append("")
    return L + render_fit_time(result)


def render_fit_time(result: dict) -> list[str]:
    """Training cost at 64 factors (issue 12's comparison), medians of repeated fits."""
    ft = result.get("fit_time_64") or {}
    peer, ours = ft.get("implicit_als"), ft.get("doppel")
    if not peer or not ours:
        return []
    chosen = ft.get("doppel_chosen") or {}
    rows = ("train + validation rows" if result.get("dataset") == "ml-100k"
            else "train rows")

    def per_iteration(m: dict):
        secs, its = m.get("median_seconds"), m.get("iterations")
        return secs / its if secs is not None and its else None

    L = [f"Fit time at 64 factors (median of repeated fits on the {rows}, "
         f"{peer.get('threads')} threads; each model at its own chosen regularisation and "
         "confidence scale):\n",
         "| model | iterations | fits | median fit s | s per iteration | peer s / doppel s "
         "| per iteration |",
         "|---|---:|---:|---:|---:|---:|---:|",
         f"| implicit ALS (tuned settings, 64 factors) | {peer['iterations']} | "
         f"{peer['repeats']} | {fmt(peer['median_seconds'], 2)} | "
         f"{fmt(per_iteration(peer), 3)} | 1 | 1 |",
         f"| doppel (chosen settings, 64 factors) | {ours.get('iterations')} | "
         f"{ours.get('repeats')} | {fmt(ours.get('median_seconds'), 2)} | "
         f"{fmt(per_iteration(ours), 3)} | "
         f"{fmt(_ratio(peer['median_seconds'], ours.get('median_seconds')), 2)} | "
         f"{fmt(_ratio(per_iteration(peer), per_iteration(ours)), 2)} |"]
    if chosen.get("median_seconds") is not None:
        L.append(f"| doppel (chosen settings, {chosen.get('factors')} factors, the fit s above) "
                 f"| {chosen.get('iterations')} | {chosen.get('repeats')} | "
                 f"{fmt(chosen['median_seconds'], 2)} | {fmt(per_iteration(chosen), 3)} "
                 "| – | – |")
    L.append("")
    return L


def prior_note(result: dict) -> str:
    """One paragraph on the EASE + prior row."""
    ep = result["nbo"].get("ease_recent_prior")
    if not ep:
        return ""
    w = ep.get("prior_window") or {}
    return ("EASE + recent-popularity prior: z_u(X_u·B) + β·z(ln(1 + distinct buyers of the item "
            f"in the {PRIOR_DAYS} days before the fit's cutoff)), z over the catalogue I; λ is "
            f"EASE's, β {ep['settings']['beta']:g} was chosen on validation (β 0 = plain EASE "
            f"wins ties); test window of the prior [{w.get('from')}, {w.get('to_exclusive')}), "
            f"{w.get('items_with_recent_buyers')} items with a recent buyer. Its fit s is EASE's "
            "plus the prior.\n")


def _g(x) -> str:
    """A number in short form (4.800000190734863 -> 4.8), '–' for None."""
    return "–" if x is None else f"{x:.4g}" if isinstance(x, float) else str(x)


def doppel_note(result: dict) -> str:
    """One paragraph on doppel's two rows: what is served, how β was chosen."""
    nbo = result["nbo"]
    dp = nbo.get("doppel")
    if not dp:
        return ""
    beta = dp.get("recent_popularity_weight")
    recency = dp.get("recency_weight")
    days = dp["settings"].get("recent_popularity_days")
    txt = ("doppel (as served) = doppel's offers as it serves them: per customer the scores "
           "q·y of its recency-shifted query q = u + w·|u|/|r|·r (r = the mean factors of the "
           "customer's last 8 distinct train purchases, each half the weight of the next newer), "
           "standardised over the catalogue, + β × z(ln(1 + distinct buyers of the item in the "
           f"{_g(days)} days before its newest train row)). w {_g(recency)} and β {_g(beta)} "
           "were chosen by the training run itself on its own train rows (a held-out refit on "
           "the newest 10 %, or on each customer's newest 10 % when too few customers bought "
           "both before and in the newest 10 % of the log; β is not chosen then), not on the "
           "validation split or the test window; its validation NDCG@10 is doppel's "
           "`tuning.validation`, where each trial chose its weights the same way on the "
           "validation train rows. ")
    plain = nbo.get("doppel_without_prior")
    if plain:
        txt += ("doppel ALS without prior = the same fitted model's plain ALS offers, w = β = 0 "
                "(no validation score of its own)")
        if beta == 0 and not recency:
            txt += "; the run chose w = β = 0 here, so the two rows are the same offers"
        txt += ". "
    else:
        txt += "doppel's JSON has no `nbo.doppel_without_prior`: no row without the prior. "
    txt += ("doppel's fit s is its final ALS fit (`train_seconds`, the median of "
            f"{FIT_REPEATS} fits); the held-out refit that chooses w and β is not in it.")
    return txt + "\n"


def render_tuning(tn: dict) -> list[str]:
    """The validation searches: implicit's grid per factor count, EASE's λ, the prior's β."""
    L = ["## Tuning on the validation split\n"]
    als = tn["implicit_als"]
    grid = als.get("grid") or ALS_GRID
    L.append(f"implicit ALS, validation NDCG@10 per setting (iterations {ALS_FIXED['iterations']}, "
             f"random_state {ALS_FIXED['random_state']}); rows regularization, columns "
             "alpha_scale; **bold** = chosen.\n")
    by = {(x["settings"]["factors"], x["settings"]["regularization"], x["settings"]["alpha_scale"]):
          x["validation"]["ndcg_at_10"] for x in als["trials"]}
    ch = als["chosen"]
    for f in grid["factors"]:
        L.append(f"factors {f}:\n")
        L.append("| reg \\ scale | " + " | ".join(f"{a:g}" for a in grid["alpha_scale"]) + " |")
        L.append("|---|" + "---:|" * len(grid["alpha_scale"]))
        for r in grid["regularization"]:
            cells = []
            for a in grid["alpha_scale"]:
                v = fmt(by.get((f, r, a)))
                if (f, r, a) == (ch["factors"], ch["regularization"], ch["alpha_scale"]):
                    v = f"**{v}**"
                cells.append(v)
            L.append(f"| {r:g} | " + " | ".join(cells) + " |")
        L.append("")
    ease = tn["ease"]
    widened = ease.get("widened") or []
    L.append("EASE, validation NDCG@10 per λ (**bold** = chosen"
             + (f"; λ {', '.join(f'{x:g}' for x in widened)} added because the best λ sat on "
                "the edge of the grid" if widened else "") + "):\n")
    L.append("| λ | " + " | ".join(f"{x['settings']['lambda']:g}" for x in ease["trials"]) + " |")
    L.append("|---|" + "---:|" * len(ease["trials"]))
    L.append("| NDCG@10 | " + " | ".join(
        (f"**{fmt(x['validation']['ndcg_at_10'])}**" if x["settings"] == ease["chosen"]
         else fmt(x["validation"]["ndcg_at_10"])) for x in ease["trials"]) + " |")
    L.append("")
    ep = tn.get("ease_prior")
    if ep:
        L.append(f"EASE + recent-popularity prior, validation NDCG@10 per β at EASE's λ "
                 f"{ep['chosen']['lambda']:g} (β 0 = plain EASE; **bold** = chosen):\n")
        L.append("| β | " + " | ".join(f"{x['settings']['beta']:g}" for x in ep["trials"]) + " |")
        L.append("|---|" + "---:|" * len(ep["trials"]))
        L.append("| NDCG@10 | " + " | ".join(
            (f"**{fmt(x['validation']['ndcg_at_10'])}**" if x["settings"] == ep["chosen"]
             else fmt(x["validation"]["ndcg_at_10"])) for x in ep["trials"]) + " |")
        L.append("")
    return L


def render_ml100k(result: dict) -> str:
    """The Markdown report of the ml-100k run (same numbers as the JSON)."""
    meta, c, tn = result["meta"], result["counts"], result["tuning"]
    d = result.get("doppel")
    dc = flat_counts(d["counts"]) if d else {}
    L = [f"# doppel vs tuned peers on MovieLens-100k (protocol `{ML_PROTOCOL}`)\n"]
    if result.get("quick"):
        L.append("**Quick run (`--quick`): tiny grids, not for reporting.**\n")
    L.append(f"Data: `{meta['data_file']}` from the `recbole==1.2.1` wheel "
             f"(`benches/eval/fetch_ml100k.sh`; sha256 `{meta['data_sha256'][:16]}…`"
             + ("" if meta["data_sha256"] == ML_SHA256 else " **not the protocol's file**")
             + f"). Run {meta['run_seconds']:.1f} s on {meta['cpus']} CPUs; "
             f"Python {meta['versions']['python']}, implicit {meta['versions']['implicit']}, "
             f"numpy {meta['versions']['numpy']}, scipy {meta['versions']['scipy']}, "
             f"pandas {meta['versions']['pandas']}.\n")
    L.append("Protocol (PROTOCOL.md §11, RecBole's ml-100k setting): every rating is an "
             "interaction; per user, rows in time order (ties by item id) split 8:1:1 "
             "(RecBole's `_calcu_split_ids`); full ranking of the catalogue, top 10. Every "
             "tuned model chose its settings on validation (fit on the users' first parts, "
             "scored on the second) by NDCG@10, was refitted on train + validation with them "
             "and scored on the third parts once.\n")
    L.append("## Counts\n")
    def row(key: str, v) -> str:
        if not d:
            return f"| {key} | {v} |"
        o = dc.get(key)
        return f"| {key} | {v} | {fmt(o)} | {'' if o is None or o == v else '**mismatch**'} |"
    L.append("| count (whole file) | this script | doppel | |\n|---|---:|---:|---|" if d
             else "| count (whole file) | value |\n|---|---:|")
    for k in ("rows", "users", "items"):
        L.append(row(k, c[k]))
    L.append("")
    keys = list(c["test"])
    if d:
        L.append("| count | validation | doppel | | test | doppel | |")
        L.append("|---|---:|---:|---|---:|---:|---|")
        for k in keys:
            cells = []
            for ev in ("validation", "test"):
                v, o = c[ev][k], dc.get(f"{ev}.{k}")
                cells += [str(v), fmt(o), "" if o is None or o == v else "**mismatch**"]
            L.append(f"| {k} | " + " | ".join(cells) + " |")
    else:
        L.append("| count | validation | test |\n|---|---:|---:|")
        for k in keys:
            L.append(f"| {k} | {c['validation'][k]} | {c['test'][k]} |")
    cm = result["cutoff_ms"]
    L.append(f"| cutoff_ms (newest fit row + 1 ms) | {cm['validation']} | {cm['test']} |"
             if not d else
             f"| cutoff_ms (newest fit row + 1 ms) | {cm['validation']} | "
             f"{fmt((d.get('cutoff_ms') or {}).get('validation'))} | | {cm['test']} | "
             f"{fmt((d.get('cutoff_ms') or {}).get('test'))} | |")
    L.append("")
    if d and result.get("counts_mismatch"):
        L.append(f"**mismatch** in {', '.join(result['counts_mismatch'])}.\n")
    if d and result.get("counts_missing_in_doppel"):
        L.append(f"doppel's JSON lacks {', '.join(result['counts_missing_in_doppel'])}.\n")

    L.append(f"## Next-best offer (top-{K}, {c['test']['evaluated_customers']} test users, "
             f"{c['validation']['evaluated_customers']} validation users)\n")
    L.append("| model | chosen settings | validation NDCG@10 | Recall@10 | NDCG@10 | HitRate@10 "
             "| Precision@10 | fit s |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, m in result["nbo"].items():
        v = (m.get("validation") or {}).get("ndcg_at_10")
        L.append(f"| {nbo_label(name)} | {fmt_settings(m.get('settings'))} | {fmt(v)} | "
                 f"{fmt(m['recall_at_10'])} | {fmt(m['ndcg_at_10'])} | "
                 f"{fmt(m['hit_rate_at_10'])} | {fmt(m['precision_at_10'])} | "
                 f"{fmt(m.get('train_seconds'), 2)} |")
    L.append("")
    L.append(
        "Validation NDCG@10 = the chosen settings' score on validation; the other metrics are "
        "the test parts, read once. Fit s = wall time of the final fit on train + validation "
        f"only, the median of {FIT_REPEATS} fits ({result['threads']} threads): implicit `fit()` with BLAS at 1 thread; EASE the "
        f"inverse and B with BLAS at {result['threads']} threads (the Gram XᵀX, "
        f"{fmt(result['nbo']['ease_tuned'].get('gram_seconds'), 2)} s, not included). "
        "The implicit matrix value is the number of the user's fit rows for the item (always 1 "
        "here) × `alpha_scale`. "
        f"implicit: full grid of {len(tn['implicit_als']['trials'])} settings "
        f"({tn['implicit_als']['wall_seconds']:.0f} s); EASE: {len(tn['ease']['trials'])} "
        f"values of λ ({tn['ease']['wall_seconds']:.0f} s).\n")
    if prior_note(result):
        L.append(prior_note(result))
        L.append("On this split \"recent\" means the last 14 days of the whole file (every "
                 "evaluation's cutoff is the newest fit row, which is near the file's end), not "
                 "the 14 days before each user's own held-out rows: the users' parts interleave in "
                 "time, so for most users the window lies after their held-out rows. It counts "
                 "fit rows only; no held-out row enters it.\n")
    if doppel_note(result):
        L.append(doppel_note(result))
    if result.get("ratios"):
        t = (d or {}).get("tuning") or {}
        if not t:
            L.append("doppel: its JSON has no `tuning` object, so its settings were not chosen "
                     "on the validation split.\n")
        else:
            L.append(f"doppel: validation NDCG@10 {fmt((t.get('validation') or {}).get('ndcg_at_10'))}"
                     f", {len(t.get('trials') or [])} trials"
                     + (f" ({sum(x.get('seconds', 0) for x in t['trials']):.0f} s of fits)"
                        if t.get("trials") else "") + ".\n")
        L += render_ratios(result)
    L += render_tuning(tn)
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


def nbo_label(name: str) -> str:
    """Label of a model in the NBO tables."""
    return NBO_LABELS.get(name) or label(name)


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
    p.add_argument("--dataset", choices=("online-retail", "ml-100k"), default="online-retail",
                   help="data set and protocol (default: %(default)s)")
    p.add_argument("--data", help=f"input file (online-retail: {DEFAULT_DATA}; ml-100k: "
                                  f"{ML_DEFAULT_DATA}, from benches/eval/fetch_ml100k.sh)")
    p.add_argument("--out", help="Markdown report (default: benches/eval/results.md, ml-100k: "
                                 "benches/eval/results_ml100k.md; '' to skip)")
    p.add_argument("--json", help="JSON with all numbers (default: benches/eval/results.json, "
                                  "ml-100k: benches/eval/results_ml100k.json; '' to skip)")
    p.add_argument("--doppel-json", help="JSON written by `doppel evaluate --json PATH` to merge")
    p.add_argument("--threads", type=int, default=2,
                   help="implicit num_threads and EASE's BLAS threads (0 = all cores; "
                        "default %(default)s)")
    p.add_argument("--plot", help="PNG of lift per group, Online Retail only (default "
                                  "benches/eval/lift.png; '' to skip; needs matplotlib)")
    p.add_argument("--quick", action="store_true",
                   help="tiny grids (ALS 2 settings, EASE 3 λ), to check the script runs; "
                        "the numbers are not for reporting")
    args = p.parse_args(argv)
    ml = args.dataset == "ml-100k"
    if args.data is None:
        args.data = ML_DEFAULT_DATA if ml else DEFAULT_DATA
    if args.out is None:
        args.out = os.path.join(HERE, "results_ml100k.md" if ml else "results.md")
    if args.json is None:
        args.json = os.path.join(HERE, "results_ml100k.json" if ml else "results.json")
    if args.plot is None:
        args.plot = "" if ml else os.path.join(HERE, "lift.png")
    return args


def fmt_time(ts: pd.Timestamp, ms: bool = False) -> str:
    """ISO local time to the second (to the millisecond with `ms` when it is not 0)."""
    out = ts.strftime("%Y-%m-%dT%H:%M:%S")
    if ms and ts.microsecond:
        out += f".{ts.microsecond // 1000:03d}"
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    threads = args.threads if args.threads > 0 else (os.cpu_count() or 1)
    if args.dataset == "ml-100k":
        return main_ml100k(args, threads, t_start)
    if not os.path.exists(args.data):
        raise SystemExit(f"data file not found: {args.data} (see /work/shared/data/README.md)")

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

    tuning = tune_peers(val, threads, args.quick)

    scorers = {}
    fits = [("implicit_als_tuned", tuning["implicit_als"]["chosen"])]
    if tuning["implicit_als"]["chosen"] != ALS_CONTINUITY:
        fits.append(("implicit_als_alpha1", ALS_CONTINUITY))
    else:
        log("the grid chose the old fixed settings: no separate fixed row")
    for name, settings in fits:
        log("fitting", label(name), settings, "on the train rows")
        model, matrix, secs = fit_als(test.s, settings, threads, FIT_REPEATS)
        validation = next((x["validation"] for x in tuning["implicit_als"]["trials"]
                           if x["settings"] == settings), None)
        nbo[name] = dict(nbo_metrics(als_recs(model, matrix, test.users), test.rel),
                         train_seconds=secs, threads=threads, settings=settings,
                         validation=validation, **ALS_FIXED)
        scorers[name] = centroid_scores(model)

    nbo.update(final_ease_rows(test, tuning, threads))
    nbo = {k: nbo[k] for k in PEERS if k in nbo}
    fit_time_64 = implicit_fit_time_64(test.s, tuning, threads)

    log("lookalike")
    result = {
        "fit_time_64": fit_time_64,
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

    if args.quick:
        result["quick"] = True
    md = render(result)
    write_outputs(args, md, result)
    if args.plot:
        if plot_lift(result, args.plot):
            log("plot written to", args.plot)
        else:
            log(f"note: matplotlib is not installed: {args.plot} was not written")
    log(f"done in {time.perf_counter() - t_start:.1f} s")
    return 0


def write_outputs(args: argparse.Namespace, md: str, result: dict) -> None:
    """Markdown to stdout and `--out`, JSON to `--json` ('' skips a file)."""
    print(md)
    for path, text in ((args.out, md + "\n"), (args.json, json.dumps(result, indent=2) + "\n")):
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)


def main_ml100k(args: argparse.Namespace, threads: int, t_start: float) -> int:
    """MovieLens-100k, PROTOCOL.md §11: NBO of popularity, implicit ALS, EASE, EASE + prior."""
    if not os.path.exists(args.data):
        raise SystemExit(f"data file not found: {args.data} (run benches/eval/fetch_ml100k.sh)")
    log("loading", args.data)
    data_sha = sha256(args.data)
    if data_sha != ML_SHA256:
        log(f"warning: sha256 of {args.data} is {data_sha}, PROTOCOL.md §11 expects {ML_SHA256}")
    rows = load_ml100k(args.data)
    part = ml_parts(rows)
    train, valid, test_rows = (rows[part == k] for k in (0, 1, 2))
    val = make_task(ml_split(train, valid))
    test = make_task(ml_split(rows[part < 2], test_rows))
    counts = {"rows": int(len(rows)), "users": int(rows["customer"].nunique()),
              "items": int(rows["item"].nunique()),
              "validation": ml_counts(val.s, val.rel), "test": ml_counts(test.s, test.rel)}
    cutoffs = {k: int((t.s.cutoff - pd.Timestamp(0)) // pd.Timedelta(milliseconds=1))
               for k, t in (("validation", val), ("test", test))}
    log("counts", counts, "cutoff_ms", cutoffs)

    nbo = {"popularity": dict(nbo_metrics(popularity_recs(test.s, test.users), test.rel),
                              settings={},
                              validation=nbo_metrics(popularity_recs(val.s, val.users), val.rel))}
    tuning = tune_peers(val, threads, args.quick)
    settings = tuning["implicit_als"]["chosen"]
    log("fitting implicit ALS", settings, "on train + validation")
    model, matrix, secs = fit_als(test.s, settings, threads, FIT_REPEATS)
    nbo["implicit_als_tuned"] = dict(nbo_metrics(als_recs(model, matrix, test.users), test.rel),
                                     train_seconds=secs, threads=threads, settings=settings,
                                     validation=tuning["implicit_als"]["validation"], **ALS_FIXED)
    nbo.update(final_ease_rows(test, tuning, threads))
    nbo = {k: nbo[k] for k in PEERS if k in nbo}

    result = {"protocol": ML_PROTOCOL, "dataset": "ml-100k", "counts": counts,
              "cutoff_ms": cutoffs, "threads": threads, "nbo": nbo, "tuning": tuning,
              "fit_time_64": implicit_fit_time_64(test.s, tuning, threads)}
    if args.quick:
        result["quick"] = True
    if args.doppel_json:
        merge_doppel_ml100k(result, load_doppel_ml100k(args.doppel_json))
    result["meta"] = {"data_file": os.path.basename(args.data), "data_sha256": data_sha,
                      "cpus": os.cpu_count(), "versions": versions(),
                      "run_seconds": time.perf_counter() - t_start}
    write_outputs(args, render_ml100k(result), result)
    log(f"done in {time.perf_counter() - t_start:.1f} s")
    return 0


def flat_counts(c: dict, prefix: str = "") -> dict:
    """{"rows": 1, "test": {"items": 2}} -> {"rows": 1, "test.items": 2}."""
    out = {}
    for k, v in c.items():
        if isinstance(v, dict):
            out.update(flat_counts(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def load_doppel_ml100k(path: str) -> dict:
    """Read and check doppel's ml-100k JSON (schema in PROTOCOL.md §11.7)."""
    with open(path) as f:
        d = json.load(f)
    for key in ("counts", "nbo", "train_seconds"):
        if key not in d:
            raise SystemExit(f"{path}: missing key {key!r} (see benches/eval/PROTOCOL.md §11.7)")
    missing = [k for k in METRICS if k not in d["nbo"].get("doppel", {})]
    if missing:
        raise SystemExit(f"{path}: nbo.doppel lacks {', '.join(missing)}")
    t = d.get("tuning")
    if t is not None and not isinstance(t, dict):
        raise SystemExit(f"{path}: 'tuning' must be an object")
    return d


def merge_doppel_ml100k(result: dict, d: dict) -> None:
    """doppel's rows, ratios and the count check (every count key doppel gives, flattened)."""
    t = merge_doppel_nbo(result, d)
    ours, theirs = flat_counts(result["counts"]), flat_counts(d["counts"])
    result["counts_mismatch"] = [k for k, v in theirs.items() if k in ours and ours[k] != v]
    result["counts_missing_in_doppel"] = [k for k in ours if k not in theirs]
    for k, v in (d.get("cutoff_ms") or {}).items():
        if k in result["cutoff_ms"] and result["cutoff_ms"][k] != v:
            result["counts_mismatch"].append(f"cutoff_ms.{k}")
    if d.get("protocol", ML_PROTOCOL) != ML_PROTOCOL:
        log(f"warning: doppel JSON says protocol {d['protocol']!r}, expected {ML_PROTOCOL!r}")
    if result["counts_mismatch"]:
        log("warning: counts differ from doppel's:", ", ".join(result["counts_mismatch"]))
    if result["counts_missing_in_doppel"]:
        log("note: counts doppel's JSON lacks:", ", ".join(result["counts_missing_in_doppel"]))
    if not t:
        log("note: doppel JSON has no 'tuning' key: its settings were not chosen on validation")


if __name__ == "__main__":
    sys.exit(main())
