"""Next-best offers: request building and the answer as dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Union

from ._proto import common_pb2, recommendations_pb2
from .options import request_options

ContextLike = Union[None, common_pb2.Context, Mapping[str, str]]


@dataclass(frozen=True)
class Offer:
    """One offered item; `reason` is set only with `explain=True`."""

    item_id: str
    score: float
    reason: str = ""


@dataclass(frozen=True)
class Recommendation:
    """The answer of `Recommendations.RecommendOffers`.

    `experiment` and `arm` name the running experiment (or "canary") and the arm that
    answered, empty when the customer is in none; `model_version` is then the active
    version, otherwise the arm's. `personalized` is False for the non-personalised fallback.
    """

    offers: List[Offer]
    model_version: str
    personalized: bool
    experiment: str
    arm: str
    capped: int

    @property
    def item_ids(self) -> List[str]:
        return [offer.item_id for offer in self.offers]

    @classmethod
    def from_proto(cls, response: recommendations_pb2.RecommendResponse) -> "Recommendation":
        return cls([Offer(o.item_id, o.score, o.reason) for o in response.offers], response.model_version,
                   response.personalized, response.experiment, response.arm, response.capped)


def context_message(context: ContextLike) -> Optional[common_pb2.Context]:
    """A `Context` from a dict with channel/device/country (or the message itself)."""
    if context is None or isinstance(context, common_pb2.Context):
        return context
    return common_pb2.Context(**request_options(common_pb2.Context, context, caller="context"))


def recommend_request(customer_id: str, k: int, context: ContextLike,
                      options: Mapping[str, Any]) -> recommendations_pb2.RecommendRequest:
    """A `RecommendRequest`; options (filter, include_purchased, explain, record_impressions,
    timestamp_ms) by field name."""
    fields = request_options(recommendations_pb2.RecommendRequest, options,
                             reserved=("customer_id", "k", "context"), caller="recommend")
    return recommendations_pb2.RecommendRequest(customer_id=customer_id, k=k, context=context_message(context),
                                                **fields)
