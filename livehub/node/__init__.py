"""One node's process plumbing: the service nursery, workers, admission, metrics, logs."""
