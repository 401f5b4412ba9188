"""Route generation: input models, travel providers, the PyVRP solver entry point, output.

Knows nothing of queues, Lambda or the database (except ``job``, ``store`` and ``view``).
Importing this package imports nothing else: ``models``, ``checks``, ``plan`` and
``geojson`` are light (pydantic / stdlib); ``travel``, ``build`` and ``solver`` pull numpy,
and PyVRP is imported only inside :func:`jobworker.routes.solver.solve`.
"""
