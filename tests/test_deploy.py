"""deploy/: the YAML parses, and the invariants a reader relies on hold (no linter for Dockerfiles
or manifests is installable from the registries we use, so the obvious ones are checked here)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SETTINGS = {name.upper() for name in Settings.model_fields}


def load_all(path: Path) -> list[dict[str, Any]]:
    documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert documents, f"{path} is empty"
    assert all(isinstance(d, dict) for d in documents)
    return documents


def k8s(kind: str) -> dict[str, Any]:
    found = [d for p in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in load_all(p)]
    [document] = [d for d in found if d.get("kind") == kind]
    return document


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return float(match.group(1))


@pytest.mark.parametrize(
    "path", sorted(DEPLOY.rglob("*.yaml")), ids=lambda p: str(p.relative_to(DEPLOY))
)
def test_yaml_parses(path: Path) -> None:
    load_all(path)


def test_compose_runs_the_bot_with_a_persistent_redis_and_optional_model_servers() -> None:
    [compose] = load_all(DEPLOY / "compose.yaml")
    services = compose["services"]
    bot, redis = services["bot"], services["redis"]
    assert bot["build"]["dockerfile"] == "deploy/Dockerfile" and "profiles" not in bot
    assert bot["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert "redis" in bot["depends_on"]
    assert seconds(bot["stop_grace_period"]) > float(bot["environment"]["SHUTDOWN_GRACE_S"])
    assert set(bot["environment"]) <= SETTINGS
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    volume = redis["volumes"][0].split(":")
    assert volume[1] == "/data" and volume[0] in compose["volumes"]
    profiles = {p for s in services.values() for p in s.get("profiles", [])}
    assert profiles == {"ollama", "llamacpp", "vllm"}
    assert "devices" in str(services["vllm"]["deploy"]), "vLLM gets the GPUs"


def test_the_deployment_probes_the_health_endpoints_and_shuts_down_gracefully() -> None:
    deployment, config = k8s("Deployment"), k8s("ConfigMap")
    spec = deployment["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    [port] = container["ports"]
    assert config["data"]["METRICS_LISTEN"].endswith(f":{port['containerPort']}")
    assert {"requests", "limits"} <= container["resources"].keys()
    assert spec["securityContext"]["runAsNonRoot"] is True
    grace = float(config["data"]["SHUTDOWN_GRACE_S"])
    assert spec["terminationGracePeriodSeconds"] > grace
    assert deployment["spec"]["replicas"] == 1, "long polling: one replica (webhooks come later)"
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert k8s("Service")["spec"]["ports"][0]["targetPort"] == port["name"]


def test_the_autoscaler_config_and_secret_examples() -> None:
    hpa = k8s("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == k8s("Deployment")["metadata"]["name"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["maxReplicas"] == 1, "more than one replica needs webhook mode"
    assert set(k8s("ConfigMap")["data"]) <= SETTINGS
    secret = k8s("Secret")["stringData"]
    assert set(secret) <= SETTINGS and "TELEGRAM_BOT_TOKEN" in secret
    resources = load_all(DEPLOY / "k8s" / "kustomization.yaml")[0]["resources"]
    assert sorted(resources) == sorted(
        p.name for p in (DEPLOY / "k8s").glob("*.yaml") if p.name != "kustomization.yaml"
    )


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    lines = [
        line.strip()
        for line in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    stages = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    assert len(stages) >= 2
    assert all(lines[i].split()[1] == "python:3.11-slim" for i in stages)
    final = lines[stages[-1] :]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK") for line in final)
    assert "/healthz" in (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    build = "\n".join(lines[: stages[-1]])
    assert "-r requirements.lock" in build and "--no-deps" in build
    assert build.index("requirements.lock") < build.index("--no-deps")


def test_systemd_unit() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment, method-assign]
    unit.read(DEPLOY / "telellama.service", encoding="utf-8")
    service = unit["Service"]
    assert service["ExecStart"].endswith("telellama run")
    assert service["User"] != "root"
    assert service["KillSignal"] == "SIGTERM"
    defaults = dict(pair.split("=", 1) for pair in service["Environment"].split())
    assert set(defaults) <= SETTINGS
    assert float(service["TimeoutStopSec"]) > float(defaults["SHUTDOWN_GRACE_S"])
    assert unit["Install"]["WantedBy"] == "multi-user.target"
