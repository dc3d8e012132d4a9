"""Console pages of policies: an editor for a policy document (TOML or cfg.xml) with lint as
you type (data-model errors and guardrail findings, each with reason and fix), a dry-run
preview per device, and submit as a push (a job) or an assignment (desired state).

Lint, dry run and push are FleetService.lint_policy and FleetService.submit_job, exactly as
the API's ``/api/v1/policies/lint`` and ``/api/v1/jobs``; assignments are the desired-state
service's ``assign``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acs_security.console.resource import ConsoleRoute, route
from acs_security.console.responses import ConsoleRequest, FormError, Page, Redirect
from acs_security.mapping.paths import datamodel_dir
from acs_security.policy.guardrails import FORCEABLE
from acs_security.service import FleetService, ServiceError

__all__ = ["PolicyPages", "examples"]

_LINT_API = ("POST", "/api/v1/policies/lint")
_JOBS_API = ("POST", "/api/v1/jobs")
_OPTIONS = ("select", "canary", "wave", "deadline", "max_fault_rate")
_DEFAULTS = {"select": "all", "canary": "", "wave": "", "deadline": "24h", "max_fault_rate": "0.2"}


def examples(directory: Path | None = None) -> dict[str, str]:
    """{name: text} of the example policies (datamodel/examples/*.toml)."""
    folder = (directory or datamodel_dir()) / "examples"
    try:
        files = sorted(folder.glob("*.toml"))
    except OSError:
        return {}
    return {p.stem: p.read_text(encoding="utf-8") for p in files}


class PolicyPages:
    """``desired``: the desired-state service (assignments) when it runs here, else None."""

    def __init__(self, service: FleetService, *, desired: Any = None) -> None:
        self.service = service
        self.desired = desired

    def routes(self) -> list[ConsoleRoute]:
        out = [
            route("GET", r"/policies", self.editor, _LINT_API),
            route("POST", r"/policies/lint", self.lint, _LINT_API),
            route("POST", r"/policies/lint\.fragment", self.lint_fragment, _LINT_API, fragment=True),
            route("POST", r"/policies/dry-run", self.dry_run, _JOBS_API),
            route("POST", r"/policies/push", self.push, _JOBS_API),
        ]
        if self.desired is not None:
            out.append(route("POST", r"/policies/assign", self.assign, ("POST", "/api/v1/assignments")))
        return out

    # -- the form ---------------------------------------------------------------------------

    def _form(self, req: ConsoleRequest) -> dict[str, Any]:
        form: dict[str, Any] = {k: req.field(k, _DEFAULTS[k]).strip() for k in _OPTIONS}
        form["policy"] = req.field("policy")
        form["policy_name"] = req.field("policy_name").strip()
        form["force"] = [r for r in req.fields("force") if r]
        form["assignment"] = req.field("assignment").strip()
        form["priority"] = req.field("priority", "100").strip()
        form["mode"] = req.field("mode", "enforce").strip()
        return form

    def _page(self, form: dict[str, Any], *, status: int = 200, **extra: Any) -> Page:
        context = {"form": form, "examples": sorted(examples()), "forceable": sorted(FORCEABLE),
                   "assignments": self.desired is not None, "lint": None, "plan": None, "refusal": None,
                   "nav": "policies"}
        context.update(extra)
        return Page("policies.html", context, status=status)

    def _lint(self, form: dict[str, Any]) -> dict[str, Any] | None:
        if not form["policy"].strip():
            return None
        return self.service.lint_policy(form["policy"], name=form["policy_name"] or "policy")

    def _job_request(self, form: dict[str, Any], *, dry_run: bool) -> dict[str, Any]:
        request: dict[str, Any] = {"policy": form["policy"], "select": form["select"] or "all",
                                   "deadline": form["deadline"] or "24h", "dry_run": dry_run,
                                   "force": form["force"]}
        if form["policy_name"]:
            request["policy_name"] = form["policy_name"]
        if form["canary"]:
            request["canary"] = form["canary"]
        if form["wave"]:
            if not form["wave"].isdigit():
                raise FormError(f"wave must be a number of devices, not {form['wave'][:20]!r}")
            request["wave"] = int(form["wave"])
        if form["max_fault_rate"]:
            try:
                request["max_fault_rate"] = float(form["max_fault_rate"])
            except ValueError:
                raise FormError("max fault rate must be a number such as 0.2") from None
        return request

    # -- handlers ---------------------------------------------------------------------------

    async def editor(self, req: ConsoleRequest) -> Page:
        form = dict(_DEFAULTS, policy="", policy_name="", force=[], assignment="", priority="100", mode="enforce")
        name = req.arg("example")
        if name:
            texts = examples()
            if name not in texts:
                raise ServiceError(404, "no such example", f"there is no example policy {name!r}")
            form.update(policy=texts[name], policy_name=name)
        if req.arg("select"):
            form["select"] = req.arg("select")
        return self._page(form, lint=self._lint(form))

    async def lint(self, req: ConsoleRequest) -> Page:
        form = self._form(req)
        return self._page(form, lint=self._lint(form))

    async def lint_fragment(self, req: ConsoleRequest) -> Page:
        form = self._form(req)
        return Page("_lint.html", {"lint": self._lint(form), "form": form})

    async def dry_run(self, req: ConsoleRequest) -> Page:
        form = self._form(req)
        try:
            plan = await self.service.submit_job(self._job_request(form, dry_run=True))
        except ServiceError as exc:
            return self._refused(form, exc)
        return self._page(form, lint=self._lint(form), plan=plan)

    async def push(self, req: ConsoleRequest) -> Page | Redirect:
        form = self._form(req)
        try:
            job = await self.service.submit_job(self._job_request(form, dry_run=False))
        except ServiceError as exc:
            return self._refused(form, exc)
        return Redirect(f"/jobs/{job['id']}")

    async def assign(self, req: ConsoleRequest) -> Page | Redirect:
        form = self._form(req)
        request: dict[str, Any] = {"policy": form["policy"], "name": form["assignment"],
                                   "select": form["select"] or "all", "mode": form["mode"] or "enforce",
                                   "force": form["force"]}
        if form["policy_name"]:
            request["policy_name"] = form["policy_name"]
        if form["priority"]:
            if not form["priority"].lstrip("-").isdigit():
                raise FormError("priority must be a whole number")
            request["priority"] = int(form["priority"])
        try:
            result = await self.desired.assign(request)
        except ServiceError as exc:
            return self._refused(form, exc)
        return Redirect(f"/compliance/{result['id']}")

    def _refused(self, form: dict[str, Any], exc: ServiceError) -> Page:
        """The editor again, with the refusal and every finding, the text kept as typed."""
        if exc.status >= 500 or exc.status in (401, 403):
            raise exc
        lint = None
        try:
            lint = self._lint(form)
        except ServiceError:
            lint = None
        refusal = {"status": exc.status, "title": exc.title, "detail": exc.detail, "findings": exc.findings}
        return self._page(form, status=exc.status, lint=lint, refusal=refusal)
