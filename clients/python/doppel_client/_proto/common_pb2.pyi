from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    VIEW: _ClassVar[EventType]
    ADD_TO_CART: _ClassVar[EventType]
    PURCHASE: _ClassVar[EventType]
    RETURN: _ClassVar[EventType]
    IMPRESSION: _ClassVar[EventType]
    CLICK: _ClassVar[EventType]

class Entity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTITY_UNSPECIFIED: _ClassVar[Entity]
    CUSTOMER: _ClassVar[Entity]
    ITEM: _ClassVar[Entity]
EVENT_TYPE_UNSPECIFIED: EventType
VIEW: EventType
ADD_TO_CART: EventType
PURCHASE: EventType
RETURN: EventType
IMPRESSION: EventType
CLICK: EventType
ENTITY_UNSPECIFIED: Entity
CUSTOMER: Entity
ITEM: Entity

class Consent(_message.Message):
    __slots__ = ("ads_personalization", "onsite_personalization")
    ADS_PERSONALIZATION_FIELD_NUMBER: _ClassVar[int]
    ONSITE_PERSONALIZATION_FIELD_NUMBER: _ClassVar[int]
    ads_personalization: bool
    onsite_personalization: bool
    def __init__(self, ads_personalization: bool = ..., onsite_personalization: bool = ...) -> None: ...

class Customer(_message.Message):
    __slots__ = ("id", "attributes", "consent")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    attributes: _containers.ScalarMap[str, str]
    consent: Consent
    def __init__(self, id: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ..., consent: _Optional[_Union[Consent, _Mapping]] = ...) -> None: ...

class Item(_message.Message):
    __slots__ = ("id", "category", "price", "in_stock", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    IN_STOCK_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    category: str
    price: float
    in_stock: bool
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., category: _Optional[str] = ..., price: _Optional[float] = ..., in_stock: bool = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Context(_message.Message):
    __slots__ = ("channel", "device", "country")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    channel: str
    device: str
    country: str
    def __init__(self, channel: _Optional[str] = ..., device: _Optional[str] = ..., country: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("customer_id", "item_id", "type", "timestamp_ms", "quantity", "value", "context", "event_id")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    item_id: str
    type: EventType
    timestamp_ms: int
    quantity: int
    value: float
    context: Context
    event_id: str
    def __init__(self, customer_id: _Optional[str] = ..., item_id: _Optional[str] = ..., type: _Optional[_Union[EventType, str]] = ..., timestamp_ms: _Optional[int] = ..., quantity: _Optional[int] = ..., value: _Optional[float] = ..., context: _Optional[_Union[Context, _Mapping]] = ..., event_id: _Optional[str] = ...) -> None: ...

class RecordError(_message.Message):
    __slots__ = ("index", "field", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    field: str
    reason: str
    def __init__(self, index: _Optional[int] = ..., field: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class WriteSummary(_message.Message):
    __slots__ = ("accepted", "rejected", "errors", "duplicates")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    rejected: int
    errors: _containers.RepeatedCompositeFieldContainer[RecordError]
    duplicates: int
    def __init__(self, accepted: _Optional[int] = ..., rejected: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[RecordError, _Mapping]]] = ..., duplicates: _Optional[int] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("kind", "name")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    kind: str
    name: str
    def __init__(self, kind: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...
