"""Road-network travel-time providers; each module registers itself with
:func:`jobworker.routes.travel.register_provider` when imported (``travel.provider_for`` imports
them by name on first use).

- :mod:`.osrm`: OSRM in the process, reading a dataset ``jobworker roads build`` prepared.
- :mod:`.osrm_http`: a user's own OSRM server (``/table`` and ``/route``).
- :mod:`.amazon_location`: Amazon Location's ``geo-routes`` ``CalculateRouteMatrix``.
"""
