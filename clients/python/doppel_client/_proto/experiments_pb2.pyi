from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Arm(_message.Message):
    __slots__ = ("name", "model_version", "weight")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    name: str
    model_version: str
    weight: int
    def __init__(self, name: _Optional[str] = ..., model_version: _Optional[str] = ..., weight: _Optional[int] = ...) -> None: ...

class CreateExperimentRequest(_message.Message):
    __slots__ = ("name", "arms", "salt", "traffic_percent")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_PERCENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    arms: _containers.RepeatedCompositeFieldContainer[Arm]
    salt: str
    traffic_percent: int
    def __init__(self, name: _Optional[str] = ..., arms: _Optional[_Iterable[_Union[Arm, _Mapping]]] = ..., salt: _Optional[str] = ..., traffic_percent: _Optional[int] = ...) -> None: ...

class UpdateWeightsRequest(_message.Message):
    __slots__ = ("name", "arms", "traffic_percent")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_PERCENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    arms: _containers.RepeatedCompositeFieldContainer[Arm]
    traffic_percent: int
    def __init__(self, name: _Optional[str] = ..., arms: _Optional[_Iterable[_Union[Arm, _Mapping]]] = ..., traffic_percent: _Optional[int] = ...) -> None: ...

class StopExperimentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListExperimentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListExperimentsResponse(_message.Message):
    __slots__ = ("experiments",)
    EXPERIMENTS_FIELD_NUMBER: _ClassVar[int]
    experiments: _containers.RepeatedCompositeFieldContainer[ExperimentInfo]
    def __init__(self, experiments: _Optional[_Iterable[_Union[ExperimentInfo, _Mapping]]] = ...) -> None: ...

class ExperimentInfo(_message.Message):
    __slots__ = ("name", "arms", "salt", "state", "created_ms", "stopped_ms", "traffic_percent", "arm_buckets", "kind", "stop_reason", "updates", "loaded_memory_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    STOPPED_MS_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_PERCENT_FIELD_NUMBER: _ClassVar[int]
    ARM_BUCKETS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    LOADED_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    arms: _containers.RepeatedCompositeFieldContainer[Arm]
    salt: str
    state: str
    created_ms: int
    stopped_ms: int
    traffic_percent: int
    arm_buckets: _containers.RepeatedScalarFieldContainer[int]
    kind: str
    stop_reason: str
    updates: int
    loaded_memory_bytes: int
    def __init__(self, name: _Optional[str] = ..., arms: _Optional[_Iterable[_Union[Arm, _Mapping]]] = ..., salt: _Optional[str] = ..., state: _Optional[str] = ..., created_ms: _Optional[int] = ..., stopped_ms: _Optional[int] = ..., traffic_percent: _Optional[int] = ..., arm_buckets: _Optional[_Iterable[int]] = ..., kind: _Optional[str] = ..., stop_reason: _Optional[str] = ..., updates: _Optional[int] = ..., loaded_memory_bytes: _Optional[int] = ...) -> None: ...

class GetExperimentReportRequest(_message.Message):
    __slots__ = ("name", "attribution_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    attribution_seconds: int
    def __init__(self, name: _Optional[str] = ..., attribution_seconds: _Optional[int] = ...) -> None: ...

class Rate(_message.Message):
    __slots__ = ("value", "lower", "upper")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    value: float
    lower: float
    upper: float
    def __init__(self, value: _Optional[float] = ..., lower: _Optional[float] = ..., upper: _Optional[float] = ...) -> None: ...

class Comparison(_message.Message):
    __slots__ = ("ctr_difference", "ctr_p_value", "conversion_difference", "conversion_p_value")
    CTR_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    CTR_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    ctr_difference: float
    ctr_p_value: float
    conversion_difference: float
    conversion_p_value: float
    def __init__(self, ctr_difference: _Optional[float] = ..., ctr_p_value: _Optional[float] = ..., conversion_difference: _Optional[float] = ..., conversion_p_value: _Optional[float] = ...) -> None: ...

class ArmReport(_message.Message):
    __slots__ = ("name", "model_version", "weight", "customers_assigned", "customers_exposed", "impressions", "clicks", "purchases", "revenue", "ctr", "conversion", "versus_first", "buckets", "conversions")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_EXPOSED_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    CLICKS_FIELD_NUMBER: _ClassVar[int]
    PURCHASES_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    CTR_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FIELD_NUMBER: _ClassVar[int]
    VERSUS_FIRST_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    model_version: str
    weight: int
    customers_assigned: int
    customers_exposed: int
    impressions: int
    clicks: int
    purchases: int
    revenue: float
    ctr: Rate
    conversion: Rate
    versus_first: Comparison
    buckets: int
    conversions: int
    def __init__(self, name: _Optional[str] = ..., model_version: _Optional[str] = ..., weight: _Optional[int] = ..., customers_assigned: _Optional[int] = ..., customers_exposed: _Optional[int] = ..., impressions: _Optional[int] = ..., clicks: _Optional[int] = ..., purchases: _Optional[int] = ..., revenue: _Optional[float] = ..., ctr: _Optional[_Union[Rate, _Mapping]] = ..., conversion: _Optional[_Union[Rate, _Mapping]] = ..., versus_first: _Optional[_Union[Comparison, _Mapping]] = ..., buckets: _Optional[int] = ..., conversions: _Optional[int] = ...) -> None: ...

class ExperimentReport(_message.Message):
    __slots__ = ("name", "state", "created_ms", "stopped_ms", "attribution_seconds", "arms", "srm_p_value", "srm_exposed_p_value", "events_scanned")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    STOPPED_MS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    SRM_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    SRM_EXPOSED_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    EVENTS_SCANNED_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: str
    created_ms: int
    stopped_ms: int
    attribution_seconds: int
    arms: _containers.RepeatedCompositeFieldContainer[ArmReport]
    srm_p_value: float
    srm_exposed_p_value: float
    events_scanned: int
    def __init__(self, name: _Optional[str] = ..., state: _Optional[str] = ..., created_ms: _Optional[int] = ..., stopped_ms: _Optional[int] = ..., attribution_seconds: _Optional[int] = ..., arms: _Optional[_Iterable[_Union[ArmReport, _Mapping]]] = ..., srm_p_value: _Optional[float] = ..., srm_exposed_p_value: _Optional[float] = ..., events_scanned: _Optional[int] = ...) -> None: ...
