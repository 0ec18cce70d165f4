from . import common_pb2 as _common_pb2
from . import policies_pb2 as _policies_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetCustomerRequest(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class GetCustomerResponse(_message.Message):
    __slots__ = ("customer", "has_vector", "purchased_items", "event_count", "model_version", "segments", "cap_counts")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    HAS_VECTOR_FIELD_NUMBER: _ClassVar[int]
    PURCHASED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    CAP_COUNTS_FIELD_NUMBER: _ClassVar[int]
    customer: _common_pb2.Customer
    has_vector: bool
    purchased_items: int
    event_count: int
    model_version: str
    segments: _containers.RepeatedCompositeFieldContainer[_common_pb2.Segment]
    cap_counts: _containers.RepeatedCompositeFieldContainer[_policies_pb2.CapCount]
    def __init__(self, customer: _Optional[_Union[_common_pb2.Customer, _Mapping]] = ..., has_vector: bool = ..., purchased_items: _Optional[int] = ..., event_count: _Optional[int] = ..., model_version: _Optional[str] = ..., segments: _Optional[_Iterable[_Union[_common_pb2.Segment, _Mapping]]] = ..., cap_counts: _Optional[_Iterable[_Union[_policies_pb2.CapCount, _Mapping]]] = ...) -> None: ...

class DeleteCustomerRequest(_message.Message):
    __slots__ = ("customer_id",)
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    def __init__(self, customer_id: _Optional[str] = ...) -> None: ...

class DeleteCustomerResponse(_message.Message):
    __slots__ = ("existed",)
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    existed: bool
    def __init__(self, existed: bool = ...) -> None: ...
