from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Strategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUTO: _ClassVar[Strategy]
    CENTROID: _ClassVar[Strategy]
    MAX_SIMILARITY: _ClassVar[Strategy]
    CLASSIFIER: _ClassVar[Strategy]
AUTO: Strategy
CENTROID: Strategy
MAX_SIMILARITY: Strategy
CLASSIFIER: Strategy

class SaveAudienceRequest(_message.Message):
    __slots__ = ("name", "query")
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    name: str
    query: LookalikeRequest
    def __init__(self, name: _Optional[str] = ..., query: _Optional[_Union[LookalikeRequest, _Mapping]] = ...) -> None: ...

class AudienceInfo(_message.Message):
    __slots__ = ("audience_id", "name", "size", "model_version", "created_ms", "refreshed_ms", "query", "eligible_population")
    AUDIENCE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    REFRESHED_MS_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_POPULATION_FIELD_NUMBER: _ClassVar[int]
    audience_id: str
    name: str
    size: int
    model_version: str
    created_ms: int
    refreshed_ms: int
    query: LookalikeRequest
    eligible_population: int
    def __init__(self, audience_id: _Optional[str] = ..., name: _Optional[str] = ..., size: _Optional[int] = ..., model_version: _Optional[str] = ..., created_ms: _Optional[int] = ..., refreshed_ms: _Optional[int] = ..., query: _Optional[_Union[LookalikeRequest, _Mapping]] = ..., eligible_population: _Optional[int] = ...) -> None: ...

class GetAudienceRequest(_message.Message):
    __slots__ = ("audience_id",)
    AUDIENCE_ID_FIELD_NUMBER: _ClassVar[int]
    audience_id: str
    def __init__(self, audience_id: _Optional[str] = ...) -> None: ...

class ListAudiencesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListAudiencesResponse(_message.Message):
    __slots__ = ("audiences",)
    AUDIENCES_FIELD_NUMBER: _ClassVar[int]
    audiences: _containers.RepeatedCompositeFieldContainer[AudienceInfo]
    def __init__(self, audiences: _Optional[_Iterable[_Union[AudienceInfo, _Mapping]]] = ...) -> None: ...

class StreamAudienceMembersRequest(_message.Message):
    __slots__ = ("audience_id",)
    AUDIENCE_ID_FIELD_NUMBER: _ClassVar[int]
    audience_id: str
    def __init__(self, audience_id: _Optional[str] = ...) -> None: ...

class RefreshAudienceRequest(_message.Message):
    __slots__ = ("audience_id",)
    AUDIENCE_ID_FIELD_NUMBER: _ClassVar[int]
    audience_id: str
    def __init__(self, audience_id: _Optional[str] = ...) -> None: ...

class DeleteAudienceRequest(_message.Message):
    __slots__ = ("audience_id",)
    AUDIENCE_ID_FIELD_NUMBER: _ClassVar[int]
    audience_id: str
    def __init__(self, audience_id: _Optional[str] = ...) -> None: ...

class DeleteAudienceResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: bool = ...) -> None: ...

class LookalikeRequest(_message.Message):
    __slots__ = ("seed_customer_ids", "negative_customer_ids", "count", "top_percent", "min_score", "strategy", "exclude_existing_customers", "filter", "explain", "seed_segments", "exclude_segments", "audit_attributes", "balance_attribute", "min_selection_ratio")
    class FilterEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SEED_CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TOP_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_EXISTING_CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    SEED_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    BALANCE_ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    MIN_SELECTION_RATIO_FIELD_NUMBER: _ClassVar[int]
    seed_customer_ids: _containers.RepeatedScalarFieldContainer[str]
    negative_customer_ids: _containers.RepeatedScalarFieldContainer[str]
    count: int
    top_percent: float
    min_score: float
    strategy: Strategy
    exclude_existing_customers: bool
    filter: _containers.ScalarMap[str, str]
    explain: bool
    seed_segments: _containers.RepeatedCompositeFieldContainer[_common_pb2.Segment]
    exclude_segments: _containers.RepeatedCompositeFieldContainer[_common_pb2.Segment]
    audit_attributes: _containers.RepeatedScalarFieldContainer[str]
    balance_attribute: str
    min_selection_ratio: float
    def __init__(self, seed_customer_ids: _Optional[_Iterable[str]] = ..., negative_customer_ids: _Optional[_Iterable[str]] = ..., count: _Optional[int] = ..., top_percent: _Optional[float] = ..., min_score: _Optional[float] = ..., strategy: _Optional[_Union[Strategy, str]] = ..., exclude_existing_customers: bool = ..., filter: _Optional[_Mapping[str, str]] = ..., explain: bool = ..., seed_segments: _Optional[_Iterable[_Union[_common_pb2.Segment, _Mapping]]] = ..., exclude_segments: _Optional[_Iterable[_Union[_common_pb2.Segment, _Mapping]]] = ..., audit_attributes: _Optional[_Iterable[str]] = ..., balance_attribute: _Optional[str] = ..., min_selection_ratio: _Optional[float] = ...) -> None: ...

class GroupAudit(_message.Message):
    __slots__ = ("attribute", "value", "audience_count", "eligible_count", "selection_rate", "ratio_to_best", "below_four_fifths")
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SELECTION_RATE_FIELD_NUMBER: _ClassVar[int]
    RATIO_TO_BEST_FIELD_NUMBER: _ClassVar[int]
    BELOW_FOUR_FIFTHS_FIELD_NUMBER: _ClassVar[int]
    attribute: str
    value: str
    audience_count: int
    eligible_count: int
    selection_rate: float
    ratio_to_best: float
    below_four_fifths: bool
    def __init__(self, attribute: _Optional[str] = ..., value: _Optional[str] = ..., audience_count: _Optional[int] = ..., eligible_count: _Optional[int] = ..., selection_rate: _Optional[float] = ..., ratio_to_best: _Optional[float] = ..., below_four_fifths: bool = ...) -> None: ...

class ReachRequest(_message.Message):
    __slots__ = ("query", "top_percents", "min_scores")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_PERCENTS_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORES_FIELD_NUMBER: _ClassVar[int]
    query: LookalikeRequest
    top_percents: _containers.RepeatedScalarFieldContainer[float]
    min_scores: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, query: _Optional[_Union[LookalikeRequest, _Mapping]] = ..., top_percents: _Optional[_Iterable[float]] = ..., min_scores: _Optional[_Iterable[float]] = ...) -> None: ...

class ReachPoint(_message.Message):
    __slots__ = ("top_percent", "min_score", "size", "size_lower", "size_upper", "mean_score", "audit")
    TOP_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SIZE_LOWER_FIELD_NUMBER: _ClassVar[int]
    SIZE_UPPER_FIELD_NUMBER: _ClassVar[int]
    MEAN_SCORE_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    top_percent: float
    min_score: float
    size: int
    size_lower: int
    size_upper: int
    mean_score: float
    audit: _containers.RepeatedCompositeFieldContainer[GroupAudit]
    def __init__(self, top_percent: _Optional[float] = ..., min_score: _Optional[float] = ..., size: _Optional[int] = ..., size_lower: _Optional[int] = ..., size_upper: _Optional[int] = ..., mean_score: _Optional[float] = ..., audit: _Optional[_Iterable[_Union[GroupAudit, _Mapping]]] = ...) -> None: ...

class ReachCurve(_message.Message):
    __slots__ = ("points", "eligible_population", "model_version", "shards_answered", "shards_total")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_POPULATION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARDS_ANSWERED_FIELD_NUMBER: _ClassVar[int]
    SHARDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[ReachPoint]
    eligible_population: int
    model_version: str
    shards_answered: int
    shards_total: int
    def __init__(self, points: _Optional[_Iterable[_Union[ReachPoint, _Mapping]]] = ..., eligible_population: _Optional[int] = ..., model_version: _Optional[str] = ..., shards_answered: _Optional[int] = ..., shards_total: _Optional[int] = ...) -> None: ...

class Prospect(_message.Message):
    __slots__ = ("customer_id", "score", "nearest_seed_ids")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    NEAREST_SEED_IDS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    score: float
    nearest_seed_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer_id: _Optional[str] = ..., score: _Optional[float] = ..., nearest_seed_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class LookalikeBatch(_message.Message):
    __slots__ = ("prospects", "model_version", "ignored_seed_ids", "shards_answered", "shards_total", "eligible_population", "strategy_used", "batch_index", "audit", "mean_score", "mean_score_unbalanced")
    PROSPECTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    IGNORED_SEED_IDS_FIELD_NUMBER: _ClassVar[int]
    SHARDS_ANSWERED_FIELD_NUMBER: _ClassVar[int]
    SHARDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_POPULATION_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_USED_FIELD_NUMBER: _ClassVar[int]
    BATCH_INDEX_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    MEAN_SCORE_FIELD_NUMBER: _ClassVar[int]
    MEAN_SCORE_UNBALANCED_FIELD_NUMBER: _ClassVar[int]
    prospects: _containers.RepeatedCompositeFieldContainer[Prospect]
    model_version: str
    ignored_seed_ids: _containers.RepeatedScalarFieldContainer[str]
    shards_answered: int
    shards_total: int
    eligible_population: int
    strategy_used: Strategy
    batch_index: int
    audit: _containers.RepeatedCompositeFieldContainer[GroupAudit]
    mean_score: float
    mean_score_unbalanced: float
    def __init__(self, prospects: _Optional[_Iterable[_Union[Prospect, _Mapping]]] = ..., model_version: _Optional[str] = ..., ignored_seed_ids: _Optional[_Iterable[str]] = ..., shards_answered: _Optional[int] = ..., shards_total: _Optional[int] = ..., eligible_population: _Optional[int] = ..., strategy_used: _Optional[_Union[Strategy, str]] = ..., batch_index: _Optional[int] = ..., audit: _Optional[_Iterable[_Union[GroupAudit, _Mapping]]] = ..., mean_score: _Optional[float] = ..., mean_score_unbalanced: _Optional[float] = ...) -> None: ...
