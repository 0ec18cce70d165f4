"""API keys and TLS/mTLS against real servers (`--api-keys-file`, `--tls-cert`,
`--tls-key`, `--tls-client-ca`) with the repository's test-only certificates."""

import subprocess

import grpc
import pytest

from conftest import REPO
from doppel_client import Client, DoppelError

CERTS = REPO / "tests" / "fixtures" / "tls"


@pytest.fixture
def api_key(tmp_path, doppel_bin):
    """A new admin key and the keys file that admits it."""
    made = subprocess.run([str(doppel_bin), "keys", "new", "--id", "pytest", "--role", "admin"],
                          capture_output=True, text=True, check=True)
    (tmp_path / "keys").write_text(made.stderr.strip().splitlines()[-1] + "\n")
    return made.stdout.strip(), tmp_path / "keys"


def test_api_key_is_sent_as_bearer_token(serve, api_key):
    key, keys_file = api_key
    server = serve("--api-keys-file", str(keys_file))
    with Client(server.addr) as anonymous:
        with pytest.raises(DoppelError) as caught:
            anonymous.list_versions()
        assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
    with Client(server.addr, api_key=key) as keyed:
        assert keyed.list_versions().active_version == ""


def test_a_key_over_its_rate_limit_is_told_when_to_retry(serve, api_key):
    key, keys_file = api_key
    server = serve("--api-keys-file", str(keys_file), "--rate-limit-per-key", "1",
                   "--rate-limit-burst", "1")
    with Client(server.addr, api_key=key) as keyed:
        keyed.list_versions()
        with pytest.raises(DoppelError) as caught:
            keyed.list_versions()
    assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 1.0


def test_mutual_tls_with_api_key(serve, api_key):
    key, keys_file = api_key
    server = serve("--tls-cert", str(CERTS / "server.pem"), "--tls-key", str(CERTS / "server.key"),
                   "--tls-client-ca", str(CERTS / "ca.pem"), "--api-keys-file", str(keys_file))
    trusted = {"ca_cert": str(CERTS / "ca.pem"), "client_cert": str(CERTS / "client.pem"),
               "client_key": str(CERTS / "client.key")}
    with Client(server.addr, api_key=key, tls=trusted) as client:
        assert client.list_versions().active_version == ""

    rogue = {**trusted, "client_cert": str(CERTS / "rogue-client.pem"), "client_key": str(CERTS / "rogue-client.key")}
    for tls in [{"ca_cert": trusted["ca_cert"]}, rogue, None]:  # no client certificate, another CA's, plaintext
        with Client(server.addr, api_key=key, tls=tls) as refused:
            with pytest.raises(DoppelError) as caught:
                refused.list_versions()
            assert caught.value.code == grpc.StatusCode.UNAVAILABLE, tls
