"""Job kinds, the plugin API: a registry from a job's ``kind`` to the function that does it."""

from jobworker.kinds.registry import (
    JobContext,
    JobHandler,
    JobOutcome,
    JobSignals,
    KindSpec,
    handler_for,
    job_kind,
    kind_spec,
    known_kinds,
    load_plugins,
)

__all__ = ["JobContext", "JobHandler", "JobOutcome", "JobSignals", "KindSpec", "handler_for",
           "job_kind", "kind_spec", "known_kinds", "load_plugins"]
