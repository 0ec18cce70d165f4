from . import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListSegmentsRequest(_message.Message):
    __slots__ = ("kind",)
    KIND_FIELD_NUMBER: _ClassVar[int]
    kind: str
    def __init__(self, kind: _Optional[str] = ...) -> None: ...

class SegmentSize(_message.Message):
    __slots__ = ("segment", "customers")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    segment: _common_pb2.Segment
    customers: int
    def __init__(self, segment: _Optional[_Union[_common_pb2.Segment, _Mapping]] = ..., customers: _Optional[int] = ...) -> None: ...

class ListSegmentsResponse(_message.Message):
    __slots__ = ("segments", "shards_answered", "shards_total")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    SHARDS_ANSWERED_FIELD_NUMBER: _ClassVar[int]
    SHARDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[SegmentSize]
    shards_answered: int
    shards_total: int
    def __init__(self, segments: _Optional[_Iterable[_Union[SegmentSize, _Mapping]]] = ..., shards_answered: _Optional[int] = ..., shards_total: _Optional[int] = ...) -> None: ...

class ListSegmentMembersRequest(_message.Message):
    __slots__ = ("segment", "page_size", "page_token")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    segment: _common_pb2.Segment
    page_size: int
    page_token: str
    def __init__(self, segment: _Optional[_Union[_common_pb2.Segment, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSegmentMembersResponse(_message.Message):
    __slots__ = ("customer_ids", "next_page_token", "total", "shards_answered", "shards_total")
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    SHARDS_ANSWERED_FIELD_NUMBER: _ClassVar[int]
    SHARDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    next_page_token: str
    total: int
    shards_answered: int
    shards_total: int
    def __init__(self, customer_ids: _Optional[_Iterable[str]] = ..., next_page_token: _Optional[str] = ..., total: _Optional[int] = ..., shards_answered: _Optional[int] = ..., shards_total: _Optional[int] = ...) -> None: ...
