"""Python client of doppel: lookalike audiences and next-best offers over gRPC.

    from doppel_client import Client

    with Client("127.0.0.1:50051") as doppel:
        doppel.import_embeddings("v1", customer_ids, customer_vectors, item_ids, item_vectors)
        doppel.activate("v1")
        audience = doppel.lookalikes(["c1", "c2"], count=1000)   # a pandas DataFrame
        offers = doppel.recommend("c1", k=5)

Modules: `client` (Client), `errors` (DoppelError), `channel` (TLS, API key), `embeddings`,
`audiences`, `offers`, `experiments` (argument shapes and answers), `progress`; the
generated stubs are in `doppel_client._proto`.
"""

from .channel import TlsConfig
from .client import Client
from .embeddings import ImportSummary
from .errors import DoppelError
from .offers import Offer, Recommendation

__all__ = ["Client", "DoppelError", "ImportSummary", "Offer", "Recommendation", "TlsConfig"]
__version__ = "0.1.0"
