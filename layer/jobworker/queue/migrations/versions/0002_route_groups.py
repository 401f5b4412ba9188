"""Route groups, their routes and ordered stops: what a generate_routes job produces.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE route_groups (
    route_group_id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id                 uuid,
    created_at             timestamptz NOT NULL DEFAULT now(),
    depot_lat              double precision NOT NULL,
    depot_lon              double precision NOT NULL,
    total_distance_km      double precision NOT NULL CHECK (total_distance_km >= 0),
    total_duration_minutes double precision NOT NULL CHECK (total_duration_minutes >= 0),
    vehicles_used          integer     NOT NULL CHECK (vehicles_used >= 0),
    locations_served       integer     NOT NULL CHECK (locations_served >= 0),
    solver                 jsonb       NOT NULL,
    notes                  jsonb       NOT NULL DEFAULT '[]'::jsonb
);
COMMENT ON TABLE route_groups IS 'One solved routing problem; kept when the job that made it is pruned.';
COMMENT ON COLUMN route_groups.job_id IS 'The job that produced it (no foreign key: jobs are pruned, results are kept).';
CREATE INDEX route_groups_job_idx ON route_groups (job_id);

CREATE TABLE routes (
    route_group_id       uuid    NOT NULL REFERENCES route_groups ON DELETE CASCADE,
    vehicle              integer NOT NULL CHECK (vehicle >= 1),
    load                 integer NOT NULL CHECK (load >= 0),
    distance_km          double precision NOT NULL CHECK (distance_km >= 0),
    duration_minutes     double precision NOT NULL CHECK (duration_minutes >= 0),
    start_minute         double precision NOT NULL,
    end_minute           double precision NOT NULL,
    distance_to_depot_km double precision NOT NULL,
    PRIMARY KEY (route_group_id, vehicle),
    CONSTRAINT routes_end_after_start CHECK (end_minute >= start_minute)
);

CREATE TABLE route_stops (
    route_group_id            uuid    NOT NULL,
    vehicle                   integer NOT NULL,
    sequence                  integer NOT NULL CHECK (sequence >= 1),
    location_id               text    NOT NULL,
    lat                       double precision NOT NULL,
    lon                       double precision NOT NULL,
    arrival_minute            double precision NOT NULL,
    wait_minutes              double precision NOT NULL CHECK (wait_minutes >= 0),
    departure_minute          double precision NOT NULL,
    demand                    integer NOT NULL CHECK (demand >= 0),
    cumulative_demand         integer NOT NULL CHECK (cumulative_demand >= 0),
    distance_from_previous_km double precision NOT NULL,
    PRIMARY KEY (route_group_id, vehicle, sequence),
    FOREIGN KEY (route_group_id, vehicle) REFERENCES routes ON DELETE CASCADE,
    CONSTRAINT route_stops_location_once UNIQUE (route_group_id, location_id)
);

ALTER TABLE jobs ADD CONSTRAINT jobs_route_group_fk
    FOREIGN KEY (route_group_id) REFERENCES route_groups ON DELETE SET NULL;
"""

DOWNGRADE = """
ALTER TABLE jobs DROP CONSTRAINT jobs_route_group_fk;
DROP TABLE route_stops;
DROP TABLE routes;
DROP TABLE route_groups;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
