"""Job kinds, the plugin API: a registry from a job's ``kind`` to the function that does it."""

from jobworker.kinds.registry import (
    SYSTEM_CLOCK,
    Admission,
    Clock,
    JobContext,
    JobHandler,
    JobOutcome,
    JobSignals,
    KindSpec,
    Limits,
    NotEnoughTime,
    SetupEstimate,
    SetupTime,
    StopSignals,
    SystemClock,
    admission_problems,
    handler_for,
    job_kind,
    kind_spec,
    known_kinds,
    load_plugins,
)

__all__ = ["SYSTEM_CLOCK", "Admission", "Clock", "JobContext", "JobHandler", "JobOutcome",
           "JobSignals", "KindSpec", "Limits", "NotEnoughTime", "SetupEstimate", "SetupTime",
           "StopSignals", "SystemClock",
           "admission_problems", "handler_for", "job_kind", "kind_spec", "known_kinds",
           "load_plugins"]
