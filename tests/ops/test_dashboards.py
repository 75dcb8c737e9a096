"""deploy/grafana/livehub.json and deploy/prometheus/livehub-alerts.yml name only
metrics a real `livehub serve` exports (scraped after traffic that moves each of
them), and are well-formed: Grafana's JSON with the panels an operator needs, and
rules with expr/for/labels/annotations, checked by promtool where it is installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import httpx
import pytest
import trio
import yaml

from ..support import ROOT, SSEReader, auth, moderator, start_livehub

DASHBOARD = ROOT / "deploy" / "grafana" / "livehub.json"
ALERTS = ROOT / "deploy" / "prometheus" / "livehub-alerts.yml"
# Prometheus's own series: `up` is 0 when a target cannot be scraped (node down).
PROMETHEUS_SERIES = {"up"}
# PromQL words that look like names: functions, aggregations, modifiers.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "topk", "bottomk", "quantile", "stddev",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
    "unless", "bool", "offset", "rate", "irate", "increase", "delta", "deriv",
    "histogram_quantile", "abs", "clamp_min", "clamp_max", "label_values", "vector",
    "time", "absent", "changes", "resets",
}  # fmt: skip
# Grafana's variables, as Prometheus would see them once Grafana filled them in.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$job": ".*", "$instance": ".*"}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text("utf-8"))


def alerts() -> dict:
    return yaml.safe_load(ALERTS.read_text("utf-8"))


def dashboard_exprs() -> list[str]:
    exprs = [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]
    for var in dashboard()["templating"]["list"]:
        if var["type"] == "query":
            exprs.append(var["query"]["query"])
    return exprs


def alert_exprs() -> list[str]:
    return [r["expr"] for g in alerts()["groups"] for r in g["rules"]]


def metric_names(expr: str) -> set[str]:
    """The series names an expression reads (label names and values, ranges,
    grouping labels and function names taken out)."""
    text = re.sub(r'"[^"]*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"label_values\(([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*\w+\)", r"\1", text)
    names = set(re.findall(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*", text))
    return names - PROMQL_WORDS


def scraped_names(text: str) -> set[str]:
    """Every series name in a Prometheus text scrape (histograms: with their suffixes)."""
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0))
    return names


def test_the_name_extraction_finds_what_an_expression_reads():
    expr = (
        'histogram_quantile(0.99, sum by (instance, le) (rate(a_bucket{job="x", le!="1"}'
        "[5m]))) > 0.2 and on (instance) b >= c offset 5m"
    )
    assert metric_names(expr) == {"a_bucket", "b", "c"}
    assert metric_names('label_values(livehub_posts_total{job=~"$job"}, instance)') == {
        "livehub_posts_total"
    }


async def test_dashboard_and_alerts_read_only_exported_metrics(dsn):
    """Traffic that moves every metric the dashboard graphs (posts, deliveries, a
    429 of each kind, a catch-up, a deletion), then one scrape."""
    server = start_livehub(
        dsn,
        LIVEHUB_RING_SIZE="2",  # a resume from 0 after 3 comments is a catch-up
        LIVEHUB_POST_RATE_PER_SECOND="0.01",  # a user's second post is rate limited
        LIVEHUB_POST_BURST="1",
        LIVEHUB_MAX_STREAMS_PER_CLIENT="1",  # a second stream is refused (429)
    )
    try:
        with trio.fail_after(60):
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as c:
                async with c.stream("GET", "/comments/d/stream") as s:
                    # Held in a name: a reader collected as garbage closes its stream.
                    reader = SSEReader(s)
                    for user in ("u1", "u2", "u3"):
                        r = await c.post("/comments/d", json={"message": "hi"}, headers=auth(user))
                        assert r.status_code == 201, r.text
                    assert len(await reader.comments(3)) == 3
                    r = await c.post("/comments/d", json={"message": "again"}, headers=auth("u1"))
                    assert r.status_code == 429
                    r = await c.get("/comments/d/stream")  # the same client's second stream
                    assert r.status_code == 429
                r = await c.delete("/comments/d/1", headers=moderator())
                assert r.status_code == 204
                while True:  # the first stream's slot is released once its socket closed
                    async with c.stream(
                        "GET", "/comments/d/stream", headers={"Last-Event-ID": "0"}
                    ) as s:
                        if s.status_code == 200:
                            await SSEReader(s).next_event()
                            break
                    await trio.sleep(0.05)
                r = await c.get("/metrics")
                assert r.status_code == 200
                exported = scraped_names(r.text)
    finally:
        assert server.stop() == 0, server.log()
    assert "livehub_posts_total" in exported and "livehub_delivery_seconds_bucket" in exported
    for source, exprs in (("dashboard", dashboard_exprs()), ("alerts", alert_exprs())):
        for expr in exprs:
            missing = metric_names(expr) - exported - PROMETHEUS_SERIES
            assert not missing, f"{source}: {expr!r} reads {missing}, which livehub does not export"


def test_the_dashboard_has_the_panels_an_operator_needs():
    d = dashboard()
    assert d["uid"] == "livehub" and d["schemaVersion"] >= 36
    variables = {v["name"] for v in d["templating"]["list"]}
    assert {"datasource", "job", "instance"} <= variables
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    read = set()
    for p in d["panels"]:
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p.get("description"), p["title"]
        for t in p["targets"]:
            read |= metric_names(t["expr"])
    for needed in (
        "livehub_posts_total",  # posts/s
        "livehub_comments_delivered_total",  # deliveries/s
        "livehub_delivery_seconds_bucket",  # delivery percentiles
        "livehub_post_seconds_bucket",  # post percentiles
        "livehub_viewers",
        "livehub_streams_open",
        "livehub_viewer_catchups_total",
        "livehub_bus_reconnects",
        "livehub_bus_wakeups_received",
        "livehub_db_pool_in_use",
        "livehub_posts_limited_total",
        "livehub_requests_refused_total",
    ):
        assert needed in read, needed
    percentiles = [e for e in dashboard_exprs() if e.startswith("histogram_quantile(")]
    assert len(percentiles) >= 6 and all("_bucket" in e and "le)" in e for e in percentiles)


def test_every_alert_rule_is_complete():
    rules = [r for g in alerts()["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    assert {
        "LivehubNodeDown",
        "LivehubDeliveryP99High",
        "LivehubCatchupsRising",
        "LivehubBusDisconnected",
    } <= names
    for rule in rules:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    p99 = next(r for r in rules if r["alert"] == "LivehubDeliveryP99High")
    assert "livehub_delivery_seconds_bucket" in p99["expr"] and "> 0.2" in p99["expr"]


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (apt: prometheus)")
def test_promtool_accepts_the_rules_and_every_dashboard_expression(tmp_path):
    out = subprocess.run(
        [PROMTOOL, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # The dashboard's queries as recording rules: promtool parses each one.
    records = []
    for i, expr in enumerate(e for e in dashboard_exprs() if not e.startswith("label_values(")):
        for var, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(var, value)
        records.append({"record": f"livehub:dashboard_{i}", "expr": expr})
    rules = tmp_path / "dashboard-rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    out = subprocess.run(
        [PROMTOOL, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
