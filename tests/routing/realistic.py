"""A generated city for route generation: 300 stops (+3 remote), 3 depots, 3 vehicle types.

Skills (a tenth of the stops need a refrigerated vehicle, one in twenty a tail lift), two time
windows (morning or late afternoon) on a tenth of the stops, one window on a fifth, some
optional stops with a penalty, pickups, two load dimensions (kg, crates). Used by
``tests/routing/test_routing_realistic.py``.
``python -m tests.routing.realistic OUT.geojson [SECONDS]`` solves it and writes the plan's
GeoJSON, and OUT.png drawn from it (the picture in the README).
"""

from __future__ import annotations

import json
import random
import sys
from typing import Any

CENTRE = (52.37, 4.89)  # Amsterdam


def city_request(stops: int = 300, *, seed: int = 12, runtime: float = 10) -> dict[str, Any]:
    rng = random.Random(seed)
    locations: list[dict[str, Any]] = []
    for i in range(stops):
        stop: dict[str, Any] = {
            "id": f"C{i:03d}",
            "lat": round(CENTRE[0] + rng.gauss(0, 0.035), 5),
            "lon": round(CENTRE[1] + rng.gauss(0, 0.06), 5),
            "demand": [rng.randint(2, 15), rng.randint(0, 2)],
            "service_minutes": rng.choice([3, 5, 5, 8, 10]),
        }
        if i % 10 == 3:
            stop["skills"] = ["fridge"]
        elif i % 20 == 7:
            stop["skills"] = ["tail-lift"]
        if i % 10 == 5:
            stop["time_windows"] = [{"earliest": 480, "latest": 660},
                                    {"earliest": 900, "latest": 1080}]
        elif i % 5 == 1:
            opens = rng.choice([480, 600, 720, 840])
            stop["time_window"] = {"earliest": opens, "latest": opens + 180}
        if i % 13 == 6:
            stop.update(required=False, penalty=rng.choice([20, 60, 200]))
        if i % 8 == 2:
            stop["pickup"] = [rng.randint(1, 5), 0]
        locations.append(stop)
    # Three optional stops out of town whose penalty is less than the trip: left out.
    for k, (lat, lon) in enumerate([(52.62, 4.70), (52.10, 5.15), (52.50, 5.30)]):
        locations.append({"id": f"remote-{k}", "lat": lat, "lon": lon, "demand": [5, 0],
                          "required": False, "penalty": 5})
    return {
        "location_group": {
            "depots": [
                {"id": "hub-west", "lat": 52.37, "lon": 4.80},
                {"id": "hub-north", "lat": 52.41, "lon": 4.92},
                {"id": "hub-south", "lat": 52.33, "lon": 4.90},
            ],
            "locations": locations,
        },
        "settings": {
            "vehicles": [
                {"id": "van", "count": 10, "capacity": [200, 20], "start": "hub-west",
                 "end": "hub-west", "shift": {"earliest": 420, "latest": 1140},
                 "cost_per_km": 0.4, "cost_per_hour": 30},
                {"id": "truck", "count": 3, "capacity": [600, 40], "start": "hub-south",
                 "end": "hub-south", "skills": ["tail-lift"], "fixed_cost": 80,
                 "cost_per_km": 0.9, "cost_per_hour": 35, "speed_factor": 0.85,
                 "max_route_minutes": 600, "shift": {"earliest": 420, "latest": 1200}},
                {"id": "reefer", "count": 3, "capacity": [250, 25], "start": "hub-north",
                 "end": "hub-north", "skills": ["fridge"], "fixed_cost": 40,
                 "cost_per_km": 0.6, "cost_per_hour": 32, "max_distance_km": 250,
                 "shift": {"earliest": 360, "latest": 1140}},
            ],
            "speed_kmh": 25,
            "max_runtime_seconds": runtime,
            "seed": 7,
        },
    }


def draw(collection: dict[str, Any], png: str) -> None:
    """The GeoJSON as a picture: a colour per vehicle type, depots as squares, left-out as x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"van": "tab:blue", "truck": "tab:orange", "reefer": "tab:green"}
    fig, ax = plt.subplots(figsize=(9, 7), dpi=110)
    for feature in collection["features"]:
        props, geometry = feature["properties"], feature["geometry"]
        if props["role"] == "route":
            xs, ys = zip(*geometry["coordinates"], strict=True)
            ax.plot(xs, ys, lw=1, color=colours.get(props["vehicle_type"], "grey"), alpha=0.8)
        elif props["role"] == "stop":
            ax.plot(*geometry["coordinates"], "o", ms=2.5,
                    color=colours.get(props["vehicle_type"], "grey"))
        elif props["role"] == "depot":
            ax.plot(*geometry["coordinates"], "ks", ms=8)
            ax.annotate(props["depot_id"], geometry["coordinates"], xytext=(5, 5),
                        textcoords="offset points")
        elif props["role"] == "unassigned":
            ax.plot(*geometry["coordinates"], "rx", ms=8)
    for name, colour in colours.items():
        ax.plot([], [], color=colour, label=name)
    ax.plot([], [], "rx", label="unassigned")
    ax.legend(loc="lower right")
    totals = collection["properties"]
    ax.set_title(f"{totals['vehicles_used']} routes, {totals['locations_served']} stops, "
                 f"{totals['total_distance_km']:.0f} km, cost {totals['total_cost']:.0f}")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    fig.savefig(png, bbox_inches="tight")


def main(argv: list[str]) -> int:
    from jobworker.routes.build import problem_from_request
    from jobworker.routes.geojson import plan_to_geojson
    from jobworker.routes.models import GenerateRoutesRequest
    from jobworker.routes.solver import solve

    request = GenerateRoutesRequest.model_validate(city_request(runtime=float(argv[1])
                                                               if len(argv) > 1 else 30))
    plan = solve(problem_from_request(request),
                 time_limit_seconds=request.settings.max_runtime_seconds)
    collection = plan_to_geojson(plan)
    with open(argv[0], "w", encoding="utf-8") as out:
        json.dump(collection, out, separators=(",", ":"))
    draw(collection, argv[0].removesuffix(".geojson") + ".png")
    print(json.dumps(plan.totals()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
