"""Route tables for fleets: what the route answer holds is what the tables hold.

Groups gain their cost, the count of stops left out, the travel times used and the depots;
routes their vehicle type and index, start and end, loads per dimension and cost; stops their
service start, service time, travel time from the previous stop, loads per dimension and the
window served; and every stop left out gets a row with its reason.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE route_groups
    ADD COLUMN total_cost double precision NOT NULL DEFAULT 0 CHECK (total_cost >= 0),
    ADD COLUMN locations_unassigned integer NOT NULL DEFAULT 0 CHECK (locations_unassigned >= 0),
    ADD COLUMN travel jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN depots jsonb NOT NULL DEFAULT '[]'::jsonb;
COMMENT ON COLUMN route_groups.travel IS 'Where travel times came from: provider, profiles, fell_back, reason.';

ALTER TABLE routes
    ADD COLUMN vehicle_type text NOT NULL DEFAULT 'vehicle',
    ADD COLUMN vehicle_index integer NOT NULL DEFAULT 1 CHECK (vehicle_index >= 1),
    ADD COLUMN start_depot text,
    ADD COLUMN start_lat double precision,
    ADD COLUMN start_lon double precision,
    ADD COLUMN end_depot text,
    ADD COLUMN end_lat double precision,
    ADD COLUMN end_lon double precision,
    ADD COLUMN delivery bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN pickup bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN cost double precision NOT NULL DEFAULT 0 CHECK (cost >= 0),
    ADD COLUMN geometry jsonb,
    ADD CONSTRAINT routes_end_is_a_place CHECK ((end_lat IS NULL) = (end_lon IS NULL));
COMMENT ON COLUMN routes.geometry IS 'Road geometry [[lon, lat], ...] when the travel provider gave one; NULL = straight lines.';
COMMENT ON COLUMN routes.end_lat IS 'NULL for an open route (it ends at its last stop).';

ALTER TABLE route_stops
    ADD COLUMN start_service_minute double precision NOT NULL DEFAULT 0,
    ADD COLUMN service_minutes double precision NOT NULL DEFAULT 0 CHECK (service_minutes >= 0),
    ADD COLUMN duration_from_previous_minutes double precision NOT NULL DEFAULT 0,
    ADD COLUMN delivery bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN pickup bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN load_after bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN window_earliest double precision,
    ADD COLUMN window_latest double precision,
    ADD CONSTRAINT route_stops_service_after_arrival
        CHECK (start_service_minute >= arrival_minute - 0.01);

CREATE TABLE route_unassigned (
    route_group_id uuid    NOT NULL REFERENCES route_groups ON DELETE CASCADE,
    location_id    text    NOT NULL,
    lat            double precision NOT NULL,
    lon            double precision NOT NULL,
    code           text    NOT NULL,
    reason         text    NOT NULL,
    required       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (route_group_id, location_id)
);
COMMENT ON TABLE route_unassigned IS 'Stops a route group leaves out, each with the reason.';
"""

DOWNGRADE = """
DROP TABLE route_unassigned;
ALTER TABLE route_stops
    DROP CONSTRAINT route_stops_service_after_arrival,
    DROP COLUMN window_latest, DROP COLUMN window_earliest, DROP COLUMN load_after,
    DROP COLUMN pickup, DROP COLUMN delivery, DROP COLUMN duration_from_previous_minutes,
    DROP COLUMN service_minutes, DROP COLUMN start_service_minute;
ALTER TABLE routes
    DROP CONSTRAINT routes_end_is_a_place,
    DROP COLUMN geometry, DROP COLUMN cost, DROP COLUMN pickup, DROP COLUMN delivery, DROP COLUMN end_lon,
    DROP COLUMN end_lat, DROP COLUMN end_depot, DROP COLUMN start_lon, DROP COLUMN start_lat,
    DROP COLUMN start_depot, DROP COLUMN vehicle_index, DROP COLUMN vehicle_type;
ALTER TABLE route_groups
    DROP COLUMN depots, DROP COLUMN travel, DROP COLUMN locations_unassigned,
    DROP COLUMN total_cost;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
