"""jobworker: a job queue whose queue is the PostgreSQL table ``jobs``.

Importing this package has no side effects: no connection, no environment parsing.
"""

__version__ = "0.1.0"
