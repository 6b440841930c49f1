"""Floor 3: retrieval protocols and metrics."""
