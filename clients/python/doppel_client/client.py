"""`Client`: the doppel API over one gRPC channel, with Python-shaped arguments and answers.

Helpers return the server's protobuf messages (typed by the generated `.pyi` stubs) except
where a Python shape serves better: a DataFrame for audiences, dataclasses for an import
summary and for offers. Every RPC goes through `_unary`, `_client_stream` or
`_server_stream`, which turn `grpc.RpcError` into `DoppelError`.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, List, Mapping, Optional, Sequence, TypeVar, Union

import grpc
import numpy as np
import pandas as pd

from . import audiences, embeddings, experiments, offers
from ._proto import (audiences_pb2_grpc, common_pb2, experiments_pb2, experiments_pb2_grpc, ingest_pb2,
                     ingest_pb2_grpc, model_admin_pb2, model_admin_pb2_grpc, recommendations_pb2_grpc)
from .channel import Tls, open_channel
from .errors import DoppelError
from .options import as_message, request_options
from .progress import Progress

T = TypeVar("T")
CustomerLike = Union[common_pb2.Customer, Mapping[str, Any]]
ItemLike = Union[common_pb2.Item, Mapping[str, Any]]
EventLike = Union[common_pb2.Event, Mapping[str, Any]]
GuardLike = Union[None, model_admin_pb2.CanaryGuard, Mapping[str, Any]]


class Client:
    """A connection to a doppel node or router.

    Args:
        addr: `host:port`.
        api_key: sent as `authorization: Bearer <key>` on every call.
        tls: None (plaintext), True (TLS, system roots), or a dict / object with `ca_cert`,
            `client_cert`, `client_key` PEM paths (mTLS with both client fields).

    Use as a context manager, or call `close()`.
    """

    def __init__(self, addr: str, api_key: Optional[str] = None, tls: Tls = None) -> None:
        self.addr = addr
        self.channel = open_channel(addr, api_key, tls)
        self._ingest = ingest_pb2_grpc.IngestStub(self.channel)
        self._admin = model_admin_pb2_grpc.ModelAdminStub(self.channel)
        self._audiences = audiences_pb2_grpc.AudiencesStub(self.channel)
        self._recs = recommendations_pb2_grpc.RecommendationsStub(self.channel)
        self._experiments = experiments_pb2_grpc.ExperimentsStub(self.channel)

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Blocks until the channel connects; DoppelError(UNAVAILABLE) after `timeout` seconds."""
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise DoppelError(grpc.StatusCode.UNAVAILABLE, f"{self.addr}: not reachable within {timeout} s") from None

    # -- the three call shapes ------------------------------------------------------------

    @staticmethod
    def _unary(method: Callable[[Any], T], request: Any) -> T:
        try:
            return method(request)
        except grpc.RpcError as error:
            raise DoppelError.from_rpc_error(error) from None

    @staticmethod
    def _client_stream(method: Callable[[Iterator[Any]], T], requests: Iterable[Any]) -> T:
        # grpc reads `requests` on its own thread and reports an exception there only as a
        # CANCELLED call: keep it and raise it here instead.
        failure: List[Exception] = []

        def guarded() -> Iterator[Any]:
            try:
                yield from requests
            except Exception as error:
                failure.append(error)
                raise

        try:
            return method(guarded())
        except grpc.RpcError as error:
            if failure:
                raise failure[0] from None
            raise DoppelError.from_rpc_error(error) from None

    @staticmethod
    def _server_stream(method: Callable[[Any], Iterator[T]], request: Any) -> Iterator[T]:
        call = method(request)
        try:
            yield from call
        except grpc.RpcError as error:
            raise DoppelError.from_rpc_error(error) from None
        finally:
            call.cancel()  # a no-op once the stream ended; frees it if the caller stopped early

    # -- Ingest ----------------------------------------------------------------------------

    def upsert_customers(self, customers: Iterable[CustomerLike]) -> common_pb2.WriteSummary:
        """Streams customer profiles (messages or dicts: id, attributes, consent)."""
        return self._client_stream(self._ingest.UpsertCustomers,
                                   (as_message(common_pb2.Customer, c) for c in customers))

    def upsert_items(self, items: Iterable[ItemLike]) -> common_pb2.WriteSummary:
        """Streams items (messages or dicts: id, category, price, in_stock, attributes)."""
        return self._client_stream(self._ingest.UpsertItems, (as_message(common_pb2.Item, i) for i in items))

    def record_events(self, events: Iterable[EventLike]) -> common_pb2.WriteSummary:
        """Streams events (messages or dicts; `type` may be a name such as "PURCHASE")."""
        return self._client_stream(self._ingest.RecordEvents, (as_message(common_pb2.Event, e) for e in events))

    def get_customer(self, customer_id: str) -> ingest_pb2.GetCustomerResponse:
        """A profile with its vector, purchase, segment and cap counts."""
        return self._unary(self._ingest.GetCustomer, ingest_pb2.GetCustomerRequest(customer_id=customer_id))

    def delete_customer(self, customer_id: str) -> bool:
        """Erases a customer everywhere (recorded even if unknown); True if it was stored."""
        request = ingest_pb2.DeleteCustomerRequest(customer_id=customer_id)
        return self._unary(self._ingest.DeleteCustomer, request).existed

    # -- ModelAdmin --------------------------------------------------------------------------

    def import_embeddings(self, version: str, customer_ids: Sequence[str], customer_vectors: np.ndarray,
                          item_ids: Sequence[str], item_vectors: np.ndarray, chunk_rows: Optional[int] = None,
                          progress: bool = True) -> embeddings.ImportSummary:
        """Streams one version's vectors (rows × dim arrays, one space); returns once it is
        built and ready to activate. Chunks stay under 4 MiB unless `chunk_rows` says otherwise."""
        tables = embeddings.tables(customer_ids, customer_vectors, item_ids, item_vectors)
        rows = embeddings.chunk_rows_for(tables, chunk_rows)
        total = sum(len(t.ids) for t in tables)

        with Progress(f"import {version}", total, enabled=progress, unit="rows") as bar:
            def stream() -> Iterator[model_admin_pb2.EmbeddingChunk]:
                sent = 0
                for source in tables:
                    for chunk in embeddings.chunks(version, source, rows):
                        yield chunk
                        sent += len(chunk.ids)
                        bar.update(sent, note="building indexes" if sent == total else "")

            summary = self._client_stream(self._admin.ImportEmbeddings, stream())
        return embeddings.ImportSummary.from_proto(summary)

    def train(self, progress: bool = True, **params: Any) -> model_admin_pb2.TrainProgress:
        """Learns a version from the event log (implicit ALS) and returns the last progress
        message (done=True, naming the new, ready version). `params` are TrainRequest fields:
        model_version, factors, regularization, unobserved_weight, regularization_exponent,
        alpha, iterations, half_life_days, seed, the event weights, scan_vectors, and the
        offers' recent-popularity prior: recent_popularity_weight (unset: chosen by the run,
        0: none) and recent_popularity_days."""
        request = model_admin_pb2.TrainRequest(**request_options(model_admin_pb2.TrainRequest, params, caller="train"))
        last, iteration = None, 0
        with Progress("train", enabled=progress) as bar:
            for last in self._server_stream(self._admin.Train, request):
                iteration = max(iteration, last.iteration)  # stages after training report 0
                loss = f" loss={last.loss:.4g}" if last.loss else ""
                bar.update(iteration, total=last.iterations or None, note=f"{last.model_version} {last.stage}{loss}")
        if last is None:
            raise DoppelError(grpc.StatusCode.INTERNAL, "Train ended without any progress message")
        return last

    def list_versions(self) -> model_admin_pb2.ListVersionsResponse:
        """Every version (`.versions`) and the active one (`.active_version`)."""
        return self._unary(self._admin.ListVersions, model_admin_pb2.ListVersionsRequest())

    def describe_version(self, version: str) -> model_admin_pb2.DescribeVersionResponse:
        """One version's metadata, state, index, build progress and canary status."""
        return self._unary(self._admin.DescribeVersion, model_admin_pb2.DescribeVersionRequest(model_version=version))

    def activate(self, version: str, canary_percent: int = 0,
                 guard: GuardLike = None) -> model_admin_pb2.ActivateVersionResponse:
        """Activates a ready version, or with `canary_percent` (1..=99) starts a canary on that
        share of customers, rolled back by itself when `guard` (a CanaryGuard or a dict of its
        fields) trips."""
        if guard is not None and not isinstance(guard, model_admin_pb2.CanaryGuard):
            guard = model_admin_pb2.CanaryGuard(
                **request_options(model_admin_pb2.CanaryGuard, guard, caller="guard"))
        request = model_admin_pb2.ActivateVersionRequest(model_version=version, canary_percent=canary_percent,
                                                         guard=guard)
        return self._unary(self._admin.ActivateVersion, request)

    def rollback(self) -> model_admin_pb2.ActivateVersionResponse:
        """Re-activates the previously active version."""
        return self._unary(self._admin.Rollback, model_admin_pb2.RollbackRequest())

    def promote_canary(self) -> model_admin_pb2.ActivateVersionResponse:
        """Makes the running canary's version fully active."""
        return self._unary(self._admin.PromoteCanary, model_admin_pb2.PromoteCanaryRequest())

    # -- Audiences and Recommendations -----------------------------------------------------------

    def lookalikes(self, seeds: Sequence[str], count: Optional[int] = None, top_percent: Optional[float] = None,
                   min_score: Optional[float] = None, **options: Any) -> pd.DataFrame:
        """The lookalike audience of `seeds`, best first, sized by exactly one of count,
        top_percent, min_score. `options` are other LookalikeRequest fields by name
        (explain, strategy="CENTROID", filter={...}, exclude_existing_customers, ...); an
        unknown one raises TypeError. Columns: customer_id, score, nearest_seed_ids (filled
        with explain=True); stream metadata in `.attrs` (model_version, ignored_seed_ids, ...)."""
        request = audiences.lookalike_request(seeds, count, top_percent, min_score, options)
        return audiences.audience_frame(self._server_stream(self._audiences.FindLookalikes, request))

    def recommend(self, customer_id: str, k: int, context: offers.ContextLike = None,
                  **options: Any) -> offers.Recommendation:
        """Next-best offers for a customer. `context`: a dict with channel/device/country.
        `options`: filter={"categories": [...], "max_price": ...}, include_purchased, explain,
        record_impressions, timestamp_ms."""
        request = offers.recommend_request(customer_id, k, context, options)
        return offers.Recommendation.from_proto(self._unary(self._recs.RecommendOffers, request))

    # -- Experiments ---------------------------------------------------------------------------

    def create_experiment(self, name: str, arms: Iterable[experiments.ArmLike], salt: str = "",
                          traffic_percent: int = 0) -> experiments_pb2.ExperimentInfo:
        """Starts an A/B experiment; arms as (name, version, weight) tuples or dicts, the first
        being the baseline. `traffic_percent` 0 means everyone."""
        request = experiments_pb2.CreateExperimentRequest(name=name, arms=experiments.arm_messages(arms), salt=salt,
                                                          traffic_percent=traffic_percent)
        return self._unary(self._experiments.CreateExperiment, request)

    def update_weights(self, name: str, arms: Iterable[experiments.ArmLike],
                       traffic_percent: int = 0) -> experiments_pb2.ExperimentInfo:
        """New arm weights ((name, weight) suffices); `traffic_percent` 0 keeps the share."""
        request = experiments_pb2.UpdateWeightsRequest(name=name, arms=experiments.arm_messages(arms),
                                                       traffic_percent=traffic_percent)
        return self._unary(self._experiments.UpdateWeights, request)

    def stop_experiment(self, name: str) -> experiments_pb2.ExperimentInfo:
        """Stops an experiment: everyone gets the active version again."""
        return self._unary(self._experiments.StopExperiment, experiments_pb2.StopExperimentRequest(name=name))

    def list_experiments(self) -> List[experiments_pb2.ExperimentInfo]:
        """Running experiments first, then stopped ones, newest first."""
        return list(self._unary(self._experiments.ListExperiments,
                                experiments_pb2.ListExperimentsRequest()).experiments)

    def experiment_report(self, name: str, attribution_seconds: int = 0) -> experiments_pb2.ExperimentReport:
        """Per-arm impressions, clicks, purchases, rates and tests against the first arm."""
        request = experiments_pb2.GetExperimentReportRequest(name=name, attribution_seconds=attribution_seconds)
        return self._unary(self._experiments.GetExperimentReport, request)
