"""jobworker: a job queue whose queue is the PostgreSQL table ``jobs``.

Importing this package has no side effects beyond the library-standard NullHandler: no
connection, no environment parsing.
"""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
