"""Console pages of jobs: the list, a job live (progress, counts per state, outcomes over
time; the script refreshes the live part every few seconds), per-phone outcomes with
faults, cancel and resume, and the report as CSV or JSON."""

from __future__ import annotations

import json
from typing import Any

from acs_security.console.charts import stacked_share, time_chart
from acs_security.console.resource import ConsoleRoute, route
from acs_security.console.responses import ConsoleRequest, Download, Page, Redirect
from acs_security.fleet.tasks import TaskState
from acs_security.overview import OUTCOME_STATES, FleetOverview
from acs_security.service import FleetService, ServiceError

__all__ = ["JobPages", "PROGRESS_STATES"]

_JOB = r"/jobs/(?P<job_id>[0-9]{1,9})"
_API_JOB = "/api/v1/jobs/1"
#: Every task state, final ones first (as the progress bar stacks them), then the active ones.
PROGRESS_STATES = (*OUTCOME_STATES, "in_session", "requested", "pending")
JOB_STATES = ("running", "halted", "completed", "cancelled")
PAGE = 100
#: Seconds between the live part's refreshes (the page's script reads it from the markup).
LIVE_INTERVAL = 2


class JobPages:
    def __init__(self, service: FleetService, overview: FleetOverview) -> None:
        self.service = service
        self.overview = overview

    def routes(self) -> list[ConsoleRoute]:
        return [
            route("GET", r"/jobs", self.jobs, ("GET", "/api/v1/jobs")),
            route("GET", _JOB, self.job, ("GET", _API_JOB)),
            route("GET", _JOB + r"/live", self.live, ("GET", _API_JOB), fragment=True),
            route("POST", _JOB + r"/cancel", self.cancel, ("POST", _API_JOB + "/cancel")),
            route("POST", _JOB + r"/resume", self.resume, ("POST", _API_JOB + "/resume")),
            route("GET", _JOB + r"/report\.(?P<fmt>csv|json)", self.report, ("GET", _API_JOB + "/report")),
        ]

    async def jobs(self, req: ConsoleRequest) -> Page:
        state = req.arg("state") or None
        if state is not None and state not in JOB_STATES:
            raise ServiceError(400, "invalid state", f"state must be one of {', '.join(JOB_STATES)}")
        offset = req.int_arg("offset", 0)
        page = await self.service.list_jobs(limit=50, offset=offset, state=state)
        for job in page["jobs"]:
            job["bar"] = stacked_share(job["counts"], PROGRESS_STATES)
        return Page("jobs.html", {"page": page, "state": state or "", "states": JOB_STATES, "nav": "jobs"})

    async def _live_context(self, job_id: int) -> dict[str, Any]:
        summary = await self.service.job_summary(job_id)
        outcomes = await self.overview.outcomes_over_time(job_id)
        total = max(1, int(summary.get("total") or 0))
        finished = sum(int(summary["counts"].get(s, 0)) for s in OUTCOME_STATES)
        return {
            "job": summary,
            "bar": stacked_share(summary["counts"], PROGRESS_STATES),
            "finished": finished, "percent": round(100.0 * finished / total, 1),
            "chart": time_chart(outcomes["rows"], OUTCOME_STATES, bucket_seconds=outcomes["bucket_seconds"]),
            "bucket_seconds": outcomes["bucket_seconds"],
            "progress_states": PROGRESS_STATES, "outcome_states": OUTCOME_STATES,
            "final": summary["state"] in ("completed", "cancelled"),
            "interval": LIVE_INTERVAL,
        }

    async def job(self, req: ConsoleRequest) -> Page:
        job_id = int(req.params["job_id"])
        context = await self._live_context(job_id)
        state = req.arg("tasks") or None
        if state is not None and state not in {s.value for s in TaskState}:
            raise ServiceError(400, "invalid state", f"{state!r} is not a task state")
        offset = req.int_arg("offset", 0)
        devices = await self.overview.job_devices(job_id, state=state, limit=PAGE, offset=offset)
        context.update(devices=devices, task_state=state or "", task_states=[s.value for s in TaskState],
                       nav="jobs")
        return Page("job.html", context)

    async def live(self, req: ConsoleRequest) -> Page:
        return Page("_job_live.html", await self._live_context(int(req.params["job_id"])))

    async def cancel(self, req: ConsoleRequest) -> Redirect:
        job_id = int(req.params["job_id"])
        await self.service.cancel_job(job_id)
        return Redirect(f"/jobs/{job_id}")

    async def resume(self, req: ConsoleRequest) -> Redirect:
        job_id = int(req.params["job_id"])
        await self.service.resume_job(job_id)
        return Redirect(f"/jobs/{job_id}")

    async def report(self, req: ConsoleRequest) -> Download:
        job_id, fmt = int(req.params["job_id"]), req.params["fmt"]
        report = await self.service.job_report(job_id, fmt=fmt)
        if isinstance(report, bytes):
            return Download(report, "text/csv; charset=utf-8", f"job-{job_id}.csv")
        body = json.dumps(report, indent=1).encode("utf-8") + b"\n"
        return Download(body, "application/json", f"job-{job_id}.json")
