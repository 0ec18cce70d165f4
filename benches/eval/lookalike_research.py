#!/usr/bin/env python3
"""Which query-time lookalike scorer beats "cosine to the seed centroid"? (Online Retail, §5.1)

Research script for the keyword-group lookalike protocol of benches/eval/PROTOCOL.md (§2,
§2.1, §5, §5.1). Every scorer gets what a doppel server has at query time: the seed customer
ids, the customer vectors of the loaded version (here: implicit ALS user factors, the
stand-in for doppel's vectors), the item vectors, and a few cheap per-customer features
computed from the train rows before the cutoff (RFM). It never sees the product group.

Method: each scorer's knobs are chosen on the validation split (§2.1: fit on rows before
cutoff_val, groups recomputed by §5.1 on that split, seeds before cutoff_val, positives in
[cutoff_val, cutoff)) by mean precision over the 8 groups; then the test split is scored
once with the chosen knobs. Audience = top N = min(200, |candidates|) candidates by score,
ties by customer id ascending (rank_audience of compare_peers.py).

The row rules, split and group rules are copied from compare_peers.py (which another change
is editing) rather than imported, so that this script stays runnable on its own; its groups,
seeds, candidates, positives and the peer's precision must equal compare_peers.py's
(results.md, §5.1 section). Results and the recommended recipe: research.md, section
"Query-time lookalike scorers on the keyword groups".

Usage (Markdown to stdout, progress to stderr; about 8 minutes on 2 shared cores, most of it
in the sklearn and cloglog fits):
  python3 benches/eval/lookalike_research.py --data ../shared/data/online_retail.csv.gz \
      [--json /tmp/lookalike_research.json] [--only SUBSTRING] [--vectors NAME=f,reg,scale]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_DATA = os.path.join(os.path.dirname(REPO), "shared", "data", "online_retail.csv.gz")

TEST_DAYS = 30
VALIDATION_DAYS = 30
AUDIENCE = 200
KW_GROUPS = 8
KW_MIN_LEN = 3
KW_SHARE = (0.05, 0.30)
KW_OVERLAP_MAX = 0.5
KW_STOP = frozenset((
    "OF AND WITH IN THE FOR SET PACK ASSORTED DESIGN "
    "PINK BLUE RED WHITE BLACK GREEN SILVER IVORY CREAM GOLD PURPLE YELLOW COLOUR "
    "SMALL LARGE MINI JUMBO").split())
ALS_FIXED = dict(iterations=15, random_state=42)
# the tuned implicit peer of compare_peers.py (chosen there by NBO validation NDCG@10)
VECTORS = {
    "als_a1": dict(factors=128, regularization=20.0, alpha_scale=1.0),
    "als_a10": dict(factors=128, regularization=20.0, alpha_scale=10.0),
}
PEER = ("als_a1", "centroid")


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Rows, split, groups: copied from compare_peers.py (PROTOCOL.md §1, §2, §5.1)
# --------------------------------------------------------------------------------------------

def load_rows(path: str) -> pd.DataFrame:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, compression="infer")
    keep = (raw["CustomerID"] != "") & raw["StockCode"].str.match(r"^[0-9]{5}")
    df = raw.loc[keep]
    out = pd.DataFrame({
        "customer": df["CustomerID"].astype(np.int64).astype(str),
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


@dataclass
class Split:
    cutoff: pd.Timestamp
    train: pd.DataFrame
    train_p: pd.DataFrame
    test_p: pd.DataFrame
    customers: np.ndarray
    items: np.ndarray
    counts: sp.csr_matrix
    cust_index: dict = field(default_factory=dict)
    item_index: dict = field(default_factory=dict)


def split_rows(rows: pd.DataFrame, cutoff: pd.Timestamp) -> Split:
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


def tokens(desc: str) -> frozenset:
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
    out: dict[str, set] = {}
    for value, desc in df[[col, "desc"]].drop_duplicates().itertuples(index=False):
        toks = cache.get(desc)
        if toks is None:
            toks = cache[desc] = tokens(desc)
        for w in toks:
            out.setdefault(w, set()).add(value)
    return out


def keyword_groups(s: Split, cache: dict) -> tuple[list[str], dict]:
    items = _word_sets(s.train_p, "item", cache)
    buyers = _word_sets(s.train_p, "customer", cache)
    n_u = len(s.customers)
    kept, covered = [], set()
    for w in sorted(items, key=lambda w: (-len(items[w]), w)):
        share = len(buyers[w]) / n_u
        if not KW_SHARE[0] <= share <= KW_SHARE[1]:
            continue
        if len(items[w] & covered) / len(items[w]) < KW_OVERLAP_MAX:
            kept.append(w)
            covered |= items[w]
            if len(kept) == KW_GROUPS:
                break
    return kept, buyers


def monetary_milli(s: Split) -> np.ndarray:
    tp = s.train_p
    value = (tp["qty"] * tp["price_milli"]).groupby(tp["customer"]).sum()
    return value.reindex(s.customers).to_numpy(dtype=np.int64)


def rank_audience(scores: np.ndarray, cand: np.ndarray, n: int) -> np.ndarray:
    """Top-n candidate rows by score (desc), ties by customer id ascending (rows are id-ordered)."""
    order = np.lexsort((cand, -scores[cand]))
    return cand[order[:n]]


def fit_als(s: Split, settings: dict, threads: int):
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
    return model, seconds


# --------------------------------------------------------------------------------------------
# Per split: groups, labels, features, vectors
# --------------------------------------------------------------------------------------------

@dataclass
class Group:
    word: str
    seeds: np.ndarray        # customer rows, ascending
    cand: np.ndarray         # U minus seeds, ascending
    is_pos: np.ndarray       # bool over U: candidate with a test purchase row carrying the word
    n: int                   # audience size
    random_p: float
    top_p: float


@dataclass
class Data:
    name: str                # "validation" or "test"
    s: Split
    groups: list
    feats: dict              # name -> float array over U (raw, unstandardised)
    vectors: dict = field(default_factory=dict)   # name -> (user factors, item factors)


def build_groups(s: Split) -> list[Group]:
    cache: dict = {}
    words, buyers = keyword_groups(s, cache)
    test_buyers = _word_sets(s.test_p, "customer", cache)
    money = monetary_milli(s).astype(float)
    n_cust = len(s.customers)
    out = []
    for w in words:
        seeds = np.array(sorted(s.cust_index[c] for c in buyers[w]), dtype=np.int64)
        is_seed = np.zeros(n_cust, dtype=bool)
        is_seed[seeds] = True
        cand = np.flatnonzero(~is_seed)
        tb = test_buyers.get(w, set())
        is_pos = np.array([c in tb for c in s.customers]) & ~is_seed
        n = min(AUDIENCE, len(cand))
        random_p = is_pos.sum() / len(cand) if len(cand) else 0.0
        top_p = float(is_pos[rank_audience(money, cand, n)].mean()) if n else 0.0
        out.append(Group(w, seeds, cand, is_pos, n, float(random_p), top_p))
    return out


def customer_features(s: Split) -> dict[str, np.ndarray]:
    """Cheap per-customer features from the train rows (dated < the split's cutoff).

    RFM: log(1 + distinct invoice days), days since the last purchase, log(1 + monetary),
    log(1 + distinct items). The extras (tenure, activity in the last 30 / 90 days, returns)
    were tried in exploratory runs (no gain) and are kept here for further experiments.
    """
    tp = s.train_p
    cust = tp["customer"]
    day = tp["date"].dt.normalize()
    days_to_cut = (s.cutoff - tp["date"]).dt.total_seconds() / 86400.0
    g = tp.assign(day=day, age=days_to_cut).groupby("customer")
    idx = s.customers
    f = {}
    f["log_days"] = np.log1p(g["day"].nunique().reindex(idx).to_numpy(float))
    f["recency"] = g["age"].min().reindex(idx).to_numpy(float)
    f["log_recency"] = np.log1p(f["recency"])
    f["tenure"] = g["age"].max().reindex(idx).to_numpy(float)
    f["log_monetary"] = np.log1p(np.maximum(monetary_milli(s).astype(float) / 1000.0, 0.0))
    f["log_items"] = np.log1p(np.asarray((s.counts > 0).sum(axis=1)).ravel().astype(float))
    for w in (30, 90):
        recent = tp[days_to_cut < w]
        f[f"log_days_{w}"] = np.log1p(recent.assign(day=recent["date"].dt.normalize())
                                      .groupby("customer")["day"].nunique()
                                      .reindex(idx).fillna(0).to_numpy(float))
    rets = s.train[s.train["ret"]].groupby("customer").size().reindex(idx).fillna(0)
    f["log_returns"] = np.log1p(rets.to_numpy(float))
    return f


RFM = ("log_days", "recency", "log_monetary", "log_items")


def prepare(rows: pd.DataFrame, cutoff: pd.Timestamp, name: str, threads: int,
            vectors: dict) -> Data:
    s = split_rows(rows, cutoff)
    d = Data(name, s, build_groups(s), customer_features(s))
    for vname, settings in vectors.items():
        model, secs = fit_als(s, settings, threads)
        d.vectors[vname] = (np.asarray(model.user_factors, dtype=np.float64),
                            np.asarray(model.item_factors, dtype=np.float64))
        log(f"  {name}: fitted {vname} {settings} in {secs:.1f} s")
    return d


# --------------------------------------------------------------------------------------------
# Scorers. A scorer factory takes (data, knobs) and returns score(group) -> float array over U;
# only group.seeds (and, for the negative sample, U minus the seeds) is read from the group.
# --------------------------------------------------------------------------------------------

def unit_rows(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def zscore(x: np.ndarray) -> np.ndarray:
    """Standardise columns (or a vector) over all customers of U."""
    m, s = x.mean(axis=0), x.std(axis=0)
    return (x - m) / np.where(s > 0, s, 1.0)


class Inputs:
    """Per split and vector set: the design matrices a scorer may use, built once."""

    def __init__(self, d: Data, vname: str):
        self.d = d
        self.vname = vname
        self.raw, self.items = d.vectors[vname]
        self.unit = unit_rows(self.raw)
        self.rfm = zscore(np.column_stack([d.feats[f] for f in RFM]))
        self.log_items = d.feats["log_items"]
        self._cache: dict = {}

    def x(self, norm: bool, rfm: bool = False) -> np.ndarray:
        key = (norm, rfm)
        if key not in self._cache:
            v = self.unit if norm else self.raw
            self._cache[key] = np.hstack([v, self.rfm]) if rfm else v
        return self._cache[key]


def negatives(g: Group, ratio, salt: int) -> np.ndarray:
    """Label-0 rows: all of U minus the seeds, or a uniform sample of ratio × |seeds| of them
    (seeded by the group and the ratio, so every method sees the same sample)."""
    rest = g.cand
    if ratio == "all" or ratio * len(g.seeds) >= len(rest):
        return rest
    rng = np.random.default_rng([salt, len(g.seeds), ratio])
    return np.sort(rng.choice(rest, ratio * len(g.seeds), replace=False))


def s_centroid(inp: Inputs, k: dict):
    """Cosine to the mean of the seeds' unit vectors (the §5 peer); dot=True scores raw · c."""
    def score(g):
        c = inp.unit[g.seeds].mean(axis=0)
        c /= np.linalg.norm(c)
        return (inp.raw if k.get("dot") else inp.unit) @ c
    return score


def s_topk(inp: Inputs, k: dict):
    """Mean of the k largest similarities to the seeds (k = 1: max-similarity).

    sim = cosine, or the raw dot product when dot=True."""
    x = inp.raw if k.get("dot") else inp.unit

    def score(g):
        out = np.empty(len(x))
        for lo in range(0, len(x), 2048):          # blocks of customers x all seeds
            s = x[lo:lo + 2048] @ x[g.seeds].T
            kk = k["k"]
            out[lo:lo + 2048] = (s.max(axis=1) if kk == 1 else
                                 -np.partition(-s, kk - 1, axis=1)[:, :kk].mean(axis=1))
        return out
    return score


def _ridge_lda(xs: np.ndarray, xr: np.ndarray, lam: float, cov: str) -> np.ndarray:
    """w = (Σ + λ·tr(Σ)/d·I)⁻¹ (μ_seed − μ_rest).

    cov="pooled": Σ = pooled within-class covariance of the two samples;
    cov="total": Σ = covariance of the union (what a server precomputes over all of U)."""
    ms, mr = xs.mean(axis=0), xr.mean(axis=0)
    if cov == "pooled":
        cs = (xs - ms).T @ (xs - ms)
        cr = (xr - mr).T @ (xr - mr)
        sigma = (cs + cr) / (len(xs) + len(xr) - 2)
    else:
        sigma = np.cov(np.vstack([xs, xr]), rowvar=False)
    dd = sigma.shape[0]
    return np.linalg.solve(sigma + lam * np.trace(sigma) / dd * np.eye(dd), ms - mr)


def s_lda(inp: Inputs, k: dict):
    """Ridge-regularised LDA, closed form (optionally on [vectors, standardised RFM])."""
    x = inp.x(k["norm"], k.get("rfm", False))

    def score(g):
        w = _ridge_lda(x[g.seeds], x[negatives(g, k["sample"], 1)], k["lam"],
                       k.get("cov", "pooled"))
        return x @ w
    return score


def s_logreg(inp: Inputs, k: dict):
    """L2 logistic regression (sklearn lbfgs), seeds = 1, sampled non-seeds = 0."""
    from sklearn.linear_model import LogisticRegression
    x = inp.x(k["norm"], k.get("rfm", False))

    def score(g):
        neg = negatives(g, k["sample"], 1)
        xx = np.vstack([x[g.seeds], x[neg]])
        y = np.r_[np.ones(len(g.seeds)), np.zeros(len(neg))]
        m = LogisticRegression(C=k["C"], max_iter=3000).fit(xx, y)
        return x @ m.coef_[0]
    return score


def s_lda_plus_activity(inp: Inputs, k: dict):
    """z(ridge-LDA score on raw vectors, all non-seeds) + β · z(log(1 + distinct items))."""
    x = inp.raw
    act = zscore(inp.log_items)

    def score(g):
        w = _ridge_lda(x[g.seeds], x[g.cand], k["lam"], "pooled")
        return zscore(x @ w) + k["beta"] * act
    return score


def _fit_cloglog(x: np.ndarray, y: np.ndarray, offset: np.ndarray, l2: float):
    """max-likelihood of P(y = 1) = 1 − exp(−exp(offset + b + x·w)), penalty l2/2·|w|²·n."""
    from scipy.optimize import minimize
    n, dd = x.shape

    def fg(p):
        b, w = p[0], p[1:]
        mu = np.exp(np.clip(offset + b + x @ w, -30.0, 20.0))
        p1 = -np.expm1(-mu) + 1e-300
        ll = np.where(y > 0, np.log(p1), -mu)
        geta = np.where(y > 0, mu * np.exp(-mu) / p1, -mu)
        return (-ll.sum() + 0.5 * l2 * n * (w @ w),
                np.r_[-geta.sum(), -(x.T @ geta) + l2 * n * w])

    p0 = np.zeros(dd + 1)
    p0[0] = np.log(max(y.mean(), 1e-3)) - offset.mean()
    r = minimize(fg, p0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return r.x[0], r.x[1:]


def s_exposure(inp: Inputs, k: dict):
    """Exposure-aware logistic model (complementary log-log with an offset).

    A customer who bought n distinct items has had n chances to pick an item of the group;
    with a per-item rate λ = exp(b + x·w), P(seed) = 1 − exp(−n·λ). Fitted on seeds vs all
    non-seeds; the audience score is the log of the expected rate over the next window,
    x·w + β·log n (β = 1: future exposure ∝ past breadth)."""
    x = inp.x(k["norm"])
    off = np.log(np.maximum(np.expm1(inp.log_items), 1.0))

    def score(g):
        neg = negatives(g, k.get("sample", "all"), 1)
        idx = np.r_[g.seeds, neg]
        y = np.r_[np.ones(len(g.seeds)), np.zeros(len(neg))]
        _b, w = _fit_cloglog(x[idx], y, off[idx], k["l2"])
        return x @ w + k["beta"] * off
    return score


def s_item_query(inp: Inputs, k: dict):
    """Infer the group's items from the vectors: the M items whose predicted preference u·y is
    most raised among the seeds (mean over seeds − mean over non-seeds); score a customer by
    the sum of its predicted preferences for them (clipped at 0 when pos=True)."""
    def score(g):
        pref = inp.raw @ inp.items.T
        raise_ = pref[g.seeds].mean(axis=0) - pref[g.cand].mean(axis=0)
        top = np.argsort(-raise_, kind="stable")[:k["M"]]
        q = pref[:, top]
        return (np.clip(q, 0, None) if k.get("pos") else q).sum(axis=1)
    return score


def s_knn_vote(inp: Inputs, k: dict):
    """Similarity-weighted share of seeds among a customer's k nearest customers (cosine)."""
    x = inp.unit
    nn_cache = inp._cache.setdefault(("knn", k["k"]), {})

    def neighbours():
        if not nn_cache:
            idx = np.empty((len(x), k["k"]), dtype=np.int64)
            sim = np.empty((len(x), k["k"]))
            for lo in range(0, len(x), 2048):
                s = x[lo:lo + 2048] @ x.T
                s[np.arange(len(s)), np.arange(lo, lo + len(s))] = -np.inf
                part = np.argpartition(-s, k["k"], axis=1)[:, :k["k"]]
                idx[lo:lo + len(s)] = part
                sim[lo:lo + len(s)] = np.take_along_axis(s, part, axis=1)
            nn_cache["idx"], nn_cache["sim"] = idx, np.maximum(sim, 0.0)
        return nn_cache["idx"], nn_cache["sim"]

    def score(g):
        idx, sim = neighbours()
        is_seed = np.zeros(len(x), dtype=bool)
        is_seed[g.seeds] = True
        return (is_seed[idx] * sim).sum(axis=1) / np.maximum(sim.sum(axis=1), 1e-12)
    return score


def s_feature(inp: Inputs, k: dict):
    """A group-blind baseline: rank by one customer quantity."""
    v = np.linalg.norm(inp.raw, axis=1) if k["f"] == "norm" else inp.d.feats[k["f"]]
    return lambda g: v


def grid(**axes) -> list[dict]:
    import itertools
    keys = list(axes)
    return [dict(zip(keys, c)) for c in itertools.product(*axes.values())]


SAMPLES = (1, 4, 10, "all")
LDA_LAMS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
LR_CS = (0.01, 0.1, 1.0)


def methods() -> list[dict]:
    """(row name, family, factory, knob grid); every row runs on each vector set."""
    m = [
        ("centroid cosine (peer)", "1 centroid", s_centroid, [{}]),
        ("max-similarity (cosine)", "2 similarity", s_topk, [{"k": 1}]),
        ("mean of top-k cosines", "2 similarity", s_topk, grid(k=(10, 50))),
        ("mean of top-k dot products", "2 similarity", s_topk, grid(k=(10, 50), dot=(True,))),
    ]
    for norm in (False, True):
        vec = "unit" if norm else "raw"
        for sample in SAMPLES:
            tag = f"{sample}× seeds" if sample != "all" else "all non-seeds"
            m.append((f"ridge-LDA, {vec} vectors, negatives {tag}", "3 classifier", s_lda,
                      grid(norm=(norm,), sample=(sample,), lam=LDA_LAMS)))
            m.append((f"logistic L2, {vec} vectors, negatives {tag}", "3 classifier", s_logreg,
                      grid(norm=(norm,), sample=(sample,), C=LR_CS)))
        m.append((f"ridge-LDA, {vec} vectors, total covariance (server form)", "3 classifier",
                  s_lda, grid(norm=(norm,), sample=("all",), lam=LDA_LAMS, cov=("total",))))
    for norm in (False, True):
        vec = "unit" if norm else "raw"
        m.append((f"ridge-LDA + RFM, {vec} vectors", "4 classifier + RFM", s_lda,
                  grid(norm=(norm,), rfm=(True,), sample=("all",), lam=LDA_LAMS)))
        m.append((f"logistic L2 + RFM, {vec} vectors", "4 classifier + RFM", s_logreg,
                  grid(norm=(norm,), rfm=(True,), sample=("all",), C=LR_CS)))
    m += [
        ("raw dot to the seed centroid", "5 other", s_centroid, [{"dot": True}]),
        ("raw dot to μ_seed − μ_non-seed (ridge-LDA at λ → ∞)", "5 other", s_lda,
         [{"norm": False, "sample": "all", "lam": 1e9, "cov": "total"}]),
        ("ridge-LDA raw + β·z(log distinct items)", "5 other", s_lda_plus_activity,
         grid(lam=(1.0, 10.0, 100.0), beta=(0.25, 0.5, 1.0, 2.0))),
        ("exposure-aware logistic (cloglog, offset log n), unit", "5 other", s_exposure,
         grid(norm=(True,), l2=(1e-3, 1e-2), beta=(0.5, 1.0, 1.5))),
        ("exposure-aware logistic (cloglog, offset log n), raw", "5 other", s_exposure,
         grid(norm=(False,), l2=(1e-3, 1e-2), beta=(0.5, 1.0, 1.5))),
        ("items the seeds over-prefer, summed preference", "5 other", s_item_query,
         grid(M=(30, 100), pos=(False, True))),
        ("k-NN seed vote (cosine)", "5 other", s_knn_vote, grid(k=(20, 100))),
        ("vector norm ‖u‖ (group-blind)", "5 other", s_feature, [{"f": "norm"}]),
    ]
    return [dict(name=a, family=b, factory=c, grid=d) for a, b, c, d in m]


GROUP_BLIND = [  # no vectors: one row, not one per vector set
    ("log(1 + distinct items) (group-blind)", "5 other", s_feature, [{"f": "log_items"}]),
    ("log(1 + invoice days) (group-blind)", "5 other", s_feature, [{"f": "log_days"}]),
]


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------

def precisions(d: Data, score, ap: list | None = None) -> np.ndarray:
    """Precision of the N-audience per group; appends each group's average precision over
    the whole candidate ranking to `ap` when given (a less noisy secondary view)."""
    out = []
    for g in d.groups:
        sc = score(g)
        aud = rank_audience(sc, g.cand, g.n)
        out.append(float(g.is_pos[aud].mean()) if g.n else 0.0)
        if ap is not None:
            order = g.cand[np.lexsort((g.cand, -sc[g.cand]))]
            hits = g.is_pos[order]
            ranks = np.flatnonzero(hits) + 1
            ap.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)) if len(ranks) else 0.0)
    return np.array(out)


def summary(d: Data, ps: np.ndarray, peer: np.ndarray, ap: list) -> dict:
    rnd = np.array([g.random_p for g in d.groups])
    ok = peer > 0
    return {"precision": ps.tolist(), "mean_p": float(ps.mean()), "mean_ap": float(np.mean(ap)),
            "mean_lift": float(np.mean(ps[rnd > 0] / rnd[rnd > 0])),
            "p_over_peer": float(ps.mean() / peer.mean()),          # ratio of the mean P
            "mean_x_peer": float(np.mean(ps[ok] / peer[ok]))}        # mean of per-group ratios


def run_method(m: dict, inputs: dict, peer: dict, vname: str) -> dict:
    """Every knob setting on validation; the best mean P (first on ties) is scored on test."""
    val_in, test_in = inputs["validation"][vname], inputs["test"][vname]
    trials = []
    t0 = time.perf_counter()
    for knobs in m["grid"]:
        ap: list = []
        ps = precisions(val_in.d, m["factory"](val_in, knobs), ap)
        trials.append((knobs, ps, ap))
    val_secs = time.perf_counter() - t0
    best = max(range(len(trials)), key=lambda i: (trials[i][1].mean(), -i))
    knobs, vps, vap = trials[best]
    t0 = time.perf_counter()
    tap: list = []
    tps = precisions(test_in.d, m["factory"](test_in, knobs), tap)
    per_group = (time.perf_counter() - t0) / len(test_in.d.groups)
    return {"method": m["name"], "family": m["family"], "vectors": vname, "knobs": knobs,
            "validation": summary(val_in.d, vps, peer["validation"], vap),
            "test": summary(test_in.d, tps, peer["test"], tap),
            "trials": [{"knobs": k, "mean_p": float(p.mean()), "mean_ap": float(np.mean(a))}
                       for k, p, a in trials],
            "seconds_per_query": per_group, "validation_seconds": val_secs}


def fmt_knobs(k: dict) -> str:
    skip = {"norm", "sample", "rfm", "cov", "f", "dot"}
    return ", ".join(f"{a} {b:g}" if isinstance(b, float) else f"{a} {b}"
                     for a, b in k.items() if a not in skip and b != 1e9) or "–"


def render(res: dict) -> str:
    L = []
    v, t = res["splits"]["validation"], res["splits"]["test"]
    L.append(f"Validation: cutoff_val {v['cutoff']}, |U| {v['customers']}, groups "
             f"{', '.join(v['groups'])}; mean random P {v['random_p']:.4f}.")
    L.append(f"Test: cutoff {t['cutoff']}, |U| {t['customers']}, groups "
             f"{', '.join(t['groups'])}; mean random P {t['random_p']:.4f}.\n")
    L.append("| # | method | vectors | chosen on validation | val P | val ×rnd | val ×peer | "
             "val AP | test P | test ×rnd | test ×peer | test mean ×peer | test AP | ms/query |")
    L.append("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in res["rows"]:
        a, b = r["validation"], r["test"]
        L.append(f"| {r['family'].split()[0]} | {r['method']} | {r['vectors']} | "
                 f"{fmt_knobs(r['knobs'])} | {a['mean_p']:.4f} | {a['mean_lift']:.2f} | "
                 f"{a['p_over_peer']:.2f} | {a['mean_ap']:.4f} | {b['mean_p']:.4f} | "
                 f"{b['mean_lift']:.2f} | {b['p_over_peer']:.2f} | {b['mean_x_peer']:.2f} | "
                 f"{b['mean_ap']:.4f} | "
                 f"{1000 * r['seconds_per_query']:.0f} |")
    L.append("")
    for key in ("best_on_validation", "recommended"):
        r = res.get(key)
        if not r:
            continue
        L.append(f"Per group, {key.replace('_', ' ')}: {r['method']} ({r['vectors']}, "
                 f"{fmt_knobs(r['knobs'])}):\n")
        for split in ("validation", "test"):
            s = res["splits"][split]
            L.append(f"{split}:\n")
            L.append("| group | seeds | candidates | positives | random P | top-spenders P | "
                     "peer P | P | ×random | ×peer |")
            L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for i, g in enumerate(s["group_rows"]):
                p = r[split]["precision"][i]
                pp = res["peer"][split][i]
                L.append(f"| {g['group']} | {g['seeds']} | {g['candidates']} | {g['positives']} | "
                         f"{g['random_p']:.4f} | {g['top_p']:.3f} | {pp:.3f} | {p:.3f} | "
                         f"{p / g['random_p']:.2f} | "
                         f"{(p / pp if pp > 0 else float('nan')):.2f} |")
            L.append("")
    return "\n".join(L)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--json", help="write every number (and every trial) here")
    p.add_argument("--threads", type=int, default=2, help="implicit num_threads")
    p.add_argument("--vectors", action="append", default=[],
                   help="extra vector set NAME=factors,regularization,alpha_scale (repeatable)")
    p.add_argument("--only", default="", help="run only methods whose name contains this")
    p.add_argument("--recommend", default="ridge-LDA, raw vectors, total covariance (server form)",
                   help="method name whose per-group table is printed as the recommendation")
    p.add_argument("--recommend-vectors", default="als_a10")
    return p.parse_args(argv)


def same_as_all(m: dict, data: dict) -> bool:
    """A sampled-negatives row whose ratio × |seeds| covers every group's candidates on both
    splits is the "all non-seeds" row again: skipped (and said so in the log)."""
    ratios = {k.get("sample") for k in m["grid"]} - {None, "all"}
    if len(ratios) != 1:
        return False
    r = ratios.pop()
    same = all(r * len(g.seeds) >= len(g.cand) for d in data.values() for g in d.groups)
    if same:
        log(f"  skipped {m['name']}: {r}× seeds ≥ |candidates| in every group (= all)")
    return same


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    vectors = dict(VECTORS)
    for spec in args.vectors:
        name, vals = spec.split("=")
        f, r, a = vals.split(",")
        vectors[name] = dict(factors=int(f), regularization=float(r), alpha_scale=float(a))
    log("loading", args.data)
    rows = load_rows(args.data)
    cutoff = rows["date"].max() - pd.Timedelta(days=TEST_DAYS)
    cutoff_val = cutoff - pd.Timedelta(days=VALIDATION_DAYS)
    data = {"validation": prepare(rows[rows["date"] < cutoff], cutoff_val, "validation",
                                  args.threads, vectors),
            "test": prepare(rows, cutoff, "test", args.threads, vectors)}
    inputs = {k: {v: Inputs(d, v) for v in vectors} for k, d in data.items()}
    peer = {k: precisions(d, s_centroid(inputs[k][PEER[0]], {})) for k, d in data.items()}

    todo = [(m, v) for m in methods() for v in vectors]
    todo += [(dict(name=a, family=b, factory=c, grid=d), "–") for a, b, c, d in GROUP_BLIND]
    todo = [(m, v) for m, v in todo if args.only in m["name"] or m["name"].startswith("centroid")]
    todo = [(m, v) for m, v in todo if not same_as_all(m, data)]
    rows_out = []
    for m, vname in todo:
        key = vname if vname != "–" else PEER[0]
        r = run_method(m, inputs, peer, key)
        r["vectors"] = vname
        rows_out.append(r)
        log(f"  {m['name']} [{vname}] {fmt_knobs(r['knobs'])}: val P "
            f"{r['validation']['mean_p']:.4f}, test P {r['test']['mean_p']:.4f} "
            f"({r['validation_seconds']:.1f} s)")

    best = max(rows_out, key=lambda r: r["validation"]["mean_p"])
    rec = next((r for r in rows_out if r["method"] == args.recommend
                and r["vectors"] == args.recommend_vectors), None)
    res = {"splits": {k: {"cutoff": d.s.cutoff.strftime("%Y-%m-%dT%H:%M:%S"),
                          "customers": int(len(d.s.customers)),
                          "groups": [g.word for g in d.groups],
                          "random_p": float(np.mean([g.random_p for g in d.groups])),
                          "group_rows": [{"group": g.word, "seeds": int(len(g.seeds)),
                                          "candidates": int(len(g.cand)),
                                          "positives": int(g.is_pos.sum()),
                                          "random_p": g.random_p, "top_p": g.top_p}
                                         for g in d.groups]}
                      for k, d in data.items()},
           "vectors": vectors, "peer": {k: v.tolist() for k, v in peer.items()},
           "rows": rows_out, "best_on_validation": best, "recommended": rec,
           "run_seconds": time.perf_counter() - t_start}
    print(render(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
    log(f"done in {res['run_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
