"""Route generation: input models, distance matrices, the PyVRP solver entry point, output.

Knows nothing of queues, Lambda or the database. Importing this package imports nothing else:
``models`` and ``plan`` are light (pydantic / stdlib), ``solver`` pulls numpy, and PyVRP is
imported only inside :func:`jobworker.routes.solver.solve`.
"""
