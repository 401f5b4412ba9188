-- Every statement jobworker runs at run time, named for what it does and kept alphabetical.
-- Conventions:
--   * :now is optional everywhere; NULL means the database clock. Tests pass a value to move
--     time instead of sleeping.
--   * Every state change names the state it expects in its WHERE clause. Zero rows back means
--     "refused" and the Python side turns that into a typed error, never a silent no-op.
--   * Worker-side changes are fenced by (lease_owner, lease_token): every claim takes a new
--     token, so a worker that lost its lease cannot touch the row again, even if the same job
--     was claimed again since (by anyone, itself included).
--   * An attempt is counted when the job starts (attempts + 1, attempt_started), not at claim:
--     a job claimed and never started goes back with its attempts intact.
--   * A requested cancel sticks: whatever ends a claim without running the job to its end
--     (release, recovery, retry backoff, the start itself) ends a cancel-requested job
--     CANCELLED, and a claim never clears the flag.
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
       attempt_started = false,
       error = 'cancelled on request while running',
       attempt_history = attempt_history || jobs_attempt_entry(
           attempts, lease_owner, 'cancelled', NULL, started_at,
           COALESCE(CAST(:now AS timestamptz), now()))
 WHERE job_id = :job_id
   AND progress = 'RUNNING'
   AND lease_owner = :owner
   AND lease_token = :token
   AND attempt_started  -- an attempt ends only once it started
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
-- Runs as the server function jobs_claim_batch, made from this text by jobworker migrate
-- (sql.SERVER_FUNCTIONS): each connection plans it once, where a statement is planned at
-- every claim (prepared statements stay off for RDS Proxy and PgBouncer).
-- The heart of the queue: lock up to :limit runnable jobs that nobody else has locked, in
-- claim order, and take a lease on them, all in one statement. The inner SELECT walks the
-- partial index jobs_queued_claim_idx, so finished jobs never slow it down; the ids it
-- returns drive the UPDATE by primary key (= ANY of the one array, computed once, plans that
-- way whatever the table's statistics say, where a join could choose to scan the table).
-- The first :start_count jobs in claim order are marked started (their attempt counted) in
-- the same statement: the worker runs them next. The others wait for their own start mark,
-- unless every job claimed is of one of :fast_kinds (kinds the worker has seen finish so fast
-- that the whole batch is a moment's work): then all are marked, and a batch of fast jobs
-- costs no statement beyond its claim and its completions. A kind the worker has not seen
-- run is never among them. cancel_requested is left alone: a claim never clears a cancel.
-- :skip_ids are jobs this worker handed back because its time left was too short for their
-- setup: they keep their place (run_at) for a worker with more time, and this one, whose
-- time only shrinks, would take them first and hand them back again on every claim.
-- Unless :durable, the transaction commits with synchronous_commit off (for itself only): a
-- claim that commits alone has nothing to lose to a crash but its lease, and the job it
-- loses is QUEUED again with its old token, so the worker's completion is refused and the
-- job runs again, as after any crash. Its commit then does not wait for the WAL flush
-- (tests/test_claim_durability.py). A claim in a transaction that also writes outcomes is
-- :durable, like every other write.
WITH durability AS MATERIALIZED (
    SELECT set_config('synchronous_commit',
                      CASE WHEN CAST(:durable AS boolean) THEN current_setting('synchronous_commit')
                           ELSE 'off' END,
                      true) AS synchronous_commit
), picked AS MATERIALIZED (
    SELECT ARRAY(
               SELECT job_id
                 FROM jobs
                WHERE progress = 'QUEUED'
                  AND run_at <= COALESCE(CAST(:now AS timestamptz), now())
                  AND job_id <> ALL(CAST(:skip_ids AS uuid[]))
                ORDER BY priority, run_at
                LIMIT :limit
                  FOR UPDATE SKIP LOCKED) AS ids
      FROM durability
), everyone AS MATERIALIZED (
    -- All of them (then no per-row search), or only the first few (below).
    SELECT cardinality(ids) <= CAST(:start_count AS int)
           OR (cardinality(CAST(:fast_kinds AS text[])) > 0
               AND NOT EXISTS (SELECT 1
                                 FROM jobs AS other
                                WHERE other.job_id = ANY(CAST(ids AS uuid[]))
                                  AND other.kind <> ALL(CAST(:fast_kinds AS text[]))))
           AS everyone,
           ids
      FROM picked
), starting AS MATERIALIZED (
    SELECT CASE WHEN everyone THEN NULL ELSE ids[1 : CAST(:start_count AS int)] END
           AS first_ids,
           everyone
      FROM everyone
)
UPDATE jobs AS j
   SET updated_at = clock_timestamp(),
       progress = 'RUNNING',
       started_at = COALESCE(CAST(:now AS timestamptz), now()),
       lease_token = j.lease_token + 1,
       attempt_started = (SELECT everyone OR j.job_id = ANY(first_ids) FROM starting)
                         AND NOT j.cancel_requested,
       attempts = j.attempts + CASE WHEN (SELECT everyone OR j.job_id = ANY(first_ids)
                                            FROM starting)
                                         AND NOT j.cancel_requested THEN 1 ELSE 0 END,
       lease_owner = :owner,
       lease_expires_at = COALESCE(CAST(:now AS timestamptz), now())
                          + make_interval(secs => :lease_seconds)
 WHERE j.job_id = ANY(CAST((SELECT ids FROM picked) AS uuid[]))  -- one array, once
-- The payload comes back as text: a worker decodes it only for the kinds that read it.
-- attempt is the number this attempt has (or will have once started).
RETURNING j.job_id, j.kind, CAST(j.payload AS text) AS payload,
          j.attempts + CASE WHEN j.attempt_started THEN 0 ELSE 1 END AS attempt,
          j.max_attempts, j.lease_token, j.attempt_started, j.priority, j.run_at;

-- name: job_complete_if_owned
UPDATE jobs
   SET updated_at = clock_timestamp(),
       progress = 'COMPLETED',
       finished_at = COALESCE(CAST(:now AS timestamptz), now()),
       lease_owner = NULL,
       lease_expires_at = NULL,
       attempt_started = false,
       result = CAST(:result AS jsonb),
       route_group_id = COALESCE(CAST(:route_group_id AS uuid), route_group_id),
       error = NULL,
       attempt_history = attempt_history || jobs_attempt_entry(
           attempts, lease_owner, 'completed', NULL, started_at,
           COALESCE(CAST(:now AS timestamptz), now()))
 WHERE job_id = :job_id
   AND progress = 'RUNNING'
   AND lease_owner = :owner
   AND lease_token = :token
   AND attempt_started  -- an attempt ends only once it started
RETURNING job_id;

-- name: job_complete_many_if_owned
-- Batch form of job_complete_if_owned: one round trip for a whole batch, same fence per row.
-- The same statement marks the next jobs to run started (:start_ids, see job_start_many_if_owned):
-- the worker sends it anyway, so starting a chunk of fast jobs costs no round trip of its own.
-- Answers with what did not go as asked: 'lost' for a completion whose lease was lost,
-- 'not_started' for a start whose lease was lost, 'cancelled' for a start refused because a
-- cancel was requested (that job ends CANCELLED here). Normally none: nothing comes back.
WITH done AS (
    SELECT *
      FROM unnest(CAST(:job_ids AS uuid[]), CAST(:tokens AS bigint[]), CAST(:results AS jsonb[]))
           AS done(job_id, token, result)
), completed AS (
    UPDATE jobs AS j
       SET updated_at = clock_timestamp(),
           progress = 'COMPLETED',
           finished_at = COALESCE(CAST(:now AS timestamptz), now()),
           lease_owner = NULL,
           lease_expires_at = NULL,
           attempt_started = false,
           result = done.result,
           error = NULL,
           -- The entry jobs_attempt_entry would make, built without its jsonb_strip_nulls
           -- (a second pass over the object, a tenth of this statement's time here): none
           -- of these can be NULL on a row the fence matched (a RUNNING job has its owner
           -- and started_at, by constraint), and a completion has no error.
           attempt_history = j.attempt_history || jsonb_build_array(jsonb_build_object(
               'attempt', j.attempts, 'owner', j.lease_owner, 'outcome', 'completed',
               'started_at', j.started_at,
               'ended_at', COALESCE(CAST(:now AS timestamptz), now())))
      FROM done
     WHERE j.job_id = done.job_id
       AND (j.progress = 'RUNNING' AND j.lease_owner = :owner AND j.lease_token = done.token
            AND j.attempt_started)
           IS TRUE  -- one condition: see job_extend_leases
    RETURNING j.job_id
), starting AS (
    SELECT *
      FROM unnest(CAST(:start_ids AS uuid[]), CAST(:start_tokens AS bigint[]))
           AS starting(job_id, token)
), started AS (
    UPDATE jobs AS j
       SET updated_at = clock_timestamp(),
           progress = CASE WHEN j.cancel_requested THEN 'CANCELLED'::progressenum
                           ELSE 'RUNNING'::progressenum END,
           finished_at = CASE WHEN j.cancel_requested THEN COALESCE(CAST(:now AS timestamptz), now()) END,
           lease_owner = CASE WHEN j.cancel_requested THEN NULL ELSE j.lease_owner END,
           lease_expires_at = CASE WHEN j.cancel_requested THEN NULL ELSE j.lease_expires_at END,
           error = CASE WHEN j.cancel_requested THEN 'cancelled on request before it started'
                        ELSE j.error END,
           started_at = CASE WHEN j.cancel_requested THEN j.started_at ELSE COALESCE(CAST(:now AS timestamptz), now()) END,
           attempts = j.attempts + CASE WHEN j.cancel_requested THEN 0 ELSE 1 END,
           attempt_started = NOT j.cancel_requested
      FROM starting
     WHERE j.job_id = starting.job_id
       AND (j.progress = 'RUNNING' AND j.lease_owner = :owner AND j.lease_token = starting.token)
           IS TRUE  -- one condition: see job_extend_leases
       AND NOT j.attempt_started
    RETURNING j.job_id, j.cancel_requested
)
SELECT job_id, 'lost' AS refused FROM done WHERE job_id NOT IN (SELECT job_id FROM completed)
UNION ALL
SELECT job_id, 'cancelled' FROM started WHERE cancel_requested
UNION ALL
SELECT job_id, 'not_started' FROM starting WHERE job_id NOT IN (SELECT job_id FROM started);

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
  FROM unnest(CAST(:job_ids AS uuid[]), CAST(:tokens AS bigint[])) AS held(job_id, token)
 WHERE j.job_id = held.job_id
   -- The fence as one condition, checked on the row each id finds. As three conditions the
   -- planner would filter jobs by progress first, trusting statistics that (taken while little
   -- ran) say almost nothing is RUNNING, and then compare every RUNNING row with every id.
   AND (j.progress = 'RUNNING' AND j.lease_owner = :owner AND j.lease_token = held.token)
       IS TRUE
RETURNING j.job_id, j.cancel_requested;

-- name: job_fail_if_owned
-- Ends the attempt. When :permanent is false and attempts remain, the job goes back to QUEUED
-- with exponential backoff and jitter on run_at (CANCELLED instead if a cancel was requested:
-- a retry must not lose it); otherwise it is FAILED with the last error.
UPDATE jobs
   SET updated_at = clock_timestamp(),
       progress = CASE WHEN :permanent OR attempts >= max_attempts THEN 'FAILED'::progressenum
                       WHEN cancel_requested THEN 'CANCELLED'::progressenum
                       ELSE 'QUEUED'::progressenum END,
       finished_at = CASE WHEN NOT :permanent AND attempts < max_attempts
                               AND NOT cancel_requested
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
       attempt_started = false,
       error = CASE WHEN NOT :permanent AND attempts < max_attempts AND cancel_requested
                    THEN 'cancelled on request after a failed attempt: ' || :error
                    ELSE :error END,
       attempt_history = attempt_history || jobs_attempt_entry(
           attempts, lease_owner, CASE WHEN :permanent THEN 'failed' ELSE 'error' END,
           CAST(:error AS text), started_at, COALESCE(CAST(:now AS timestamptz), now()))
 WHERE job_id = :job_id
   AND progress = 'RUNNING'
   AND lease_owner = :owner
   AND lease_token = :token
   AND attempt_started  -- an attempt ends only once it started
RETURNING job_id, progress::text AS progress, run_at;

-- name: job_fail_timed_out
-- The seed's rule: a job RUNNING for longer than job_timeout_minutes is FAILED, whoever holds it.
-- Counted from its start (started_at moves there when it is marked started); a job claimed
-- and not started yet is not running, and ends by release or recovery, its attempts intact.
UPDATE jobs
   SET updated_at = clock_timestamp(),
       progress = 'FAILED',
       finished_at = COALESCE(CAST(:now AS timestamptz), now()),
       lease_owner = NULL,
       lease_expires_at = NULL,
       attempt_started = false,
       error = format('timed out: RUNNING for longer than job_timeout_minutes (%s min)',
                      :timeout_minutes),
       attempt_history = attempt_history || jobs_attempt_entry(
           attempts, lease_owner, 'timed_out', NULL, started_at,
           COALESCE(CAST(:now AS timestamptz), now()))
 WHERE progress = 'RUNNING'
   AND lease_expires_at IS NOT NULL  -- always true while RUNNING; lets the lease index list them
   AND attempt_started
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
-- Newest first, keyset-paginated on (created_at, job_id) so deep pages stay cheap. Two parts,
-- merged: the jobs not RUNNING walk jobs_created_idx, which leaves RUNNING jobs out (a claim
-- and every heartbeat write a new version of the row, and each would otherwise add an entry
-- to it: migration 0013); the RUNNING jobs, at most what the workers hold, are found by their
-- lease index and sorted. A part the :progress asked for rules out is not run at all. Each
-- part repeats the filters and its own ORDER BY ... LIMIT: with them only outside the
-- union, the planner scanned the table (tests/test_query_plans.py).
SELECT *
  FROM ((SELECT {job_columns}
           FROM jobs
          WHERE progress <> 'RUNNING'
            AND CAST(:progress AS progressenum) IS DISTINCT FROM 'RUNNING'
            AND (CAST(:progress AS progressenum) IS NULL
                 OR progress = CAST(:progress AS progressenum))
            AND (CAST(:kind AS text) IS NULL OR kind = CAST(:kind AS text))
            AND (CAST(:before_created_at AS timestamptz) IS NULL
                 OR (created_at, job_id) < (CAST(:before_created_at AS timestamptz),
                                            CAST(:before_job_id AS uuid)))
          ORDER BY created_at DESC, job_id DESC
          LIMIT :limit)
        UNION ALL
        (SELECT {job_columns}
           FROM jobs
          WHERE progress = 'RUNNING'
            AND lease_expires_at IS NOT NULL  -- always true while RUNNING: the lease index
            AND (CAST(:progress AS progressenum) IS NULL
                 OR CAST(:progress AS progressenum) = 'RUNNING')
            AND (CAST(:kind AS text) IS NULL OR kind = CAST(:kind AS text))
            AND (CAST(:before_created_at AS timestamptz) IS NULL
                 OR (created_at, job_id) < (CAST(:before_created_at AS timestamptz),
                                            CAST(:before_job_id AS uuid)))
          ORDER BY created_at DESC, job_id DESC
          LIMIT :limit)) AS page
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
-- One bounded batch of the terminal jobs that finished before the retention period, oldest
-- first along jobs_finished_idx: the sweeper repeats it until a batch comes back short or its
-- time is up, each batch starting where the last one ended (:after, its latest finished_at),
-- so no batch walks again over the index entries of the rows its predecessors deleted (they
-- stay in the index until vacuum; starting from the oldest every time made a pass quadratic).
-- The rows are found again by ctid (the inner SELECT has them locked, so their versions
-- cannot move): no probe of the primary key, whose random UUIDs cost a page read per row.
-- SKIP LOCKED passes a row someone is changing (a retry in flight), and the outer condition
-- checks the row again as it is deleted, so a job queued again after the inner SELECT read it
-- is never deleted. Route groups the jobs produced are kept: route_group_prune has their rule.
DELETE FROM jobs
 WHERE ctid = ANY(ARRAY(
           SELECT ctid
             FROM jobs
            WHERE finished_at < COALESCE(CAST(:now AS timestamptz), now())
                                - make_interval(days => :retention_days)
              AND finished_at >= COALESCE(CAST(:after AS timestamptz), '-infinity')
            ORDER BY finished_at
            LIMIT :limit
              FOR UPDATE SKIP LOCKED))
   AND finished_at < COALESCE(CAST(:now AS timestamptz), now())
                     - make_interval(days => :retention_days)
RETURNING finished_at;

-- name: job_queued_summary
-- Depth of the queue and age of its oldest job, read from the partial index of QUEUED rows
-- alone (the sweeper asks every minute; finished jobs must not make that slower).
SELECT count(*) AS depth,
       EXTRACT(EPOCH FROM (COALESCE(CAST(:now AS timestamptz), now()) - min(run_at)))::float8
           AS oldest_age_seconds
  FROM jobs
 WHERE progress = 'QUEUED';

-- name: job_recover_orphans
-- Jobs whose lease ran out after they started belonged to a worker that died or stalled: back
-- to QUEUED so another worker can take them, or FAILED when that was their last attempt (a
-- poison job ends here), or CANCELLED when a cancel was requested. Unstarted ones: see
-- job_recover_unstarted_orphans.
UPDATE jobs
   SET updated_at = clock_timestamp(),
       progress = CASE WHEN cancel_requested THEN 'CANCELLED'::progressenum
                       WHEN attempts < max_attempts THEN 'QUEUED'::progressenum
                       ELSE 'FAILED'::progressenum END,
       finished_at = CASE WHEN attempts < max_attempts AND NOT cancel_requested
                          THEN NULL ELSE COALESCE(CAST(:now AS timestamptz), now()) END,
       started_at = CASE WHEN attempts < max_attempts AND NOT cancel_requested
                         THEN NULL ELSE started_at END,
       run_at = CASE WHEN attempts < max_attempts AND NOT cancel_requested
                     THEN COALESCE(CAST(:now AS timestamptz), now()) ELSE run_at END,
       error = CASE WHEN cancel_requested
                    THEN format('cancelled on request; its worker was lost (lease of %s expired)',
                                lease_owner)
                    ELSE format('worker lost: lease of %s expired during attempt %s of %s',
                                lease_owner, attempts, max_attempts) END,
       lease_owner = NULL,
       lease_expires_at = NULL,
       attempt_started = false,
       attempt_history = attempt_history || jobs_attempt_entry(
           attempts, lease_owner, 'lease_expired', NULL, started_at,
           COALESCE(CAST(:now AS timestamptz), now()))
 WHERE progress = 'RUNNING'
   AND lease_expires_at < COALESCE(CAST(:now AS timestamptz), now())
   AND attempt_started
RETURNING job_id, progress::text AS progress;

-- name: job_recover_unstarted_orphans
-- Jobs whose lease ran out before their worker started them (it died mid-batch, say): back to
-- QUEUED with their attempts intact and their place in the queue (run_at unchanged), or
-- CANCELLED when a cancel was requested. No attempt ended, so no attempt_history entry.
UPDATE jobs
   SET updated_at = clock_timestamp(),
       progress = CASE WHEN cancel_requested THEN 'CANCELLED'::progressenum
                       ELSE 'QUEUED'::progressenum END,
       finished_at = CASE WHEN cancel_requested THEN COALESCE(CAST(:now AS timestamptz), now()) END,
       started_at = CASE WHEN cancel_requested THEN started_at END,
       error = CASE WHEN cancel_requested
                    THEN format('cancelled on request before it started; its worker was lost'
                                ' (lease of %s expired)', lease_owner)
                    ELSE error END,
       lease_owner = NULL,
       lease_expires_at = NULL
 WHERE progress = 'RUNNING'
   AND lease_expires_at < COALESCE(CAST(:now AS timestamptz), now())
   AND NOT attempt_started
RETURNING job_id, progress::text AS progress;

-- name: job_release_many_if_owned
-- Hands back jobs this worker will not run: QUEUED with their attempts intact (one marked
-- started but never run gets its count back: its worker knows it never ran), or CANCELLED
-- when a cancel was requested.
UPDATE jobs AS j
   SET updated_at = clock_timestamp(),
       progress = CASE WHEN j.cancel_requested THEN 'CANCELLED'::progressenum
                       ELSE 'QUEUED'::progressenum END,
       finished_at = CASE WHEN j.cancel_requested THEN COALESCE(CAST(:now AS timestamptz), now()) END,
       started_at = CASE WHEN j.cancel_requested THEN j.started_at END,
       error = CASE WHEN j.cancel_requested THEN 'cancelled on request before it started'
                    ELSE j.error END,
       attempts = j.attempts - CASE WHEN j.attempt_started THEN 1 ELSE 0 END,
       attempt_started = false,
       lease_owner = NULL,
       lease_expires_at = NULL
  FROM unnest(CAST(:job_ids AS uuid[]), CAST(:tokens AS bigint[])) AS held(job_id, token)
 WHERE j.job_id = held.job_id
   AND (j.progress = 'RUNNING' AND j.lease_owner = :owner AND j.lease_token = held.token)
       IS TRUE  -- one condition: see job_extend_leases
RETURNING j.job_id, j.progress::text AS progress;

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
       attempt_started = false,
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

-- name: route_group_prune
-- One bounded batch of route groups older than their own retention whose job is gone (pruned):
-- a group is kept as long as its job is, and ROUTE_RETENTION_DAYS after it was made. Oldest
-- first along route_groups_created_idx, from where the last batch ended (:after, as in
-- job_prune_finished); their routes and stops go with them (ON DELETE CASCADE), and
-- jobs_route_group_idx spares each one a scan of jobs for ON DELETE SET NULL.
DELETE FROM route_groups
 WHERE route_group_id = ANY(ARRAY(
           SELECT g.route_group_id
             FROM route_groups AS g
            WHERE g.created_at < COALESCE(CAST(:now AS timestamptz), now())
                                 - make_interval(days => :route_retention_days)
              AND g.created_at >= COALESCE(CAST(:after AS timestamptz), '-infinity')
              AND NOT EXISTS (SELECT FROM jobs WHERE jobs.job_id = g.job_id)
            ORDER BY g.created_at
            LIMIT :limit
              FOR UPDATE SKIP LOCKED))
RETURNING created_at;

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
