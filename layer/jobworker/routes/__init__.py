"""Route generation: input models, travel providers, the PyVRP solver entry point, output.

Knows nothing of queues, Lambda or the database, except at its edges: ``job``, ``store`` and
``view`` (the queue and the database) and the road providers in ``providers`` (boto3, for
Amazon Location's API and for an OSRM dataset copied from S3); import-linter checks the rest.
Importing this package imports nothing else: ``models``, ``checks``, ``plan`` and
``geojson`` are light (pydantic / stdlib); ``travel``, ``build`` and ``solver`` pull numpy,
and PyVRP is imported only inside :func:`jobworker.routes.solver.solve`.
"""
