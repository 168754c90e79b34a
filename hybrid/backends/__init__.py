"""Scale-out backends: Qdrant as the vector store (:mod:`hybrid.backends.qdrant`) and Ray for
distributed encoding (:mod:`hybrid.backends.distributed`). Each needs its extra
(``splade-hybrid[qdrant]``, ``splade-hybrid[ray]``), imported only when used."""
