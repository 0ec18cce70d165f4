"""Fixtures: a real `doppel serve` per test module, and a small synthetic customer base.

The binary is $DOPPEL_BIN (default: <repo>/target/debug/doppel); each server gets a free
loopback port and its own data directory, and is stopped (SIGTERM, then SIGKILL) at teardown.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Sequence

import numpy as np
import pytest

from doppel_client import Client, ImportSummary

REPO = Path(__file__).resolve().parents[3]
DOPPEL_BIN = Path(os.environ.get("DOPPEL_BIN", REPO / "target" / "debug" / "doppel")).resolve()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running `doppel serve`."""

    addr: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(data_dir: Path, *args: str) -> Server:
    """Starts `doppel serve` on a free port and waits until it accepts connections."""
    if not DOPPEL_BIN.is_file():
        pytest.fail(f"no doppel binary at {DOPPEL_BIN} (build it or set DOPPEL_BIN)")
    addr = f"127.0.0.1:{free_port()}"
    log = data_dir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(DOPPEL_BIN), "serve", "--listen", addr, "--data-dir", str(data_dir), *args],
                                   stdout=subprocess.DEVNULL, stderr=out)
    server = Server(addr, process, log)
    host, port = addr.rsplit(":", 1)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            pytest.fail(f"doppel serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection((host, int(port)), timeout=0.5).close()
            return server
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                pytest.fail(f"doppel serve did not listen on {addr} within 60 s")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("doppel"))
    yield running
    running.stop()


@pytest.fixture
def doppel_bin() -> Path:
    return DOPPEL_BIN


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Starts servers with extra `serve` flags; all are stopped after the test."""
    started: List[Server] = []

    def start(*args: str) -> Server:
        data_dir = tmp_path / f"server-{len(started)}"
        data_dir.mkdir()
        started.append(start_server(data_dir, *args))
        return started[-1]

    yield start
    for running in started:
        running.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[Client]:
    with Client(server.addr) as connected:
        connected.wait_ready()
        yield connected


TASTES, CUSTOMERS, ITEMS, DIM = 4, 240, 40, 8


@dataclass
class World:
    """Customers of a few tastes who bought mostly items of their taste, and SVD vectors."""

    customer_ids: List[str]
    item_ids: List[str]
    taste: np.ndarray
    item_taste: np.ndarray
    bought: np.ndarray
    customer_vectors: np.ndarray
    item_vectors: np.ndarray

    def customers_of(self, taste: int) -> List[str]:
        return [self.customer_ids[c] for c in np.flatnonzero(self.taste == taste)]

    def taste_of(self, ids: Sequence[str]) -> List[int]:
        return [int(self.taste[self.customer_ids.index(i)]) for i in ids]

    def import_as(self, client: Client, version: str, progress: bool = False) -> ImportSummary:
        """Imports the vectors as `version`."""
        return client.import_embeddings(version, self.customer_ids, self.customer_vectors, self.item_ids,
                                        self.item_vectors, progress=progress)


def make_world(seed: int = 7) -> World:
    rng = np.random.default_rng(seed)
    taste = rng.integers(0, TASTES, CUSTOMERS)
    item_taste = np.arange(ITEMS) % TASTES
    bought = np.zeros((CUSTOMERS, ITEMS), dtype=np.float32)
    for c in range(CUSTOMERS):
        bought[c, rng.choice(np.flatnonzero(item_taste == taste[c]), 4, replace=False)] = 1
    u, s, vt = np.linalg.svd(bought, full_matrices=False)
    root = np.sqrt(s[:DIM])
    return World([f"t-c{c:04d}" for c in range(CUSTOMERS)], [f"t-i{i:03d}" for i in range(ITEMS)], taste,
                 item_taste, bought, u[:, :DIM] * root, vt[:DIM].T * root)


@pytest.fixture(scope="module")
def world(client: Client) -> World:
    """The synthetic base, upserted with consent and its purchases recorded."""
    built = make_world()
    consent = {"ads_personalization": True, "onsite_personalization": True}
    assert client.upsert_customers({"id": c, "consent": consent} for c in built.customer_ids).accepted == CUSTOMERS
    summary = client.upsert_items({"id": i, "category": f"taste{built.item_taste[n]}", "price": 10.0, "in_stock": True}
                                  for n, i in enumerate(built.item_ids))
    assert summary.accepted == ITEMS
    events = [{"customer_id": built.customer_ids[c], "item_id": built.item_ids[i], "type": "PURCHASE",
               "quantity": 1, "value": 10.0, "timestamp_ms": 1_700_000_000_000}
              for c, i in zip(*np.nonzero(built.bought))]
    assert client.record_events(events).rejected == 0
    return built
