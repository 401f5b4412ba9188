"""The poller: claim batches, run each job before the deadline, record how each ended."""
