"""Qdrant-backed indexes: one collection, three named vectors, the local index interface.

A :class:`QdrantStore` is a client plus a collection name. Thin *views* over it expose exactly
the methods of the local indexes, so the engine's retrievers take them as their ``index``:

- :class:`QdrantSparseIndex` (like ``SparseIndex``): SPLADE vectors as a Qdrant sparse vector
  (default name ``"splade"``), dot-product scores, ``doc_vectors`` for explanations.
- :class:`QdrantDenseIndex` (like ``DenseIndex``): a dense named vector (``"dense"``), metric
  ``"ip"`` (Qdrant ``Dot``) or ``"cosine"`` (Qdrant ``Cosine``).
- :class:`QdrantBM25Index` (like ``BM25Index``): BM25 as a sparse vector (``"bm25"``) with
  Qdrant's IDF modifier. Tokens come from *our* analyzer (Korean morphemes included); each
  token maps to a stable 32-bit term id (``term_id``), so any client with the same analyzer
  can query the collection without a shared vocabulary file.

Point ids are the engine's internal integer ids (consecutive from 0, as the local indexes
assign them), so every view of one store agrees with the engine's document store. Each view
writes only its own named vector: the first view to write a point creates it (``upsert``),
the others add their vector to it (``update_vectors``). ``delete`` removes the view's vector;
a point left without vectors is deleted. Payloads (document id, text, metadata) are written
by :meth:`QdrantStore.set_payloads` (the engine glue in ``hybrid.backends.qdrant`` does it).

BM25 through Qdrant. Qdrant computes, per query term, ``idf = ln(1 + (N - df + 0.5) /
(df + 0.5))`` over the points that hold the ``bm25`` vector, multiplies it by the query value
(the term's count in the query) and by the stored document value. We store, per document term,
Lucene's length-normalised term frequency ``tf / (tf + k1 (1 - b + b dl / avgdl))`` (k1=1.2,
b=0.75), so the score has the form of ``BM25Index(variant="lucene")``. It differs where Qdrant
cannot know what a local index recomputes: ``avgdl`` is the running mean document length *at
write time* (documents written earlier keep their normalisation; the local index recomputes
it for all documents after every write), and on a Qdrant server IDF statistics are counted
per shard, and deleted points may count until segments are optimised (local mode counts live
points only). On a collection written in one batch, scores equal local Lucene BM25 up to float
rounding. Term ids are 32-bit hashes: two distinct terms collide with probability about
``V**2 / 2**33`` for a vocabulary of V terms (about one pair at V = 100k); a collision merges
their statistics, never drops a document.

Saving a view writes only the connection settings (path or url, collection, vector name and
parameters) and a format version with ``write_meta``; the data lives in Qdrant. ``api_key`` is
never written: :meth:`QdrantStore.from_settings` reads it from ``QDRANT_API_KEY``.

``qdrant-client`` is an optional dependency: ``pip install 'splade-hybrid[qdrant]'``.

Modules: :mod:`~indexes.qdrant.connection` (client import, shared embedded clients, term ids),
:mod:`~indexes.qdrant.store` (the collection: schema and points), :mod:`~indexes.qdrant.views`
(the three index views, saving and reopening them).
"""

from indexes.qdrant.connection import (
    FORMAT_VERSION,
    KIND_BM25,
    KIND_DENSE,
    KIND_SPARSE,
    KINDS,
    WRITE_BATCH,
    _qdrant,  # noqa: F401  (old private name, used by tests of the install hint)
    qdrant_models,
    term_id,
)
from indexes.qdrant.store import QdrantStore
from indexes.qdrant.views import (
    QdrantBM25Index,
    QdrantDenseIndex,
    QdrantSparseIndex,
    QdrantView,
    _QdrantView,  # noqa: F401  (old private name)
    is_qdrant_index,
    load_qdrant_index,
)

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "KIND_BM25",
    "KIND_DENSE",
    "KIND_SPARSE",
    "WRITE_BATCH",
    "QdrantBM25Index",
    "QdrantDenseIndex",
    "QdrantSparseIndex",
    "QdrantStore",
    "QdrantView",
    "is_qdrant_index",
    "load_qdrant_index",
    "qdrant_models",
    "term_id",
]
