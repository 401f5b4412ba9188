"""The dev kit (not in the Lambda layer): the ``jobworker`` command, the local stack
(``jobworker dev``), in-process invokes, and the embedded Postgres."""
