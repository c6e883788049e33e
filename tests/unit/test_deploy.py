"""deploy/ cannot run here (no container engine): check what can be checked without one.

The YAML parses; every environment variable the manifests set is one the code reads (the table
in consumers/settings.py), secrets sit in the Secret; every process runs a command the CLI
accepts, with the components the runtime knows; Kafka runs in KRaft mode; the deployment guide
names every topic and variable.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from consumers.commands import up
from consumers.runtime import COMPONENTS
from consumers.settings import ENV_NAMES, ENVIRONMENT, TOPICS

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML belongs to the test extras
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("PyYAML is not installed (pip install pyyaml)", allow_module_level=True)

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
K8S = sorted((DEPLOY / "k8s").glob("*.yaml"))
SECRET_NAMES = {v.name for v in ENVIRONMENT if v.secret}


def load_all(path: Path) -> list[Any]:
    return list(_parsed(path))


@cache
def _parsed(path: Path) -> tuple[Any, ...]:
    """Each file parsed once per run (pure-Python PyYAML is slow and the checks read the
    manifests many times); the tests only read what it returns."""
    return tuple(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None)


def manifests(kind: str) -> list[dict[str, Any]]:
    return [d for path in K8S for d in load_all(path) if d.get("kind") == kind]


def accepted_by_cli(args: list[str]) -> None:
    """Parse the arguments as `complaints` would (raises on a bad option or choice)."""
    assert args[0] == "up", args
    up.make_context("up", list(args[1:]))


def test_every_yaml_file_parses() -> None:
    assert COMPOSE.exists() and len(K8S) >= 6
    for path in [COMPOSE, *K8S]:
        assert load_all(path), path


def test_compose_runs_kraft_kafka_postgres_a_migration_and_each_process() -> None:
    compose = load_all(COMPOSE)[0]
    services = compose["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert not any("zookeeper" in name for name in services)
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["migrate"]["command"] == ["up", "--init"]
    for name in COMPONENTS:
        service = services[name]
        assert service["command"] == ["up", "--only", name, "--no-migrate"]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        accepted_by_cli(service["command"])
        environment = service["environment"]
        assert set(environment) <= ENV_NAMES, set(environment) - ENV_NAMES
        assert {"KAFKA_BOOTSTRAP_SERVERS", "COMPLAINTS_DATABASE_URL"} <= set(environment)
        assert environment["KAFKA_BOOTSTRAP_SERVERS"].split(":")[0] == "kafka"
        assert "@postgres:" in environment["COMPLAINTS_DATABASE_URL"]
    accepted_by_cli(services["migrate"]["command"])


def test_kubernetes_config_names_only_variables_the_code_reads() -> None:
    (config,) = manifests("ConfigMap")
    (secret,) = manifests("Secret")
    assert set(config["data"]) <= ENV_NAMES, set(config["data"]) - ENV_NAMES
    assert set(secret["stringData"]) <= ENV_NAMES
    assert not set(config["data"]) & SECRET_NAMES, "secrets belong in the Secret"
    assert "COMPLAINTS_DATABASE_URL" in secret["stringData"]
    assert "KAFKA_BOOTSTRAP_SERVERS" in config["data"]


def test_kubernetes_runs_each_process_as_a_deployment_and_migrations_as_a_job() -> None:
    deployments = {d["metadata"]["name"]: d for d in manifests("Deployment")}
    assert set(deployments) == {f"complaints-{name}" for name in COMPONENTS}
    config = manifests("ConfigMap")[0]["metadata"]["name"]
    secret = manifests("Secret")[0]["metadata"]["name"]
    for name in COMPONENTS:
        spec = deployments[f"complaints-{name}"]["spec"]
        (container,) = spec["template"]["spec"]["containers"]
        assert container["args"] == ["up", "--only", name, "--no-migrate"]
        accepted_by_cli(container["args"])
        assert container["envFrom"] == [{"configMapRef": {"name": config}},
                                        {"secretRef": {"name": secret}}]
        # Probes on the health server (consumers/health.py), or the ops server's own.
        data = manifests("ConfigMap")[0]["data"]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        port = "ops" if name == "aggregator" else "health"
        assert ports[port] == int(data["COMPLAINTS_WEB_PORT" if port == "ops"
                                       else "COMPLAINTS_HEALTH_PORT"])
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": port}
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": port}
        # A stop ends (exit 1 at worst) before Kubernetes would SIGKILL the pod.
        grace = spec["template"]["spec"]["terminationGracePeriodSeconds"]
        assert float(data["COMPLAINTS_STOP_TIMEOUT_S"]) < grace
    assert deployments["complaints-consumer"]["spec"]["replicas"] <= TOPICS["events"].partitions
    (job,) = manifests("Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["up", "--init"]
    kustomization = manifests("Kustomization")[0]
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in K8S if p.name != "kustomization.yaml")


def test_the_image_runs_the_complaints_command_with_a_health_file() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["complaints"]' in dockerfile
    health = re.search(r"COMPLAINTS_HEALTH_FILE=(\S+)", dockerfile)
    assert health and health.group(1) in dockerfile.split("HEALTHCHECK", 1)[1]
    for package in ("workflow", "consumers", "letters", "reporting"):
        assert f"COPY {package} ./{package}" in dockerfile


def test_the_deployment_guide_names_every_topic_and_variable() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    for spec in TOPICS.values():
        assert f"`{spec.name}` | {spec.partitions} |" in guide, spec.name
    for name in ENV_NAMES:
        assert f"`{name}`" in guide, name
