"""Four processes race to claim 2,000 jobs: every job is claimed exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.queue import NewJob

JOBS = 2000
PROCESSES = 4

CLAIMER = """
import json, pathlib, sys, time
from sqlalchemy import text
from jobworker import queue
from jobworker.aws.engine import make_engine

url, owner, out, ready, go, pooled = sys.argv[1:7]
# Behind a transaction pooler, as the template runs the functions: no server-side prepares
# (psycopg would prepare the claim after five runs, on whichever server connection it had).
engine = make_engine(url, disable_prepared_statements=pooled == "pooled")
with engine.connect() as conn:
    conn.execute(text("SELECT 1"))  # connected and warm before the start signal
pathlib.Path(ready).touch()
while not pathlib.Path(go).exists():
    time.sleep(0.005)
claimed = []
while True:
    with engine.begin() as conn:
        batch = queue.claim_batch(conn, owner=owner, limit=25, lease_seconds=300)
    if not batch:
        break
    claimed.extend(str(job.job_id) for job in batch)
with open(out, "w") as handle:
    json.dump(claimed, handle)
"""


def test_claim_batch__four_processes_claim_every_job_exactly_once(
    engine: Engine, database_url: str, through_pooler: bool, tmp_path: Path
) -> None:
    with engine.begin() as conn:
        ids = queue.create_jobs(conn, [NewJob(kind="noop")] * JOBS)
    outputs = [tmp_path / f"claimer-{n}.json" for n in range(PROCESSES)]
    ready = [tmp_path / f"claimer-{n}.ready" for n in range(PROCESSES)]
    go = tmp_path / "go"
    runs = [
        subprocess.Popen([sys.executable, "-c", CLAIMER, database_url, f"claimer-{n}", str(out),
                          str(ready[n]), str(go), "pooled" if through_pooler else "direct"])
        for n, out in enumerate(outputs)
    ]
    deadline = time.monotonic() + 60
    while not all(path.exists() for path in ready):  # start the race together
        assert time.monotonic() < deadline, "claimers did not start"
        assert all(run.poll() is None for run in runs), "a claimer died before the start"
        time.sleep(0.01)
    go.touch()
    for run in runs:
        assert run.wait(timeout=120) == 0
    per_process = [json.loads(out.read_text()) for out in outputs]
    claims = Counter(job_id for claimed in per_process for job_id in claimed)

    duplicated = {job_id: n for job_id, n in claims.items() if n > 1}
    assert not duplicated, f"{len(duplicated)} jobs were claimed more than once"
    assert set(claims) == {str(job_id) for job_id in ids}
    assert sum(1 for claimed in per_process if claimed) >= 2, "the race never happened"
    with engine.connect() as conn:
        attempts = conn.execute(text(
            "SELECT attempts, progress::text, count(*) FROM jobs GROUP BY 1, 2")).all()
    assert attempts == [(1, "RUNNING", JOBS)]
