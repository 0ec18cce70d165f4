from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FrequencyCap(_message.Message):
    __slots__ = ("scope", "attribute", "max_impressions", "window_seconds")
    class CapScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CAP_SCOPE_UNSPECIFIED: _ClassVar[FrequencyCap.CapScope]
        ITEM: _ClassVar[FrequencyCap.CapScope]
        CATEGORY: _ClassVar[FrequencyCap.CapScope]
        ALL: _ClassVar[FrequencyCap.CapScope]
        ATTRIBUTE: _ClassVar[FrequencyCap.CapScope]
    CAP_SCOPE_UNSPECIFIED: FrequencyCap.CapScope
    ITEM: FrequencyCap.CapScope
    CATEGORY: FrequencyCap.CapScope
    ALL: FrequencyCap.CapScope
    ATTRIBUTE: FrequencyCap.CapScope
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    MAX_IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    scope: FrequencyCap.CapScope
    attribute: str
    max_impressions: int
    window_seconds: int
    def __init__(self, scope: _Optional[_Union[FrequencyCap.CapScope, str]] = ..., attribute: _Optional[str] = ..., max_impressions: _Optional[int] = ..., window_seconds: _Optional[int] = ...) -> None: ...

class ContactPolicy(_message.Message):
    __slots__ = ("caps",)
    CAPS_FIELD_NUMBER: _ClassVar[int]
    caps: _containers.RepeatedCompositeFieldContainer[FrequencyCap]
    def __init__(self, caps: _Optional[_Iterable[_Union[FrequencyCap, _Mapping]]] = ...) -> None: ...

class GetContactPolicyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CapCount(_message.Message):
    __slots__ = ("cap", "key", "impressions")
    CAP_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    cap: FrequencyCap
    key: str
    impressions: int
    def __init__(self, cap: _Optional[_Union[FrequencyCap, _Mapping]] = ..., key: _Optional[str] = ..., impressions: _Optional[int] = ...) -> None: ...
