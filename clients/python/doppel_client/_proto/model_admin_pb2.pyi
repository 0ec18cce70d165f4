from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PromoteCanaryRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CanaryGuard(_message.Message):
    __slots__ = ("max_error_rate", "max_p99_ms", "min_ctr_ratio", "min_requests", "min_impressions")
    MAX_ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_P99_MS_FIELD_NUMBER: _ClassVar[int]
    MIN_CTR_RATIO_FIELD_NUMBER: _ClassVar[int]
    MIN_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    MIN_IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    max_error_rate: float
    max_p99_ms: float
    min_ctr_ratio: float
    min_requests: int
    min_impressions: int
    def __init__(self, max_error_rate: _Optional[float] = ..., max_p99_ms: _Optional[float] = ..., min_ctr_ratio: _Optional[float] = ..., min_requests: _Optional[int] = ..., min_impressions: _Optional[int] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("seq", "time_ms", "key_id", "rpc", "target", "outcome")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    RPC_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    seq: int
    time_ms: int
    key_id: str
    rpc: str
    target: str
    outcome: str
    def __init__(self, seq: _Optional[int] = ..., time_ms: _Optional[int] = ..., key_id: _Optional[str] = ..., rpc: _Optional[str] = ..., target: _Optional[str] = ..., outcome: _Optional[str] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteVersionRequest(_message.Message):
    __slots__ = ("model_version",)
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    def __init__(self, model_version: _Optional[str] = ...) -> None: ...

class DeleteVersionResponse(_message.Message):
    __slots__ = ("model_version", "state")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    state: str
    def __init__(self, model_version: _Optional[str] = ..., state: _Optional[str] = ...) -> None: ...

class DescribeVersionRequest(_message.Message):
    __slots__ = ("model_version",)
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    def __init__(self, model_version: _Optional[str] = ...) -> None: ...

class DescribeVersionResponse(_message.Message):
    __slots__ = ("info", "loaded", "active", "index", "building", "build_done", "build_total", "canary", "rollback_reason", "audience_vectors")
    INFO_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    BUILDING_FIELD_NUMBER: _ClassVar[int]
    BUILD_DONE_FIELD_NUMBER: _ClassVar[int]
    BUILD_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_VECTORS_FIELD_NUMBER: _ClassVar[int]
    info: VersionInfo
    loaded: bool
    active: bool
    index: DescribeIndexResponse
    building: bool
    build_done: int
    build_total: int
    canary: bool
    rollback_reason: str
    audience_vectors: str
    def __init__(self, info: _Optional[_Union[VersionInfo, _Mapping]] = ..., loaded: bool = ..., active: bool = ..., index: _Optional[_Union[DescribeIndexResponse, _Mapping]] = ..., building: bool = ..., build_done: _Optional[int] = ..., build_total: _Optional[int] = ..., canary: bool = ..., rollback_reason: _Optional[str] = ..., audience_vectors: _Optional[str] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TrainRequest(_message.Message):
    __slots__ = ("model_version", "factors", "regularization", "alpha", "iterations", "half_life_days", "seed", "purchase_weight", "add_to_cart_weight", "view_weight", "return_weight", "impression_weight", "click_weight", "unobserved_weight", "regularization_exponent", "scan_vectors", "recent_popularity_weight", "recent_popularity_days", "recency_weight")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    FACTORS_FIELD_NUMBER: _ClassVar[int]
    REGULARIZATION_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    HALF_LIFE_DAYS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    ADD_TO_CART_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    VIEW_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    RETURN_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    IMPRESSION_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    CLICK_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    UNOBSERVED_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    REGULARIZATION_EXPONENT_FIELD_NUMBER: _ClassVar[int]
    SCAN_VECTORS_FIELD_NUMBER: _ClassVar[int]
    RECENT_POPULARITY_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    RECENT_POPULARITY_DAYS_FIELD_NUMBER: _ClassVar[int]
    RECENCY_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    factors: int
    regularization: float
    alpha: float
    iterations: int
    half_life_days: float
    seed: int
    purchase_weight: float
    add_to_cart_weight: float
    view_weight: float
    return_weight: float
    impression_weight: float
    click_weight: float
    unobserved_weight: float
    regularization_exponent: float
    scan_vectors: str
    recent_popularity_weight: float
    recent_popularity_days: float
    recency_weight: float
    def __init__(self, model_version: _Optional[str] = ..., factors: _Optional[int] = ..., regularization: _Optional[float] = ..., alpha: _Optional[float] = ..., iterations: _Optional[int] = ..., half_life_days: _Optional[float] = ..., seed: _Optional[int] = ..., purchase_weight: _Optional[float] = ..., add_to_cart_weight: _Optional[float] = ..., view_weight: _Optional[float] = ..., return_weight: _Optional[float] = ..., impression_weight: _Optional[float] = ..., click_weight: _Optional[float] = ..., unobserved_weight: _Optional[float] = ..., regularization_exponent: _Optional[float] = ..., scan_vectors: _Optional[str] = ..., recent_popularity_weight: _Optional[float] = ..., recent_popularity_days: _Optional[float] = ..., recency_weight: _Optional[float] = ...) -> None: ...

class TrainProgress(_message.Message):
    __slots__ = ("model_version", "stage", "iteration", "iterations", "loss", "elapsed_seconds", "events", "customers", "items", "done")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    ITERATION_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    stage: str
    iteration: int
    iterations: int
    loss: float
    elapsed_seconds: float
    events: int
    customers: int
    items: int
    done: bool
    def __init__(self, model_version: _Optional[str] = ..., stage: _Optional[str] = ..., iteration: _Optional[int] = ..., iterations: _Optional[int] = ..., loss: _Optional[float] = ..., elapsed_seconds: _Optional[float] = ..., events: _Optional[int] = ..., customers: _Optional[int] = ..., items: _Optional[int] = ..., done: bool = ...) -> None: ...

class EmbeddingChunk(_message.Message):
    __slots__ = ("model_version", "entity", "dim", "ids", "values", "scan_vectors")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    SCAN_VECTORS_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    entity: _common_pb2.Entity
    dim: int
    ids: _containers.RepeatedScalarFieldContainer[str]
    values: _containers.RepeatedScalarFieldContainer[float]
    scan_vectors: str
    def __init__(self, model_version: _Optional[str] = ..., entity: _Optional[_Union[_common_pb2.Entity, str]] = ..., dim: _Optional[int] = ..., ids: _Optional[_Iterable[str]] = ..., values: _Optional[_Iterable[float]] = ..., scan_vectors: _Optional[str] = ...) -> None: ...

class ImportSummary(_message.Message):
    __slots__ = ("model_version", "customers", "items", "erased_skipped", "build_seconds")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    ERASED_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    BUILD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    customers: int
    items: int
    erased_skipped: int
    build_seconds: float
    def __init__(self, model_version: _Optional[str] = ..., customers: _Optional[int] = ..., items: _Optional[int] = ..., erased_skipped: _Optional[int] = ..., build_seconds: _Optional[float] = ...) -> None: ...

class ListVersionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VersionInfo(_message.Message):
    __slots__ = ("model_version", "dim", "source", "state", "created_ms", "customer_count", "item_count", "params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_COUNT_FIELD_NUMBER: _ClassVar[int]
    ITEM_COUNT_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    dim: int
    source: str
    state: str
    created_ms: int
    customer_count: int
    item_count: int
    params: _containers.ScalarMap[str, str]
    def __init__(self, model_version: _Optional[str] = ..., dim: _Optional[int] = ..., source: _Optional[str] = ..., state: _Optional[str] = ..., created_ms: _Optional[int] = ..., customer_count: _Optional[int] = ..., item_count: _Optional[int] = ..., params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions", "active_version")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_VERSION_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[VersionInfo]
    active_version: str
    def __init__(self, versions: _Optional[_Iterable[_Union[VersionInfo, _Mapping]]] = ..., active_version: _Optional[str] = ...) -> None: ...

class ActivateVersionRequest(_message.Message):
    __slots__ = ("model_version", "canary_percent", "guard")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CANARY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    GUARD_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    canary_percent: int
    guard: CanaryGuard
    def __init__(self, model_version: _Optional[str] = ..., canary_percent: _Optional[int] = ..., guard: _Optional[_Union[CanaryGuard, _Mapping]] = ...) -> None: ...

class ActivateVersionResponse(_message.Message):
    __slots__ = ("model_version", "previous_version", "canary")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    previous_version: str
    canary: bool
    def __init__(self, model_version: _Optional[str] = ..., previous_version: _Optional[str] = ..., canary: bool = ...) -> None: ...

class DescribeIndexRequest(_message.Message):
    __slots__ = ("model_version",)
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    def __init__(self, model_version: _Optional[str] = ...) -> None: ...

class DescribeIndexResponse(_message.Message):
    __slots__ = ("model_version", "dim", "metric", "customer_count", "item_count", "shard_count", "memory_bytes", "m", "ef_construction", "ef_search", "deleted", "delta", "loaded_from_snapshot", "memory", "scan_vectors")
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_COUNT_FIELD_NUMBER: _ClassVar[int]
    ITEM_COUNT_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    M_FIELD_NUMBER: _ClassVar[int]
    EF_CONSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    EF_SEARCH_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    LOADED_FROM_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    SCAN_VECTORS_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    dim: int
    metric: str
    customer_count: int
    item_count: int
    shard_count: int
    memory_bytes: int
    m: int
    ef_construction: int
    ef_search: int
    deleted: int
    delta: int
    loaded_from_snapshot: bool
    memory: MemoryBreakdown
    scan_vectors: str
    def __init__(self, model_version: _Optional[str] = ..., dim: _Optional[int] = ..., metric: _Optional[str] = ..., customer_count: _Optional[int] = ..., item_count: _Optional[int] = ..., shard_count: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., m: _Optional[int] = ..., ef_construction: _Optional[int] = ..., ef_search: _Optional[int] = ..., deleted: _Optional[int] = ..., delta: _Optional[int] = ..., loaded_from_snapshot: bool = ..., memory: _Optional[_Union[MemoryBreakdown, _Mapping]] = ..., scan_vectors: _Optional[str] = ...) -> None: ...

class MemoryBreakdown(_message.Message):
    __slots__ = ("customer_vectors", "customer_graph", "customer_ids", "customer_bitsets", "customer_delta", "item_index", "members", "customer_profiles", "item_profiles", "id_tables", "bytes_per_customer", "customer_scan_codes")
    CUSTOMER_VECTORS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_GRAPH_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_BITSETS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_DELTA_FIELD_NUMBER: _ClassVar[int]
    ITEM_INDEX_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_PROFILES_FIELD_NUMBER: _ClassVar[int]
    ITEM_PROFILES_FIELD_NUMBER: _ClassVar[int]
    ID_TABLES_FIELD_NUMBER: _ClassVar[int]
    BYTES_PER_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_SCAN_CODES_FIELD_NUMBER: _ClassVar[int]
    customer_vectors: int
    customer_graph: int
    customer_ids: int
    customer_bitsets: int
    customer_delta: int
    item_index: int
    members: int
    customer_profiles: int
    item_profiles: int
    id_tables: int
    bytes_per_customer: float
    customer_scan_codes: int
    def __init__(self, customer_vectors: _Optional[int] = ..., customer_graph: _Optional[int] = ..., customer_ids: _Optional[int] = ..., customer_bitsets: _Optional[int] = ..., customer_delta: _Optional[int] = ..., item_index: _Optional[int] = ..., members: _Optional[int] = ..., customer_profiles: _Optional[int] = ..., item_profiles: _Optional[int] = ..., id_tables: _Optional[int] = ..., bytes_per_customer: _Optional[float] = ..., customer_scan_codes: _Optional[int] = ...) -> None: ...
