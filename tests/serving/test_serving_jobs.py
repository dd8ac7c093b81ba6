"""Background jobs in a worker: run on their schedule, survive their own exceptions, stop on request."""

from __future__ import annotations

import logging
import threading

import pytest
from store_fixtures import wait_for

from shipway.serving.jobs import Jobs


def test_jobs_run_repeatedly_and_a_failing_job_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    calls = {"good": 0, "bad": 0}

    def good() -> None:
        calls["good"] += 1

    def bad() -> None:
        calls["bad"] += 1
        raise RuntimeError("the store is down")

    jobs = Jobs([(0.01, good), (0.01, bad)])
    with caplog.at_level(logging.ERROR, logger="shipway.serving"):
        jobs.start()
        wait_for(lambda: calls["good"] >= 3 and calls["bad"] >= 3, what="three runs of each job")
        jobs.stop()
    failures = [r for r in caplog.records if r.getMessage().startswith("background job failed")]
    assert failures and failures[0].exc_info is not None and "the store is down" in str(failures[0].exc_info[1])
    assert failures[0].__dict__["job"].endswith("<locals>.bad")  # the log names the job
    assert not any(t.name == "shipway-jobs" for t in threading.enumerate())


def test_the_first_run_is_immediate_and_stop_ends_the_thread() -> None:
    ran = threading.Event()
    jobs = Jobs([(3600.0, ran.set)])
    jobs.start()
    wait_for(ran.is_set, what="the first run")  # an hourly job still runs at start
    jobs.stop()
    assert jobs._thread is None


def test_no_jobs_no_thread() -> None:
    jobs = Jobs([])
    jobs.start()
    assert jobs._thread is None
    jobs.stop()
