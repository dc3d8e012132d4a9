"""The OpenAPI 3.1 document of the REST API, served at ``/api/v1/openapi.json``.

Written by hand next to the route table in api.py; tests/nbi/test_openapi.py checks that
every route is described and runs schemathesis (requests generated from this document)
against a running server, asserting no 5xx and that every answer matches its schema.
"""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document", "API_VERSION"]

API_VERSION = "1.0.0"

_S = {"type": "string"}
_NS = {"type": ["string", "null"]}
_I = {"type": "integer"}
_NI = {"type": ["integer", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_NTIME = {"type": ["string", "null"]}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _page(item: str, key: str) -> dict[str, Any]:
    return _obj({"total": _I, "limit": _I, "offset": _I, key: {"type": "array", "items": _ref(item)}},
                ["total", "limit", "offset", key])


SCHEMAS: dict[str, Any] = {
    "Problem": _obj({"type": _S, "title": _S, "status": _I, "detail": _S,
                     "findings": {"type": "array", "items": _ref("Finding")}},
                    ["type", "title", "status"]),
    "Finding": _obj({"rule": _S, "severity": _S}, ["rule", "severity"]),
    "Status": _obj({"status": _S, "node": _S, "role": _S}, ["status"]),
    "Device": _obj({
        "device_id": _S, "oui": _S, "product_class": _S, "serial_number": _S, "manufacturer": _S,
        "software_version": _NS, "connection_request_url": _NS, "udp_connection_request_address": _NS,
        "parameter_key": _NS, "events": {"type": "array", "items": _S}, "first_seen": _S,
        "last_inform": _S, "remote_address": _NS, "tags": {"type": "array", "items": _S},
    }, ["device_id", "oui", "product_class", "serial_number"]),
    "DeviceDetail": {"allOf": [_ref("Device"), _obj({
        "parameters": {"type": "object", "additionalProperties": _obj({"value": _S, "type": _S})}})]},
    "DevicePage": _page("Device", "devices"),
    "JobRequest": _obj({
        "policy": {"type": "string", "description": "policy document: TOML or cfg.xml"},
        "policy_name": _S, "select": {"type": "string", "description": "target selector, e.g. all"},
        "canary": _S, "wave": _NI, "max_fault_rate": {"type": "number"}, "deadline": _S,
        "dry_run": {"type": "boolean"}, "force_all": {"type": "boolean"}, "readback": {"type": "boolean"},
        "max_in_progress": _I, "force": {"type": "array", "items": _S},
        "method": {"enum": ["auto", "spv", "download"],
                   "description": "how settings travel: SetParameterValues where the phone has the parameter "
                                  "and a cfg.xml Download for the rest (auto), or all in one file (download)"},
        "file_content": {"enum": ["policy", "full"],
                         "description": "what the cfg.xml holds: the policy's settings, or the phone's whole "
                                        "known configuration with the policy on top"},
    }, ["policy", "select"]),
    "Job": _obj({
        "id": _I, "name": _S, "kind": {"enum": ["push", "audit", "backup"]},
        "state": {"enum": ["running", "halted", "cancelled", "completed"]},
        "selector": _S, "parameter_key": _S, "options": {"type": "object"}, "current_wave": _I,
        "wave_count": _I, "reason": _NS, "created_at": _S, "deadline": _S, "finished_at": _NS,
        "counts": {"type": "object", "additionalProperties": _I}, "total": _I,
        "rate_per_s": {"type": ["number", "null"]}, "eta_s": {"type": ["number", "null"]},
    }, ["id", "state", "counts", "total"]),
    "DryRun": _obj({"dry_run": {"const": True}, "policy": _S, "targets": _I,
                    "totals": {"type": "object", "additionalProperties": _I},
                    "devices": {"type": "array", "items": {"type": "object"}},
                    "findings": {"type": "array", "items": _ref("Finding")}},
                   ["dry_run", "targets", "devices"]),
    "JobPage": _page("Job", "jobs"),
    "Task": _obj({"device_id": _S, "wave": _I, "state": _S, "attempts": _I, "sent": _I,
                  "fault_code": _NI, "fault_string": _NS, "faults": {"type": "array"},
                  "detail": _NS, "finished_at": _NS, "next_attempt": _NS,
                  # How the device was reached (docs/nat.md): http, udp, xmpp or periodic.
                  "reached_by": {"enum": ["http", "udp", "xmpp", "periodic", None]},
                  # The ACS node that last changed the task (several nodes: who handled it).
                  "node": _NS}, ["device_id", "state"]),
    "TaskPage": _page("Task", "devices"),
    "Report": _obj({"job": _ref("Job"), "devices": {"type": "array", "items": _ref("Task")}}, ["job", "devices"]),
    "PolicyRequest": _obj({"policy": _S, "policy_name": _S}, ["policy"]),
    "CfgXmlRequest": _obj({"policy": _S, "policy_name": _S, "extensions": {"type": "integer", "minimum": 1,
                                                                           "maximum": 16}}, ["policy"]),
    "LintResult": _obj({"policy": _NS, "findings": {"type": "array", "items": _ref("Finding")},
                        "exit": {"enum": [0, 1, 2]}}, ["policy", "findings", "exit"]),
    "Setting": _obj({"name": _S, "element": _NS, "path": _S, "format": _S, "tr069_type": _S,
                     "values": {"type": "array", "items": _S}, "default": _S, "min": _NI, "max": _NI,
                     "max_length": _NI, "secret": {"type": "boolean"}, "writable": {"type": "boolean"},
                     "feature": _NS}, ["name", "path"]),
    "SettingPage": _page("Setting", "settings"),
    "Token": _obj({"id": _I, "name": _S, "role": {"enum": ["viewer", "operator", "admin"]},
                   "created_at": _S, "revoked_at": _NS, "last_used": _NS}, ["id", "name", "role"]),
    "NewToken": {"allOf": [_ref("Token"), _obj({"token": {"type": "string",
                                                          "description": "shown this once"}}, ["token"])]},
    "TokenRequest": _obj({"name": _S, "role": {"enum": ["viewer", "operator", "admin"]}}, ["name", "role"]),
    "TokenList": _obj({"tokens": {"type": "array", "items": _ref("Token")}}, ["tokens"]),
    "RenderRequest": _obj({"policy": _S, "policy_name": _S, "method": {"enum": ["auto", "spv", "download"]},
                           "file_content": {"enum": ["policy", "full"]}, "force_all": {"type": "boolean"}},
                          ["policy"]),
    "RenderedFile": _obj({
        "device_id": _S, "serial_number": _NS, "product_class": _S, "software_version": _NS, "method": _S,
        "file_content": _S, "elements": {"type": "array", "items": _S},
        "secret_elements": {"type": "array", "items": _S}, "by_spv": {"type": "array", "items": _S},
        "skipped": {"type": "array", "items": _obj({"setting": _S, "reason": _S})},
        "unchanged": {"type": "array", "items": _S}, "size": _I,
        "cfgxml": {"type": "string", "description": "the file; each secret element is a comment"},
    }, ["device_id", "elements", "cfgxml"]),
    "BackupRequest": _obj({"select": _S, "canary": _S, "wave": _NI, "max_fault_rate": {"type": "number"},
                           "deadline": _S, "max_in_progress": _I}, ["select"]),
    "Backup": _obj({
        "device_id": _S, "serial_number": _NS, "product_class": _NS, "oui": _NS, "version": _I, "sha256": _S,
        "size": _I, "created_at": _S, "confirmed_at": _S, "uploads": _I, "job_id": _NI, "elements": _NI,
        "problems": _I}, ["device_id", "version", "sha256"]),
    "BackupPage": _page("Backup", "backups"),
    "BackupDetail": {"allOf": [_ref("Backup"), _obj({
        "report": {"type": "object", "description": "elements the data model does not know, refuses or the "
                                                    "phone lacks (names and reasons only)"},
        "cfgxml": {"type": ["string", "null"], "description": "the valid elements; secrets as comments"}})]},
    "BackupDiff": _obj({"device_id": _S, "from": _I, "to": _I, "changes": {"type": "array", "items": _obj({
        "element": _S, "change": {"enum": ["added", "removed", "changed"]}, "old": _NS, "new": _NS,
        "secret": {"type": "boolean"}})}}, ["device_id", "from", "to", "changes"]),
    "RestoreRequest": _obj({"to": {"type": "string", "description": "selector of the phones to restore to "
                                                                    "(default: the phone the backup came from)"},
                            "deadline": _S, "force": {"type": "array", "items": _S},
                            "dry_run": {"type": "boolean"}}),
    # Desired state (docs/desired-state.md): assignments, compliance, drift, audits.
    "AssignmentRequest": _obj({
        "policy": {"type": "string", "description": "policy document: TOML or cfg.xml"}, "policy_name": _S,
        "name": {"type": "string", "description": "default: the policy's name; an existing name makes a new "
                                                  "revision"},
        "select": {"type": "string", "description": "target selector, e.g. product_class=CP-8851-3PCC"},
        "priority": {"type": "integer", "description": "higher wins where assignments set the same setting"},
        "mode": {"enum": ["enforce", "audit"]}, "force": {"type": "array", "items": _S},
        "dry_run": {"type": "boolean"}}, ["policy", "select"]),
    "Assignment": _obj({
        "id": _I, "name": _S, "policy_name": _S, "selector": _S, "priority": _I,
        "mode": {"enum": ["enforce", "audit"]}, "enabled": {"type": "boolean"}, "revision": _I,
        "parameter_key": _S, "policy": {"type": "object"}, "created_at": _S, "updated_at": _S,
        "counts": {"type": "object", "additionalProperties": _I}}, ["id", "name", "revision", "mode"]),
    "AssignmentResult": _obj({
        "selected": _I, "selected_by_model": {"type": "object", "additionalProperties": _I},
        "findings": {"type": "array", "items": _ref("Finding")}, "conflicts": {"type": "array"},
        "created": {"type": "boolean"}, "unchanged": {"type": "boolean"}, "dry_run": {"type": "boolean"},
        "would": _S, "id": _I, "name": _S, "revision": _I}, ["selected"]),
    "AssignmentList": _obj({"total": _I, "assignments": {"type": "array", "items": _ref("Assignment")}},
                           ["total", "assignments"]),
    "Compliance": _obj({
        "assignment": _S, "id": _I, "revision": _I, "selected": _I, "compliant": _I, "drifted": _I,
        "faulted": _I, "skipped": _I, "overridden": _I, "unknown": _I,
        "compliant_ratio": {"type": ["number", "null"]}, "drifted_ratio": {"type": ["number", "null"]},
        "by_model": {"type": "array", "items": {"type": "object"}},
        "by_firmware": {"type": "array", "items": {"type": "object"}}}, ["assignment", "selected", "by_model"]),
    "AssignmentDevicePage": _obj({"assignment": _S, "total": _I, "limit": _I, "offset": _I,
                                  "devices": {"type": "array", "items": {"type": "object"}}},
                                 ["total", "devices"]),
    "DriftEvent": _obj({"id": _I, "at": _S, "kind": {"enum": ["drift", "job_conflict", "factory_reset"]},
                        "assignment": _S, "assignment_id": _NI, "setting": _NS, "path": _NS, "old": _NS,
                        "new": _NS, "event": _S, "action": _S, "job_id": _NI, "node": _NS},
                       ["at", "kind", "event", "action"]),
    "DriftHistory": _obj({"device_id": _S, "serial_number": _S, "product_class": _S, "total": _I, "limit": _I,
                          "offset": _I, "events": {"type": "array", "items": _ref("DriftEvent")}},
                         ["device_id", "total", "events"]),
    "DesiredView": _obj({"device_id": _S, "serial_number": _S, "product_class": _S, "software_version": _NS,
                         "parameter_key": _NS, "assignments": {"type": "array", "items": {"type": "object"}},
                         "settings": {"type": "array", "items": {"type": "object"}}},
                        ["device_id", "assignments", "settings"]),
    "AuditRequest": _obj({"select": _S, "assignment": _S, "assignments": {"type": "array", "items": _S},
                          "wave": _NI, "max_in_progress": _I, "deadline": _S, "canary": _S}),
    "AuditReport": _obj({"job": _ref("Job"), "totals": {"type": "object", "additionalProperties": _I},
                         "devices": {"type": "array", "items": {"type": "object"}},
                         "settings": {"type": "array", "items": {"type": "object"}}},
                        ["job", "totals", "devices", "settings"]),
}

_PROBLEM = {"application/problem+json": {"schema": _ref("Problem")}}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(op_id: str, summary: str, ok: dict[str, dict[str, Any]], *, role: str | None = "viewer",
        params: list[dict[str, Any]] | None = None, body: str | None = None) -> dict[str, Any]:
    responses = dict(ok)
    responses["default"] = {"description": "problem details (RFC 9457)", "content": _PROBLEM}
    out: dict[str, Any] = {"operationId": op_id, "summary": summary, "responses": responses}
    if role is None:
        out["security"] = []
    else:
        out["description"] = f"Needs the {role} role (or a stronger one)."
    if params:
        out["parameters"] = params
    if body:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return out


def _q(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _p(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


_LIMIT = _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size")
_OFFSET = _q("offset", {"type": "integer", "minimum": 0, "maximum": 1_000_000}, "rows to skip")
_JOB = _p("job_id", {"type": "integer", "minimum": 1, "maximum": 999_999_999})
_DEVICE = _p("device_id", {"type": "string", "pattern": "^[^/]+$"})
_VERSION_SCHEMA = {"type": "string", "pattern": "^([0-9]{1,9}|latest)$"}
_VERSION = _p("version", _VERSION_SCHEMA)
_REF = _p("ref", {"type": "string", "pattern": "^[^/]+$"})
_TASK_STATES = ["pending", "requested", "in_session", "transferring", "applied", "applied_pending_reboot",
                "faulted", "unreachable", "skipped", "cancelled"]


def openapi_document(server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh dict each call)."""
    job_id = "/api/v1/jobs/{job_id}"
    backup = "/api/v1/devices/{device_id}/backups/{version}"
    paths: dict[str, Any] = {
        "/healthz": {"get": _op("healthz", "liveness (no authentication)", {"200": _json(_ref("Status"))},
                                role=None)},
        "/readyz": {"get": _op("readyz", "readiness: the store answers (no authentication)",
                               {"200": _json(_ref("Status"))}, role=None)},
        "/metrics": {"get": _op("metrics", "Prometheus metrics (text exposition format)", {
            "200": {"description": "metrics", "content": {"text/plain": {"schema": _S}}}})},
        "/api/v1/openapi.json": {"get": _op("openapi", "this document", {"200": _json({"type": "object"})})},
        "/api/v1/devices": {"get": _op("listDevices", "registered devices, filtered and paginated", {
            "200": _json(_ref("DevicePage"))}, params=[
            _LIMIT, _OFFSET, _q("product_class", _S), _q("software_version", _S), _q("tag", _S),
            _q("serial", _S, "comma-separated serial numbers")])},
        "/api/v1/devices/{device_id}": {"get": _op("getDevice", "one device with its known parameters "
                                                   "(secrets masked)", {"200": _json(_ref("DeviceDetail"))},
                                                   params=[_DEVICE])},
        "/api/v1/devices/{device_id}/cfgxml": {"get": _op(
            "deviceCfgXml", "the device's known setting values as cfg.xml (secrets left out)",
            {"200": {"description": "cfg.xml", "content": {"application/xml": {"schema": _S}}}},
            params=[_DEVICE])},
        "/api/v1/jobs": {
            "get": _op("listJobs", "jobs, newest first", {"200": _json(_ref("JobPage"))}, params=[
                _LIMIT, _OFFSET, _q("state", {"enum": ["running", "halted", "cancelled", "completed"]})]),
            "post": _op("submitJob", "push a policy to the devices a selector names (or plan it: dry_run)", {
                "201": _json(_ref("Job"), "job created"), "200": _json(_ref("DryRun"), "dry run: the plan")},
                role="operator", body="JobRequest"),
        },
        job_id: {"get": _op("getJob", "a job's summary", {"200": _json(_ref("Job"))}, params=[_JOB])},
        job_id + "/devices": {"get": _op("jobDevices", "a job's devices and their states", {
            "200": _json(_ref("TaskPage"))}, params=[_JOB, _LIMIT, _OFFSET, _q("state", {"enum": _TASK_STATES})])},
        job_id + "/cancel": {"post": _op("cancelJob", "cancel a running job", {"200": _json(_ref("Job"))},
                                         role="operator", params=[_JOB])},
        job_id + "/resume": {"post": _op("resumeJob", "resume a halted job", {"200": _json(_ref("Job"))},
                                         role="operator", params=[_JOB])},
        job_id + "/report": {"get": _op("jobReport", "every device's outcome", {"200": {
            "description": "report", "content": {"application/json": {"schema": _ref("Report")},
                                                 "text/csv": {"schema": _S}}}},
            params=[_JOB, _q("format", {"enum": ["json", "csv"]})])},
        "/api/v1/policies/lint": {"post": _op("lintPolicy", "guardrail findings of a policy document", {
            "200": _json(_ref("LintResult"))}, body="PolicyRequest")},
        "/api/v1/policies/cfgxml": {"post": _op("policyCfgXml", "a policy written as cfg.xml", {
            "200": {"description": "cfg.xml", "content": {"application/xml": {"schema": _S}}}},
            body="CfgXmlRequest")},
        "/api/v1/catalogue": {"get": _op("catalogue", "the data-model catalogue of settings", {
            "200": _json(_ref("SettingPage"))}, params=[_LIMIT, _OFFSET, _q("q", _S, "substring filter")])},
        "/api/v1/tokens": {
            "get": _op("listTokens", "API tokens (never the tokens themselves)",
                       {"200": _json(_ref("TokenList"))}, role="admin"),
            "post": _op("createToken", "create a token; the answer shows it this once",
                        {"201": _json(_ref("NewToken"), "created")}, role="admin", body="TokenRequest"),
        },
        "/api/v1/devices/{device_id}/cfgxml/render": {"post": _op(
            "renderDeviceCfgXml", "the cfg.xml a push of a policy would send this phone (secrets as comments)",
            {"200": _json(_ref("RenderedFile"))}, params=[_DEVICE], body="RenderRequest")},
        "/api/v1/backups": {
            "get": _op("listBackups", "configuration backup versions, newest first", {
                "200": _json(_ref("BackupPage"))}, params=[_LIMIT, _OFFSET, _q("device", _S, "one device id")]),
            "post": _op("submitBackup", "a backup job: the selected phones upload their cfg.xml", {
                "201": _json(_ref("Job"), "job created")}, role="operator", body="BackupRequest"),
        },
        "/api/v1/devices/{device_id}/backups": {"get": _op(
            "deviceBackups", "one phone's backup versions, newest first", {"200": _json(_ref("BackupPage"))},
            params=[_DEVICE, _LIMIT, _OFFSET])},
        backup: {"get": _op("getBackup", "one backup version with its report", {
            "200": _json(_ref("BackupDetail"))}, params=[_DEVICE, _VERSION])},
        backup + "/diff": {"get": _op("diffBackups", "what changed between two versions (secrets masked)", {
            "200": _json(_ref("BackupDiff"))}, params=[_DEVICE, _VERSION, _q("against", _VERSION_SCHEMA,
                                                                             "default: the version before")])},
        backup + "/restore": {"post": _op(
            "restoreBackup", "send a backup version back with a cfg.xml Download (a push job)", {
                "201": _json(_ref("Job"), "job created"), "200": _json(_ref("DryRun"), "dry run: the plan")},
            role="operator", params=[_DEVICE, _VERSION], body="RestoreRequest")},
        "/api/v1/assignments": {
            "get": _op("listAssignments", "assignments with their devices' states", {
                "200": _json(_ref("AssignmentList"))}),
            "post": _op("assign", "assign a policy to the devices a selector names (a new revision when the "
                                  "name exists; dry_run: plan only)", {
                "201": _json(_ref("AssignmentResult"), "created"),
                "200": _json(_ref("AssignmentResult"), "a new revision, unchanged, or a dry run")},
                role="operator", body="AssignmentRequest"),
        },
        "/api/v1/assignments/{ref}": {
            "get": _op("getAssignment", "one assignment (by name or id)", {"200": _json(_ref("Assignment"))},
                       params=[_REF]),
            "delete": _op("deleteAssignment", "delete an assignment (devices keep their values)", {
                "200": _json(_obj({"deleted": _S, "id": _I}, ["deleted"]))}, role="operator", params=[_REF]),
        },
        "/api/v1/assignments/{ref}/enable": {"post": _op("enableAssignment", "enable (conflicts checked)", {
            "200": _json(_ref("Assignment"))}, role="operator", params=[_REF])},
        "/api/v1/assignments/{ref}/disable": {"post": _op("disableAssignment", "disable", {
            "200": _json(_ref("Assignment"))}, role="operator", params=[_REF])},
        "/api/v1/assignments/{ref}/compliance": {"get": _op(
            "assignmentCompliance", "compliance counts and ratios, by model and by firmware",
            {"200": _json(_ref("Compliance"))}, params=[_REF])},
        "/api/v1/assignments/{ref}/devices": {"get": _op(
            "assignmentDevices", "the devices an assignment selects, with their state",
            {"200": _json(_ref("AssignmentDevicePage"))}, params=[_REF, _LIMIT, _OFFSET, _q("state", {
                "enum": ["compliant", "drifted", "faulted", "skipped", "overridden", "unknown"]})])},
        "/api/v1/devices/{device_id}/drift": {"get": _op(
            "deviceDrift", "a device's drift history, newest first", {"200": _json(_ref("DriftHistory"))},
            params=[_DEVICE, _LIMIT, _OFFSET])},
        "/api/v1/devices/{device_id}/desired": {"get": _op(
            "deviceDesired", "a device's desired values next to the known ones (secrets masked)",
            {"200": _json(_ref("DesiredView"))}, params=[_DEVICE])},
        "/api/v1/audits": {"post": _op("startAudit", "read the controlled settings of assigned devices "
                                                      "(a job of kind audit)",
                                       {"201": _json(_ref("Job"), "audit job created")}, role="operator",
                                       body="AuditRequest")},
        "/api/v1/audits/{job_id}/report": {"get": _op("auditReport", "an audit's verdicts per setting and "
                                                                     "model, and per device", {"200": {
            "description": "report", "content": {"application/json": {"schema": _ref("AuditReport")},
                                                 "text/csv": {"schema": _S}}}},
            params=[_JOB, _q("format", {"enum": ["json", "csv"]})])},
        "/api/v1/tokens/{name}": {"delete": _op("revokeToken", "revoke a token at once", {
            "200": _json(_obj({"name": _S, "revoked": {"type": "boolean"}}, ["name", "revoked"]))},
            role="admin", params=[_p("name", {"type": "string", "pattern": "^[^/]+$"})])},
    }
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "acs-security northbound REST API", "version": API_VERSION,
                 "description": "Fleet security pushes to Cisco IP phones over TR-069. Every operation "
                                "but /healthz and /readyz needs a bearer token (roles viewer < operator < "
                                "admin); errors are RFC 9457 problem details."},
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "acs-security tokens create --name N --role viewer|operator|admin"}}},
        "security": [{"bearer": []}],
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
