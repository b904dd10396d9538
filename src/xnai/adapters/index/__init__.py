"""Vector and lexical indexes: FAISS and BM25 (bm25s); the numpy reference is in memory."""

from xnai.adapters.index.bm25_index import Bm25LexicalIndex
from xnai.adapters.index.faiss_index import FaissVectorIndex

__all__ = ["Bm25LexicalIndex", "FaissVectorIndex"]
