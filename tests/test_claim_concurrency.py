"""Four processes race to claim 2,000 jobs: every job is claimed exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from jobworker import queue
from jobworker.queue import NewJob

JOBS = 2000
PROCESSES = 4

CLAIMER = """
import json, sys
from jobworker import queue
from jobworker.db import make_engine

url, owner, out = sys.argv[1:4]
engine = make_engine(url)
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
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    with engine.begin() as conn:
        ids = queue.create_jobs(conn, [NewJob(kind="noop")] * JOBS)
    outputs = [tmp_path / f"claimer-{n}.json" for n in range(PROCESSES)]
    runs = [
        subprocess.Popen([sys.executable, "-c", CLAIMER, database_url, f"claimer-{n}", str(out)])
        for n, out in enumerate(outputs)
    ]
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
