"""Opening the gRPC channel: TLS/mTLS credentials, the API key header, message limits."""

from __future__ import annotations

import collections
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import grpc

# Both directions: an embeddings chunk or an audience page stays far below it, but a large
# GetCustomer or report must not trip the 4 MiB gRPC default.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class TlsConfig:
    """PEM file paths. All unset: system roots. `client_cert` + `client_key`: mTLS."""

    ca_cert: Optional[str] = None
    client_cert: Optional[str] = None
    client_key: Optional[str] = None


# None/False: plaintext; True: TLS with system roots; a TlsConfig, a mapping with its keys,
# or any object with those attributes: TLS with those files.
Tls = Union[None, bool, TlsConfig, Mapping[str, Optional[str]], Any]


def tls_config(tls: Tls) -> Optional[TlsConfig]:
    """Normalises the `tls` argument of `Client`; None means plaintext."""
    if tls is None or tls is False:
        return None
    if tls is True:
        return TlsConfig()
    if isinstance(tls, TlsConfig):
        config = tls
    elif isinstance(tls, Mapping):
        unknown = set(tls) - {"ca_cert", "client_cert", "client_key"}
        if unknown:
            raise TypeError(f"tls: unknown keys {sorted(unknown)} (ca_cert, client_cert, client_key)")
        config = TlsConfig(**tls)
    else:
        config = TlsConfig(*(getattr(tls, k, None) for k in ("ca_cert", "client_cert", "client_key")))
    if (config.client_cert is None) != (config.client_key is None):
        raise ValueError("tls: client_cert and client_key go together (mTLS)")
    return config


def _read(path: Optional[str]) -> Optional[bytes]:
    return Path(path).read_bytes() if path is not None else None


def credentials(config: TlsConfig) -> grpc.ChannelCredentials:
    """Channel credentials from PEM files (None fields: system roots, no client certificate)."""
    return grpc.ssl_channel_credentials(
        root_certificates=_read(config.ca_cert),
        private_key=_read(config.client_key),
        certificate_chain=_read(config.client_cert),
    )


class _CallDetails(
    collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    """ClientCallDetails with added metadata (grpc's own type is private)."""


class BearerAuth(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds `authorization: Bearer <key>` to every call. An interceptor, not call
    credentials: those need TLS, and a local plaintext server takes keys too."""

    def __init__(self, api_key: str) -> None:
        self._header = ("authorization", f"Bearer {api_key}")

    def _details(self, details: grpc.ClientCallDetails) -> _CallDetails:
        metadata = [*(details.metadata or ()), self._header]
        return _CallDetails(details.method, details.timeout, metadata, details.credentials,
                            details.wait_for_ready, getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)


def open_channel(addr: str, api_key: Optional[str] = None, tls: Tls = None) -> grpc.Channel:
    """A channel to `addr` (`host:port`) with the client's limits, credentials and key."""
    options = [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ]
    config = tls_config(tls)
    if config is None:
        channel = grpc.insecure_channel(addr, options=options)
    else:
        channel = grpc.secure_channel(addr, credentials(config), options=options)
    if api_key:
        channel = grpc.intercept_channel(channel, BearerAuth(api_key))
    return channel
