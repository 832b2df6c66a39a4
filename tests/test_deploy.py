"""deploy/: the YAML parses, and the invariants a reader relies on hold (no linter for Dockerfiles
or manifests is installable from the registries we use, so the obvious ones are checked here)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bot import metrics
from bot.settings import Settings, load_settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SETTINGS = {name.upper() for name in Settings.model_fields}


def load_all(path: Path) -> list[dict[str, Any]]:
    documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert documents, f"{path} is empty"
    assert all(isinstance(d, dict) for d in documents)
    return documents


def k8s(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for p in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in load_all(p)]
    [document] = [
        d
        for d in found
        if d.get("kind") == kind and name in (None, d.get("metadata", {}).get("name"))
    ]
    return document


def commented_yaml(path: Path) -> list[Any]:
    """The YAML examples in a file's comments: runs of comment lines whose text (after `# `)
    is indented or starts with `- `, each parsed as one document."""
    blocks: list[list[str]] = [[]]
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        code = text[2:] if text.startswith("# ") else None
        if code is not None and (code.startswith(" ") or code.startswith("- ")):
            blocks[-1].append(code)
        elif blocks[-1]:
            blocks.append([])
    return [yaml.safe_load("\n".join(block)) for block in blocks if block]


def container() -> dict[str, Any]:
    [found] = k8s("Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(found)


def port_named(name: str) -> int:
    [port] = [p["containerPort"] for p in container()["ports"] if p["name"] == name]
    return int(port)


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
    # Long polling by default (one bot); the header shows how to run webhook mode.
    assert "WEBHOOK_URL" not in bot["environment"] and bot.get("command", ["run"]) == ["run"]
    header = (DEPLOY / "compose.yaml").read_text(encoding="utf-8").split("\nname:")[0]
    assert "WEBHOOK_URL=" in header and "WEBHOOK_SECRET=" in header and "--scale bot=" in header
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
    bot = container()
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert bot[probe]["httpGet"]["port"] == "metrics", probe
    assert bot["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert bot["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert bot["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert config["data"]["METRICS_LISTEN"].endswith(f":{port_named('metrics')}")
    assert {"requests", "limits"} <= bot["resources"].keys()
    assert "cpu" in bot["resources"]["requests"], "the autoscaler's CPU target needs a request"
    assert spec["securityContext"]["runAsNonRoot"] is True
    grace = float(config["data"]["SHUTDOWN_GRACE_S"])
    pause = bot["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    assert spec["terminationGracePeriodSeconds"] > float(pause[1]) + grace
    [metrics_service] = k8s("Service", "telellama")["spec"]["ports"]
    assert metrics_service["targetPort"] == "metrics"


def test_the_deployment_runs_webhook_mode_with_several_replicas_behind_an_ingress() -> None:
    deployment, config = k8s("Deployment"), k8s("ConfigMap")
    bot, settings = container(), config["data"]
    assert bot["args"] == ["run", "--webhook"]
    assert deployment["spec"]["replicas"] >= 2, "webhook mode: replicas share the queue"
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    # The webhook settings: public URL and listening port in the ConfigMap, secret in the Secret.
    assert settings["WEBHOOK_LISTEN"] == f"0.0.0.0:{port_named('webhook')}"
    assert "WEBHOOK_SECRET" in k8s("Secret")["stringData"]
    url = urlsplit(settings["WEBHOOK_URL"])
    assert url.scheme == "https" and url.port in (None, 443, 80, 88, 8443)
    # Ingress (TLS for the URL's host) -> webhook Service -> the container's webhook port.
    service = k8s("Service", "telellama-webhook")["spec"]
    assert service["selector"] == deployment["spec"]["selector"]["matchLabels"]
    [port] = service["ports"]
    assert port["targetPort"] == "webhook"
    ingress = k8s("Ingress")["spec"]
    assert [url.hostname] in [t["hosts"] for t in ingress["tls"]]
    [rule] = ingress["rules"]
    [path] = rule["http"]["paths"]
    assert (rule["host"], path["path"]) == (url.hostname, url.path)
    backend = path["backend"]["service"]
    assert backend == {"name": "telellama-webhook", "port": {"name": port["name"]}}
    # And the bot accepts the examples as they stand.
    values = {**settings, **k8s("Secret")["stringData"]}
    loaded = load_settings(_env_file=None, **{name.lower(): v for name, v in values.items()})
    assert loaded.webhook_address() == ("0.0.0.0", port_named("webhook"))


def test_the_autoscaler_config_and_secret_examples() -> None:
    hpa, deployment = k8s("HorizontalPodAutoscaler"), k8s("Deployment")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    shards = int(
        k8s("ConfigMap")["data"].get("QUEUE_SHARDS", Settings.model_fields["queue_shards"].default)
    )
    assert 2 <= hpa["spec"]["minReplicas"] <= deployment["spec"]["replicas"]
    assert hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"] <= shards, "more get no work"
    # The commented example of scaling on the queue: an adapter rule, and a Pods metric that
    # names a metric the bot exports.
    rules, [pods] = commented_yaml(DEPLOY / "k8s" / "hpa.yaml")
    [rule] = rules["rules"]
    exported = {f.name for f in metrics.REGISTRY.collect()}
    assert pods["type"] == "Pods" and pods["pods"]["metric"]["name"] in exported
    assert pods["pods"]["metric"]["name"] in rule["seriesQuery"]
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
