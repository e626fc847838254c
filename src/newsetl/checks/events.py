"""The checks in Prefect: an event per alert that opens or resolves, and a table artifact.

Events are named `newsetl.check.warn` and `newsetl.check.fail` (an alert opened at that level)
and `newsetl.check.resolved`; the resource is the check and the provider, so an automation can
match `newsetl.check.*`, or `newsetl.check.fail` for one provider (docs/checks.md has a ready
automations file). Called only where a Prefect API is there to take them (a flow run, or
`newsetl check` with PREFECT_API_URL): without one, emit_event waits for it.
"""

from __future__ import annotations

from . import Outcome


def check_events(outcome: Outcome, warehouse: str) -> list[dict]:
    """The events' arguments (emit_event's keywords), one per alert opened or resolved."""
    out = []
    for kind, alerts in (("opened", outcome.opened), ("resolved", outcome.resolved)):
        for a in alerts:
            seg = a["segment"]
            rid = f"newsetl.check.{a['check_name']}.{seg or 'run'}" + (f".{a['detail']}" if a["detail"] else "")
            out.append({
                "event": f"newsetl.check.{a['level'] if kind == 'opened' else 'resolved'}",
                "resource": {"prefect.resource.id": rid,
                             "prefect.resource.name": f"{a['check_name']} {seg or '(whole run)'}"
                                                      + (f" {a['detail']}" if a["detail"] else ""),
                             "newsetl.check": a["check_name"], "newsetl.provider": seg or "",
                             "newsetl.detail": a["detail"] or "", "newsetl.level": a["level"]},
                "related": [{"prefect.resource.id": f"newsetl.warehouse.{warehouse}",
                             "prefect.resource.role": "warehouse", "prefect.resource.name": warehouse}],
                "payload": {"observed": a.get("observed"), "expected": a.get("expected"),
                            "message": a.get("resolved_message") if kind == "resolved" else a.get("message"),
                            "alert_id": a["alert_id"], "run_id": outcome.run_id,
                            "opened_run_id": a["opened_run_id"], "runs": a["runs"]},
            })
    return out


def emit_check_events(outcome: Outcome, warehouse: str) -> int:
    from prefect.events import emit_event

    events = check_events(outcome, warehouse)
    for e in events:
        emit_event(**e)
    return len(events)


def checks_table(outcome: Outcome) -> list[dict]:
    """The run's checks for a table artifact: what did not pass first, then a line per check."""
    order = {"fail": 0, "error": 1, "warn": 2, "muted": 3}
    bad = sorted((r for r in outcome.results if r.status in order),
                 key=lambda r: (order[r.status], r.check_name, r.segment or ""))
    rows = [{"status": r.status, "check": r.check_name, "provider": r.segment or "(whole run)",
             "detail": r.detail or "", "message": r.message} for r in bad[:200]]
    by_check: dict = {}
    for r in outcome.results:
        by_check.setdefault(r.check_name, {}).setdefault(r.status, 0)
        by_check[r.check_name][r.status] += 1
    for check, counts in by_check.items():
        if not any(s in order for s in counts):
            rows.append({"status": "pass", "check": check, "provider": "(all)", "detail": "",
                         "message": ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))})
    return rows
