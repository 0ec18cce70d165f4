"""`DoppelError`: every failed RPC, with the field the server named.

The server's messages follow `"<field>: <reason>"` for the codes that concern a request
field (`k: must be in 1..=1000`, `arms[1].weight: ...`, `customer_id: `c9` not found`), so
`field` is parsed from that prefix; it is None for other messages and codes.
"""

from __future__ import annotations

import re
from typing import Optional

import grpc

# A dotted path of identifiers, each optionally indexed: `k`, `filter.max_price`, `arms[1].weight`.
_FIELD_PREFIX = re.compile(r"^([A-Za-z_]\w*(?:\[\d+\])*(?:\.[A-Za-z_]\w*(?:\[\d+\])*)*): ")

# Codes whose messages name a request field. Others (INTERNAL "index: ...", UNAVAILABLE
# "store: ...") name a component, not something the caller can fix in the request.
_FIELD_CODES = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.OUT_OF_RANGE,
})


def parse_field(code: grpc.StatusCode, message: str) -> Optional[str]:
    """The request field a status message names (`"k: must be ..."` → `"k"`), or None."""
    if code not in _FIELD_CODES:
        return None
    match = _FIELD_PREFIX.match(message)
    return match.group(1) if match else None


class DoppelError(Exception):
    """An RPC the server (or the transport) refused.

    Attributes:
        code: the gRPC status code, e.g. `grpc.StatusCode.INVALID_ARGUMENT`.
        message: the server's message, e.g. `"k: must be in 1..=1000"`.
        field: the request field the message names (`"k"`, `"arms[1].weight"`), or None.
        retry_after: for RESOURCE_EXHAUSTED (a call shed by admission control, or a key
            over its rate limit), how long the server asks the caller to wait before
            retrying, in seconds (its `retry-after-ms` trailer); None when it did not say.
    """

    def __init__(self, code: grpc.StatusCode, message: str, field: Optional[str] = None,
                 retry_after: Optional[float] = None) -> None:
        super().__init__(f"{code.name}: {message}" if message else code.name)
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "DoppelError":
        """Wraps the error a grpc call raised (a `grpc.Call` carrying code and details)."""
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        message = (error.details() or "") if hasattr(error, "details") else str(error)
        return cls(code, message, parse_field(code, message), _retry_after(error))


def _retry_after(error: grpc.RpcError) -> Optional[float]:
    """The `retry-after-ms` trailer of a failed call, in seconds (None: absent or bad)."""
    trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailers or ():
        if key == "retry-after-ms":
            try:
                return int(value) / 1000.0
            except (TypeError, ValueError):
                return None
    return None
