-- Every statement jobworker runs at run time, named for what it does and kept alphabetical.
-- Conventions:
--   * :now is optional everywhere; NULL means the database clock. Tests pass a value to move
--     time instead of sleeping.
--   * Every state change names the state it expects in its WHERE clause. Zero rows back means
--     "refused" and the Python side turns that into a typed error, never a silent no-op.
--   * Worker-side changes are fenced by (lease_owner, attempts): a worker that lost its lease
--     cannot touch the row again, even if the same job was claimed again since.
--   * Every UPDATE sets updated_at itself, so the jobs_before_update trigger (there for raw
--     SQL) stays out of the hot path.

-- name: job_cancel_if_owned
-- A running job whose cancellation was requested stops; the owner records the end.
UPDATE jobs
   SET updated_at = clock_timestamp(),
       progress = 'CANCELLED',
       finished_at = COALESCE(CAST(:now AS timestamptz), now()),
       lease_owner = NULL,
       lease_expires_at = NULL,
       error = 'cancelled on request while running',
       attempt_history = attempt_history || jobs_attempt_entry(
           attempts, lease_owner, 'cancelled', NULL, started_at,
           COALESCE(CAST(:now AS timestamptz), now()))
 WHERE job_id = :job_id
   AND progress = 'RUNNING'
   AND lease_owner = :owner
   AND attempts = :attempt
RETURNING job_id;

-- name: job_cancel_or_request
-- PENDING/QUEUED jobs are cancelled at once; a RUNNING job gets a request its worker honours
-- at its next heartbeat.
UPDATE jobs
   SET updated_at = clock_timestamp(),
       progress = CASE WHEN progress = 'RUNNING' THEN progress
                       ELSE 'CANCELLED'::progressenum END,
       finished_at = CASE WHEN progress = 'RUNNING' THEN NULL
                          ELSE COALESCE(CAST(:now AS timestamptz), now()) END,
       cancel_requested = (progress = 'RUNNING'),
       error = CASE WHEN progress = 'RUNNING' THEN error ELSE 'cancelled on request' END
 WHERE job_id = :job_id
   AND progress IN ('PENDING', 'QUEUED', 'RUNNING')
RETURNING {job_columns};

-- name: job_claim_batch
-- The heart of the queue: lock up to :limit runnable jobs that nobody else has locked, in
-- claim order, and take a lease on them, all in one statement. The inner SELECT walks the
-- partial index jobs_queued_claim_idx, so finished jobs never slow it down; the ids it
-- returns drive the UPDATE by primary key (= ANY(ARRAY(...)) plans that way whatever the
-- table's statistics say, where a join could choose to scan the table).
UPDATE jobs AS j
   SET updated_at = clock_timestamp(),
       progress = 'RUNNING',
       started_at = COALESCE(CAST(:now AS timestamptz), now()),
       attempts = j.attempts + 1,
       lease_owner = :owner,
       lease_expires_at = COALESCE(CAST(:now AS timestamptz), now())
                          + make_interval(secs => :lease_seconds),
       cancel_requested = false
 WHERE j.job_id = ANY(ARRAY(
           SELECT job_id
             FROM jobs
            WHERE progress = 'QUEUED'
              AND run_at <= COALESCE(CAST(:now AS timestamptz), now())
            ORDER BY priority, run_at
            LIMIT :limit
              FOR UPDATE SKIP LOCKED))
-- The payload comes back as text: a worker decodes it only for the kinds that read it.
RETURNING j.job_id, j.kind, CAST(j.payload AS text) AS payload, j.attempts, j.max_attempts,
          j.priority, j.run_at;

-- name: job_complete_if_owned
UPDATE jobs
   SET updated_at = clock_timestamp(),
       progress = 'COMPLETED',
       finished_at = COALESCE(CAST(:now AS timestamptz), now()),
       lease_owner = NULL,
       lease_expires_at = NULL,
       result = CAST(:result AS jsonb),
       route_group_id = COALESCE(CAST(:route_group_id AS uuid), route_group_id),
       error = NULL,
       attempt_history = attempt_history || jobs_attempt_entry(
           attempts, lease_owner, 'completed', NULL, started_at,
           COALESCE(CAST(:now AS timestamptz), now()))
 WHERE job_id = :job_id
   AND progress = 'RUNNING'
   AND lease_owner = :owner
   AND attempts = :attempt
RETURNING job_id;

-- name: job_complete_many_if_owned
-- Batch form of job_complete_if_owned: one round trip for a whole batch, same fence per row.
-- Answers with the jobs it could NOT complete (their lease was lost): normally none, so a
-- batch of a thousand completions sends nothing back.
WITH done AS (
    SELECT *
      FROM unnest(CAST(:job_ids AS uuid[]), CAST(:attempts AS int[]), CAST(:results AS jsonb[]))
           AS done(job_id, attempt, result)
), completed AS (
    UPDATE jobs AS j
       SET updated_at = clock_timestamp(),
           progress = 'COMPLETED',
           finished_at = COALESCE(CAST(:now AS timestamptz), now()),
           lease_owner = NULL,
           lease_expires_at = NULL,
           result = done.result,
           error = NULL,
           attempt_history = j.attempt_history || jobs_attempt_entry(
               j.attempts, j.lease_owner, 'completed', NULL, j.started_at,
               COALESCE(CAST(:now AS timestamptz), now()))
      FROM done
     WHERE j.job_id = done.job_id
       AND (j.progress = 'RUNNING' AND j.lease_owner = :owner AND j.attempts = done.attempt)
           IS TRUE  -- one condition: see job_extend_leases
    RETURNING j.job_id
)
SELECT job_id
  FROM done
 WHERE job_id NOT IN (SELECT job_id FROM completed);

-- name: job_count_by_progress
SELECT progress::text AS progress, count(*) AS jobs
  FROM jobs
 GROUP BY progress;

-- name: job_create
-- ON CONFLICT makes a retried request with the same idempotency key a no-op; the caller then
-- reads the existing job with job_get_by_idempotency_key.
INSERT INTO jobs (kind, progress, payload, priority, run_at, max_attempts,
                  idempotency_key, request_hash, created_at, updated_at)
VALUES (:kind, CAST(:progress AS progressenum), CAST(:payload AS jsonb), :priority,
        COALESCE(CAST(:run_at AS timestamptz), CAST(:now AS timestamptz), now()),
        :max_attempts, :idempotency_key, :request_hash,
        COALESCE(CAST(:now AS timestamptz), now()), COALESCE(CAST(:now AS timestamptz), now()))
ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING {job_columns};

-- name: job_create_many
-- Bulk insert of already-validated jobs: one statement however many rows.
INSERT INTO jobs (kind, progress, payload, priority, run_at, max_attempts, created_at, updated_at)
SELECT new.kind, CAST(:progress AS progressenum), new.payload, new.priority,
       COALESCE(new.run_at, CAST(:now AS timestamptz), now()), new.max_attempts,
       COALESCE(CAST(:now AS timestamptz), now()), COALESCE(CAST(:now AS timestamptz), now())
  FROM unnest(CAST(:kinds AS text[]), CAST(:payloads AS jsonb[]), CAST(:priorities AS smallint[]),
              CAST(:run_ats AS timestamptz[]), CAST(:max_attempts AS integer[]))
       AS new(kind, payload, priority, run_at, max_attempts)
RETURNING job_id;

-- name: job_enqueue
UPDATE jobs
   SET updated_at = clock_timestamp(),
       progress = 'QUEUED',
       run_at = GREATEST(run_at, COALESCE(CAST(:now AS timestamptz), now()))
 WHERE job_id = :job_id
   AND progress = 'PENDING'
RETURNING {job_columns};

-- name: job_extend_leases
-- Heartbeat for every job a worker holds. Rows that come back are still owned; a job that is
-- missing from the answer was lost. cancel_requested tells the worker to stop.
UPDATE jobs AS j
   SET updated_at = clock_timestamp(),
       lease_expires_at = COALESCE(CAST(:now AS timestamptz), now())
                          + make_interval(secs => :lease_seconds)
  FROM unnest(CAST(:job_ids AS uuid[]), CAST(:attempts AS int[])) AS held(job_id, attempt)
 WHERE j.job_id = held.job_id
   -- The fence as one condition, checked on the row each id finds. As three conditions the
   -- planner would filter jobs by progress first, trusting statistics that (taken while little
   -- ran) say almost nothing is RUNNING, and then compare every RUNNING row with every id.
   AND (j.progress = 'RUNNING' AND j.lease_owner = :owner AND j.attempts = held.attempt)
       IS TRUE
RETURNING j.job_id, j.cancel_requested;

-- name: job_fail_if_owned
-- Ends the attempt. When :permanent is false and attempts remain, the job goes back to QUEUED
-- with exponential backoff and jitter on run_at; otherwise it is FAILED with the last error.
UPDATE jobs
   SET updated_at = clock_timestamp(),
       progress = CASE WHEN NOT :permanent AND attempts < max_attempts
                       THEN 'QUEUED'::progressenum ELSE 'FAILED'::progressenum END,
       finished_at = CASE WHEN NOT :permanent AND attempts < max_attempts
                          THEN NULL ELSE COALESCE(CAST(:now AS timestamptz), now()) END,
       run_at = CASE WHEN NOT :permanent AND attempts < max_attempts
                     THEN COALESCE(CAST(:now AS timestamptz), now()) + make_interval(secs =>
                          LEAST(:backoff_cap_seconds,
                                :backoff_base_seconds * power(2, attempts - 1))
                          * (0.5 + random() * 0.5))
                     ELSE run_at END,
       started_at = CASE WHEN NOT :permanent AND attempts < max_attempts
                         THEN NULL ELSE started_at END,
       lease_owner = NULL,
       lease_expires_at = NULL,
       error = :error,
       attempt_history = attempt_history || jobs_attempt_entry(
           attempts, lease_owner, CASE WHEN :permanent THEN 'failed' ELSE 'error' END,
           CAST(:error AS text), started_at, COALESCE(CAST(:now AS timestamptz), now()))
 WHERE job_id = :job_id
   AND progress = 'RUNNING'
   AND lease_owner = :owner
   AND attempts = :attempt
RETURNING job_id, progress::text AS progress, run_at;

-- name: job_fail_timed_out
-- The seed's rule: a job RUNNING for longer than job_timeout_minutes is FAILED, whoever holds it.
UPDATE jobs
   SET updated_at = clock_timestamp(),
       progress = 'FAILED',
       finished_at = COALESCE(CAST(:now AS timestamptz), now()),
       lease_owner = NULL,
       lease_expires_at = NULL,
       error = format('timed out: RUNNING for longer than job_timeout_minutes (%s min)',
                      :timeout_minutes),
       attempt_history = attempt_history || jobs_attempt_entry(
           attempts, lease_owner, 'timed_out', NULL, started_at,
           COALESCE(CAST(:now AS timestamptz), now()))
 WHERE progress = 'RUNNING'
   AND lease_expires_at IS NOT NULL  -- always true while RUNNING; lets the lease index list them
   AND started_at < COALESCE(CAST(:now AS timestamptz), now())
                    - make_interval(mins => :timeout_minutes)
RETURNING job_id;

-- name: job_finished_per_minute
-- Jobs that ended in each minute since :since, by how they ended (the dashboard's throughput
-- chart). Reads the partial index on finished_at: only the last hour's rows are visited.
SELECT date_trunc('minute', finished_at) AS minute, progress::text AS progress,
       count(*) AS jobs
  FROM jobs
 WHERE finished_at >= CAST(:since AS timestamptz)
 GROUP BY 1, 2
 ORDER BY 1, 2;

-- name: job_get
SELECT {job_columns} FROM jobs WHERE job_id = :job_id;

-- name: job_get_by_idempotency_key
SELECT {job_columns} FROM jobs WHERE idempotency_key = :idempotency_key;

-- name: job_list
-- Newest first, keyset-paginated on (created_at, job_id) so deep pages stay cheap.
SELECT {job_columns}
  FROM jobs
 WHERE (CAST(:progress AS progressenum) IS NULL OR progress = CAST(:progress AS progressenum))
   AND (CAST(:kind AS text) IS NULL OR kind = CAST(:kind AS text))
   AND (CAST(:before_created_at AS timestamptz) IS NULL
        OR (created_at, job_id) < (CAST(:before_created_at AS timestamptz),
                                   CAST(:before_job_id AS uuid)))
 ORDER BY created_at DESC, job_id DESC
 LIMIT :limit;

-- name: job_list_stuck
-- The seed's stuck-job query: RUNNING since before :started_before, oldest first, with whether
-- the lease has already run out (the sweeper will take those back on its own).
SELECT job_id, kind, lease_owner, attempts, max_attempts, started_at, lease_expires_at,
       EXTRACT(EPOCH FROM (COALESCE(CAST(:now AS timestamptz), now()) - started_at))::float8 / 60
           AS minutes_running,
       lease_expires_at < COALESCE(CAST(:now AS timestamptz), now()) AS lease_expired
  FROM jobs
 WHERE progress = 'RUNNING'
   AND lease_expires_at IS NOT NULL  -- always true while RUNNING; lets the lease index list them
   AND started_at < CAST(:started_before AS timestamptz)
 ORDER BY started_at;

-- name: job_progress
SELECT progress::text AS progress FROM jobs WHERE job_id = :job_id;

-- name: job_prune_finished
-- Deletes a bounded slice of terminal jobs older than the retention period. Route groups the
-- jobs produced are kept (jobs reference them, not the other way round).
DELETE FROM jobs
 WHERE job_id IN (
     SELECT job_id
       FROM jobs
      WHERE finished_at < COALESCE(CAST(:now AS timestamptz), now())
                          - make_interval(days => :retention_days)
      LIMIT :limit)
RETURNING job_id;

-- name: job_queued_summary
-- Depth of the queue and age of its oldest job, read from the partial index of QUEUED rows
-- alone (the sweeper asks every minute; finished jobs must not make that slower).
SELECT count(*) AS depth,
       EXTRACT(EPOCH FROM (COALESCE(CAST(:now AS timestamptz), now()) - min(run_at)))::float8
           AS oldest_age_seconds
  FROM jobs
 WHERE progress = 'QUEUED';

-- name: job_recover_orphans
-- Jobs whose lease ran out belonged to a worker that died or stalled: back to QUEUED so another
-- worker can take them, or FAILED when that was their last attempt (a poison job ends here).
UPDATE jobs
   SET updated_at = clock_timestamp(),
       progress = CASE WHEN attempts < max_attempts
                       THEN 'QUEUED'::progressenum ELSE 'FAILED'::progressenum END,
       finished_at = CASE WHEN attempts < max_attempts
                          THEN NULL ELSE COALESCE(CAST(:now AS timestamptz), now()) END,
       started_at = CASE WHEN attempts < max_attempts THEN NULL ELSE started_at END,
       run_at = CASE WHEN attempts < max_attempts
                     THEN COALESCE(CAST(:now AS timestamptz), now()) ELSE run_at END,
       error = format('worker lost: lease of %s expired during attempt %s of %s',
                      lease_owner, attempts, max_attempts),
       lease_owner = NULL,
       lease_expires_at = NULL,
       attempt_history = attempt_history || jobs_attempt_entry(
           attempts, lease_owner, 'lease_expired', NULL, started_at,
           COALESCE(CAST(:now AS timestamptz), now()))
 WHERE progress = 'RUNNING'
   AND lease_expires_at < COALESCE(CAST(:now AS timestamptz), now())
RETURNING job_id, progress::text AS progress;

-- name: job_release_many_if_owned
-- Hands claimed-but-unstarted jobs back without using up an attempt.
UPDATE jobs AS j
   SET updated_at = clock_timestamp(),
       progress = 'QUEUED',
       started_at = NULL,
       attempts = j.attempts - 1,
       lease_owner = NULL,
       lease_expires_at = NULL,
       cancel_requested = false
  FROM unnest(CAST(:job_ids AS uuid[]), CAST(:attempts AS int[])) AS held(job_id, attempt)
 WHERE j.job_id = held.job_id
   AND (j.progress = 'RUNNING' AND j.lease_owner = :owner AND j.attempts = held.attempt)
       IS TRUE  -- one condition: see job_extend_leases
RETURNING j.job_id;

-- name: job_requeue_by_hand
-- The seed's manual reset, done safely: a RUNNING job goes back to QUEUED only when its lease
-- ran out (the worker is gone) or when the operator forces it. The attempt is recorded as
-- ended by hand, and at least one attempt is left so that the job can run again.
UPDATE jobs
   SET updated_at = clock_timestamp(),
       progress = 'QUEUED',
       started_at = NULL,
       run_at = COALESCE(CAST(:now AS timestamptz), now()),
       attempts = LEAST(attempts, max_attempts - 1),
       lease_owner = NULL,
       lease_expires_at = NULL,
       cancel_requested = false,
       attempt_history = attempt_history || jobs_attempt_entry(
           attempts, lease_owner, 'requeued_by_hand', NULL, started_at,
           COALESCE(CAST(:now AS timestamptz), now()))
 WHERE job_id = :job_id
   AND progress = 'RUNNING'
   AND (CAST(:force AS boolean) OR lease_expires_at < COALESCE(CAST(:now AS timestamptz), now()))
RETURNING {job_columns};

-- name: job_retry
-- A FAILED or CANCELLED job is queued again with a fresh set of attempts.
UPDATE jobs
   SET updated_at = clock_timestamp(),
       progress = 'QUEUED',
       attempts = 0,
       run_at = COALESCE(CAST(:now AS timestamptz), now()),
       started_at = NULL,
       finished_at = NULL,
       cancel_requested = false,
       error = NULL,
       result = NULL
 WHERE job_id = :job_id
   AND progress IN ('FAILED', 'CANCELLED')
RETURNING {job_columns};

-- name: route_group_get
SELECT route_group_id, job_id, created_at, depot_lat, depot_lon, solver, notes, travel, depots
  FROM route_groups
 WHERE route_group_id = :route_group_id;

-- name: route_group_insert
INSERT INTO route_groups (job_id, depot_lat, depot_lon, total_distance_km,
                          total_duration_minutes, vehicles_used, locations_served, solver, notes,
                          total_cost, locations_unassigned, travel, depots)
VALUES (:job_id, :depot_lat, :depot_lon, :total_distance_km, :total_duration_minutes,
        :vehicles_used, :locations_served, CAST(:solver AS jsonb), CAST(:notes AS jsonb),
        :total_cost, :locations_unassigned, CAST(:travel AS jsonb), CAST(:depots AS jsonb))
RETURNING route_group_id;

-- name: route_insert_many
-- Per-dimension loads travel as JSON arrays of arrays (unnest cannot take a 2-D array apart
-- row by row).
INSERT INTO routes (route_group_id, vehicle, load, distance_km, duration_minutes,
                    start_minute, end_minute, distance_to_depot_km, vehicle_type, vehicle_index,
                    start_depot, start_lat, start_lon, end_depot, end_lat, end_lon, delivery,
                    pickup, cost, geometry)
SELECT :route_group_id, r.vehicle, r.load, r.distance_km, r.duration_minutes, r.start_minute,
       r.end_minute, r.to_depot, r.vehicle_type, r.vehicle_index, r.start_depot, r.start_lat,
       r.start_lon, r.end_depot, r.end_lat, r.end_lon,
       ARRAY(SELECT CAST(jsonb_array_elements_text(r.delivery) AS bigint)),
       ARRAY(SELECT CAST(jsonb_array_elements_text(r.pickup) AS bigint)), r.cost,
       NULLIF(r.geometry, 'null'::jsonb)
  FROM unnest(CAST(:vehicles AS int[]), CAST(:loads AS bigint[]), CAST(:distances AS float8[]),
              CAST(:durations AS float8[]), CAST(:starts AS float8[]), CAST(:ends AS float8[]),
              CAST(:to_depot AS float8[]), CAST(:vehicle_types AS text[]),
              CAST(:vehicle_indexes AS int[]), CAST(:start_depots AS text[]),
              CAST(:start_lats AS float8[]), CAST(:start_lons AS float8[]),
              CAST(:end_depots AS text[]), CAST(:end_lats AS float8[]),
              CAST(:end_lons AS float8[]), CAST(:deliveries AS jsonb[]),
              CAST(:pickups AS jsonb[]), CAST(:costs AS float8[]),
              CAST(:geometries AS jsonb[]))
       AS r(vehicle, load, distance_km, duration_minutes, start_minute, end_minute, to_depot,
            vehicle_type, vehicle_index, start_depot, start_lat, start_lon, end_depot, end_lat,
            end_lon, delivery, pickup, cost, geometry);

-- name: route_list_for_group
SELECT vehicle, load, distance_km, duration_minutes, start_minute, end_minute,
       distance_to_depot_km, vehicle_type, vehicle_index, start_depot, start_lat, start_lon,
       end_depot, end_lat, end_lon, delivery, pickup, cost, geometry
  FROM routes
 WHERE route_group_id = :route_group_id
 ORDER BY vehicle;

-- name: route_stop_insert_many
INSERT INTO route_stops (route_group_id, vehicle, sequence, location_id, lat, lon,
                         arrival_minute, wait_minutes, departure_minute, demand,
                         cumulative_demand, distance_from_previous_km, start_service_minute,
                         service_minutes, duration_from_previous_minutes, delivery, pickup,
                         load_after, window_earliest, window_latest)
SELECT :route_group_id, s.vehicle, s.sequence, s.location_id, s.lat, s.lon, s.arrival,
       s.wait, s.departure, s.demand, s.cumulative, s.from_previous, s.start_service,
       s.service, s.travel,
       ARRAY(SELECT CAST(jsonb_array_elements_text(s.delivery) AS bigint)),
       ARRAY(SELECT CAST(jsonb_array_elements_text(s.pickup) AS bigint)),
       ARRAY(SELECT CAST(jsonb_array_elements_text(s.load_after) AS bigint)),
       s.window_earliest, s.window_latest
  FROM unnest(CAST(:vehicles AS int[]), CAST(:sequences AS int[]), CAST(:location_ids AS text[]),
              CAST(:lats AS float8[]), CAST(:lons AS float8[]), CAST(:arrivals AS float8[]),
              CAST(:waits AS float8[]), CAST(:departures AS float8[]), CAST(:demands AS bigint[]),
              CAST(:cumulative AS bigint[]), CAST(:from_previous AS float8[]),
              CAST(:start_services AS float8[]), CAST(:services AS float8[]),
              CAST(:travels AS float8[]), CAST(:deliveries AS jsonb[]),
              CAST(:pickups AS jsonb[]), CAST(:loads_after AS jsonb[]),
              CAST(:window_earliests AS float8[]), CAST(:window_latests AS float8[]))
       AS s(vehicle, sequence, location_id, lat, lon, arrival, wait, departure, demand,
            cumulative, from_previous, start_service, service, travel, delivery, pickup,
            load_after, window_earliest, window_latest);

-- name: route_stop_list_for_group
SELECT vehicle, sequence, location_id, lat, lon, arrival_minute, wait_minutes,
       departure_minute, demand, cumulative_demand, distance_from_previous_km,
       start_service_minute, service_minutes, duration_from_previous_minutes, delivery, pickup,
       load_after, window_earliest, window_latest
  FROM route_stops
 WHERE route_group_id = :route_group_id
 ORDER BY vehicle, sequence;

-- name: route_unassigned_insert_many
INSERT INTO route_unassigned (route_group_id, location_id, lat, lon, code, reason, required)
SELECT :route_group_id, u.*
  FROM unnest(CAST(:location_ids AS text[]), CAST(:lats AS float8[]), CAST(:lons AS float8[]),
              CAST(:codes AS text[]), CAST(:reasons AS text[]), CAST(:required AS bool[])) AS u;

-- name: route_unassigned_list_for_group
SELECT location_id, lat, lon, code, reason, required
  FROM route_unassigned
 WHERE route_group_id = :route_group_id
 ORDER BY location_id;
