"""Haversine distances and travel times."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jobworker.routes.matrix import EARTH_RADIUS_KM, HaversineMatrixBuilder, Point, haversine_km


def test_haversine__one_degree_of_latitude__about_111_km() -> None:
    distance = haversine_km([Point(0.0, 0.0), Point(1.0, 0.0)])

    assert distance[0, 1] == pytest.approx(EARTH_RADIUS_KM * math.pi / 180)
    assert distance[0, 1] == pytest.approx(111.195, abs=0.001)


def test_haversine__paris_to_london__known_distance() -> None:
    distance = haversine_km([Point(48.8566, 2.3522), Point(51.5074, -0.1278)])

    assert distance[0, 1] == pytest.approx(343.5, abs=1.0)


def test_haversine__antipodes__half_the_circumference() -> None:
    distance = haversine_km([Point(0.0, 0.0), Point(0.0, 180.0)])

    assert distance[0, 1] == pytest.approx(math.pi * EARTH_RADIUS_KM)


def test_haversine__many_points__symmetric_zero_diagonal_and_chunks_agree() -> None:
    rng = np.random.default_rng(5)
    points = [Point(float(a), float(b)) for a, b in rng.uniform(-60, 60, size=(600, 2))]

    distance = haversine_km(points)

    assert distance.shape == (600, 600)
    assert np.allclose(distance, distance.T)
    assert np.all(np.diag(distance) == 0)
    # Rows from different chunks of the computation agree with a pair computed alone.
    for i, j in [(0, 599), (300, 17), (599, 256)]:
        alone = haversine_km([points[i], points[j]])[0, 1]
        assert distance[i, j] == pytest.approx(alone)


def test_builder__duration_follows_speed() -> None:
    matrices = HaversineMatrixBuilder(speed_kmh=60).build([Point(0, 0), Point(1, 0)])

    assert matrices.duration_minutes[0, 1] == pytest.approx(matrices.distance_km[0, 1])


def test_builder__speed_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        HaversineMatrixBuilder(speed_kmh=0)
