"""Offline validation of deploy/: every file parses, the compose graph is consistent, the
Kubernetes objects are well-formed, and dashboards/scrape targets point at things that exist
(metric names are read from the API's own registry, tables from the DDL)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"


def _yaml_docs(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def test_every_file_parses() -> None:
    files = [p for p in DEPLOY.rglob("*") if p.is_file()]
    by_ext = {ext: [p for p in files if p.suffix == ext] for ext in (".yml", ".yaml", ".json",
                                                                     ".xml")}
    assert len(by_ext[".yml"]) + len(by_ext[".yaml"]) >= 10 and by_ext[".json"]
    for p in by_ext[".yml"] + by_ext[".yaml"]:
        assert _yaml_docs(p), p
    for p in by_ext[".json"]:
        json.loads(p.read_text())
    for p in by_ext[".xml"]:
        assert ET.parse(p).getroot().tag == "clickhouse", p


def test_compose_has_the_whole_stack(services: dict[str, Any]) -> None:
    ch = {"ch-s1r1", "ch-s1r2", "ch-s2r1", "ch-s2r2"}
    required = ch | {"keeper", "postgres", "redis", "migrate", "api", "user-code",
                     "dagster-webserver", "dagster-daemon", "prometheus", "grafana"}
    assert required <= set(services)
    assert "--workers" in services["api"]["command"]
    assert services["grafana"]["environment"]["GF_INSTALL_PLUGINS"] == \
        "grafana-clickhouse-datasource"


def test_compose_dependencies_and_healthchecks(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        if name != "migrate":  # one-shot job
            assert "healthcheck" in svc and svc["healthcheck"]["test"], name
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: use the long depends_on form with conditions"
        for dep, cond in deps.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            assert cond["condition"] in ("service_healthy", "service_completed_successfully",
                                         "service_started")
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck"
    # no cycles: a topological order exists
    order: list[str] = []
    pending = dict(services)
    while pending:
        ready = [n for n, s in pending.items() if set(s.get("depends_on", {})) <= set(order)]
        assert ready, f"dependency cycle among {sorted(pending)}"
        order += ready
        for n in ready:
            del pending[n]
    assert order.index("migrate") < order.index("api")


def test_compose_ports_and_mounts(services: dict[str, Any]) -> None:
    published: list[int] = []
    for name, svc in services.items():
        for port in svc.get("ports", []):
            host, _, container = str(port).partition(":")
            assert host.isdigit() and container.isdigit(), (name, port)
            published.append(int(host))
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("./"):
                assert (DEPLOY / src).exists(), f"{name}: missing {src}"
    assert len(published) == len(set(published)), "host port published twice"
    assert {8000, 3000, 9090, 8123} <= set(published)


def test_compose_secrets_come_from_env(compose: dict[str, Any]) -> None:
    text = (DEPLOY / "docker-compose.yml").read_text()
    example = dict(
        line.split("=", 1) for line in (DEPLOY / ".env.example").read_text().splitlines()
        if line and not line.startswith("#"))
    for var in set(re.findall(r"\$\{(\w+)", text)):
        assert var in example, f"{var} used in compose but not in .env.example"

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, str(k))
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif re.search(r"PASSWORD|TOKEN|SECRET", key) and isinstance(node, str):
            assert node.startswith("${"), f"{key} must come from the environment"

    walk(compose)


def test_clickhouse_cluster_config_matches_compose_and_ddl(services: dict[str, Any]) -> None:
    from creditlake.clickhouse.ddl_cluster import DEFAULT_CLUSTER

    root = ET.parse(DEPLOY / "clickhouse/config.d/cluster.xml").getroot()
    cluster = root.find(f"remote_servers/{DEFAULT_CLUSTER}")
    assert cluster is not None
    shards = cluster.findall("shard")
    assert len(shards) == 2
    for shard in shards:
        assert shard.findtext("internal_replication") == "true"
        hosts = [r.findtext("host") for r in shard.findall("replica")]
        assert len(hosts) == 2 and set(hosts) <= set(services)
    assert root.findtext("zookeeper/node/host") in services
    for shard_no, shard in enumerate(shards, 1):
        for r in shard.findall("replica"):
            host = r.findtext("host")
            macros = ET.parse(DEPLOY / f"clickhouse/macros/{host}.xml").getroot()
            assert macros.findtext("macros/shard") == f"{shard_no:02d}"
            assert macros.findtext("macros/replica") == host
            mounts = " ".join(services[host]["volumes"])
            assert f"macros/{host}.xml:" in mounts and "cluster.xml" in mounts


def test_prometheus_targets_exist_in_compose(services: dict[str, Any]) -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    targets = [t for job in prom["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]]
    assert "api:8000" in targets
    for t in targets:
        host, port = t.rsplit(":", 1)
        assert host == "localhost" or host in services, t
        if host == "api":
            assert port in services["api"]["command"]


def _api_metric_names() -> set[str]:
    from api.metrics import Metrics

    names: set[str] = set()
    for metric in Metrics().registry.collect():
        for sample in metric.samples:
            names.add(sample.name)
        names.add(metric.name + ("_total" if metric.type == "counter" else ""))
        if metric.type == "histogram":
            names |= {metric.name + s for s in ("_bucket", "_sum", "_count")}
    return names


def test_dashboard_uses_exported_metrics_and_real_tables() -> None:
    from creditlake.clickhouse.ddl import table_ddl

    dash = json.loads((DEPLOY / "grafana/dashboards/creditlake.json").read_text())
    ds = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/datasources.yml").read_text())
    uids = {d["uid"] for d in ds["datasources"]}
    exported = _api_metric_names()
    api_src = "\n".join(p.read_text() for p in (ROOT / "api").rglob("*.py"))
    titles = {p["title"] for p in dash["panels"]}
    assert {"Ingest rows/s", "Rejection rate", "API latency percentiles", "Credits consumed",
            "Cache hit rate"} <= titles
    for panel in dash["panels"]:
        for t in panel["targets"]:
            assert t["datasource"]["uid"] in uids
            if "expr" in t:
                used = set(re.findall(r"\b(creditlake_[a-z_]+)", t["expr"]))
                assert used and used <= exported, f"{panel['title']}: {used - exported}"
                for value in re.findall(r'outcome="(\w+)"', t["expr"]):
                    assert f'"{value}"' in api_src, f"API never sets outcome={value}"
            else:
                tables = set(re.findall(r"creditlake\.(\w+)", t["rawSql"]))
                assert tables and tables <= set(table_ddl("creditlake")), tables


K8S_DOCS = sorted(p.name for p in K8S.glob("*.yaml"))


@pytest.mark.parametrize("name", K8S_DOCS)
def test_k8s_manifests_are_well_formed(name: str) -> None:
    for doc in _yaml_docs(K8S / name):
        if name == "dagster-values.yaml":  # Helm values, not an object
            assert doc["dagster-user-deployments"]["deployments"][0]["image"]["repository"]
            assert doc["runLauncher"]["type"] == "K8sRunLauncher"
            assert doc["postgresql"]["enabled"] is False
            continue
        assert {"apiVersion", "kind"} <= set(doc), name
        if doc["kind"] == "Kustomization":
            for res in doc["resources"]:
                assert (K8S / res).is_file(), res
            continue
        assert doc["metadata"]["name"], name
        body = {"ConfigMap": "data", "Secret": "stringData", "Namespace": None}.get(
            doc["kind"], "spec")
        if body:
            assert doc[body], f"{name}: empty {body}"


def _k8s(kind: str) -> list[dict[str, Any]]:
    return [d for p in K8S.glob("*.yaml") for d in _yaml_docs(p)
            if isinstance(d, dict) and d.get("kind") == kind]


def test_k8s_api_objects_fit_together() -> None:
    (dep,) = _k8s("Deployment")
    (svc,) = _k8s("Service")
    (hpa,) = _k8s("HorizontalPodAutoscaler")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": dep["metadata"]["name"]}
    assert hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["port"] in ports
    (secret,) = _k8s("Secret")
    keys = set(secret["stringData"])
    env = container["env"]
    assert not any("PASSWORD" in e["name"] and "value" in e for e in env)
    for e in env:
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["name"] == secret["metadata"]["name"] and ref["key"] in keys


def test_k8s_clickhouse_is_two_by_two_with_keeper() -> None:
    from creditlake.clickhouse.ddl_cluster import DEFAULT_CLUSTER

    (chi,) = _k8s("ClickHouseInstallation")
    (chk,) = _k8s("ClickHouseKeeperInstallation")
    (cluster,) = chi["spec"]["configuration"]["clusters"]
    assert cluster["name"] == DEFAULT_CLUSTER
    assert cluster["layout"] == {"shardsCount": 2, "replicasCount": 2}
    assert chk["spec"]["configuration"]["clusters"][0]["layout"]["replicasCount"] == 3
    keeper_host = chi["spec"]["configuration"]["zookeeper"]["nodes"][0]["host"]
    assert keeper_host.startswith(f"keeper-{chk['metadata']['name']}.")
    users = chi["spec"]["configuration"]["users"]
    assert not any(k.endswith("/password") for k in users), "passwords only via Secrets"


def test_dockerfile_copies_existing_paths() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "uv sync --frozen --no-dev" in text
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), src
