"""The HTTP API: request and response models, the use cases, and the one error path."""
