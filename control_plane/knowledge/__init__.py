"""Knowledge bases: documents → text → chunks → embeddings → Qdrant, and retrieval from them."""
