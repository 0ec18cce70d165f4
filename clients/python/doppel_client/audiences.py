"""Lookalike audiences as pandas DataFrames."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from ._proto import audiences_pb2
from .options import request_options

COLUMNS = ["customer_id", "score", "nearest_seed_ids"]
_SIZE_FIELDS = ("count", "top_percent", "min_score")


def lookalike_request(seeds: Sequence[str], count: Optional[int], top_percent: Optional[float],
                      min_score: Optional[float], options: Mapping[str, Any]) -> audiences_pb2.LookalikeRequest:
    """A `LookalikeRequest`: the seeds, exactly one size, and other fields by name."""
    if isinstance(seeds, str):
        raise TypeError("seeds: a sequence of customer ids, not one string")
    sizes = {k: v for k, v in zip(_SIZE_FIELDS, (count, top_percent, min_score)) if v is not None}
    if len(sizes) != 1:
        raise TypeError(f"lookalikes() takes exactly one of count, top_percent, min_score (got {len(sizes)})")
    fields = request_options(audiences_pb2.LookalikeRequest, options,
                             reserved=("seed_customer_ids", *_SIZE_FIELDS), caller="lookalikes")
    return audiences_pb2.LookalikeRequest(seed_customer_ids=list(seeds), **sizes, **fields)


def audience_frame(batches: Iterable[audiences_pb2.LookalikeBatch]) -> pd.DataFrame:
    """One row per prospect, best first; the stream's metadata in `DataFrame.attrs`:
    model_version, ignored_seed_ids, eligible_population, strategy_used, shards_answered,
    shards_total (the last batch's: final), mean_score, mean_score_unbalanced and audit
    (one dict per GroupAudit)."""
    ids, scores, nearest = [], [], []
    attrs: dict = {}
    for batch in batches:
        if batch.batch_index == 0:
            attrs.update(ignored_seed_ids=list(batch.ignored_seed_ids),
                         eligible_population=batch.eligible_population,
                         strategy_used=audiences_pb2.Strategy.Name(batch.strategy_used))
        attrs.update(model_version=batch.model_version, shards_answered=batch.shards_answered,
                     shards_total=batch.shards_total, mean_score=batch.mean_score,
                     mean_score_unbalanced=batch.mean_score_unbalanced,
                     audit=[_audit_dict(a) for a in batch.audit])
        for prospect in batch.prospects:
            ids.append(prospect.customer_id)
            scores.append(prospect.score)
            nearest.append(list(prospect.nearest_seed_ids))
    frame = pd.DataFrame({"customer_id": pd.Series(ids, dtype=object),
                          "score": np.asarray(scores, dtype=np.float32),
                          "nearest_seed_ids": pd.Series(nearest, dtype=object)}, columns=COLUMNS)
    frame.attrs.update(attrs)
    return frame


def _audit_dict(audit: audiences_pb2.GroupAudit) -> dict:
    return {f.name: getattr(audit, f.name) for f in audit.DESCRIPTOR.fields}
