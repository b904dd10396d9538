"""Vector and lexical indexes: FAISS, a numpy reference, and BM25 (bm25s)."""

from xnai.adapters.index.bm25_index import Bm25LexicalIndex
from xnai.adapters.index.faiss_index import FaissVectorIndex
from xnai.adapters.index.numpy_index import NumpyVectorIndex

__all__ = ["Bm25LexicalIndex", "FaissVectorIndex", "NumpyVectorIndex"]
