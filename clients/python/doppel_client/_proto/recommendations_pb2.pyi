from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OfferFilter(_message.Message):
    __slots__ = ("categories", "max_price")
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    MAX_PRICE_FIELD_NUMBER: _ClassVar[int]
    categories: _containers.RepeatedScalarFieldContainer[str]
    max_price: float
    def __init__(self, categories: _Optional[_Iterable[str]] = ..., max_price: _Optional[float] = ...) -> None: ...

class RecommendRequest(_message.Message):
    __slots__ = ("customer_id", "k", "context", "filter", "include_purchased", "explain", "record_impressions", "timestamp_ms")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_PURCHASED_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    RECORD_IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    k: int
    context: _common_pb2.Context
    filter: OfferFilter
    include_purchased: bool
    explain: bool
    record_impressions: bool
    timestamp_ms: int
    def __init__(self, customer_id: _Optional[str] = ..., k: _Optional[int] = ..., context: _Optional[_Union[_common_pb2.Context, _Mapping]] = ..., filter: _Optional[_Union[OfferFilter, _Mapping]] = ..., include_purchased: bool = ..., explain: bool = ..., record_impressions: bool = ..., timestamp_ms: _Optional[int] = ...) -> None: ...

class Offer(_message.Message):
    __slots__ = ("item_id", "score", "reason")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    score: float
    reason: str
    def __init__(self, item_id: _Optional[str] = ..., score: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class RecommendResponse(_message.Message):
    __slots__ = ("offers", "model_version", "personalized", "capped", "experiment", "arm")
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    PERSONALIZED_FIELD_NUMBER: _ClassVar[int]
    CAPPED_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    offers: _containers.RepeatedCompositeFieldContainer[Offer]
    model_version: str
    personalized: bool
    capped: int
    experiment: str
    arm: str
    def __init__(self, offers: _Optional[_Iterable[_Union[Offer, _Mapping]]] = ..., model_version: _Optional[str] = ..., personalized: bool = ..., capped: _Optional[int] = ..., experiment: _Optional[str] = ..., arm: _Optional[str] = ...) -> None: ...

class SimilarItemsRequest(_message.Message):
    __slots__ = ("item_id", "k")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    k: int
    def __init__(self, item_id: _Optional[str] = ..., k: _Optional[int] = ...) -> None: ...

class SimilarItemsResponse(_message.Message):
    __slots__ = ("items", "model_version")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Offer]
    model_version: str
    def __init__(self, items: _Optional[_Iterable[_Union[Offer, _Mapping]]] = ..., model_version: _Optional[str] = ...) -> None: ...
