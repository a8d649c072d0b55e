"""Vector storage and search: loading a field's vectors, metrics, faiss indexes."""
