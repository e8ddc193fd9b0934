#!/usr/bin/env bash
# Checks deploy/ with what can run on a machine without a container runtime
# or a cluster: nats-server tests both configurations; the Kubernetes
# manifests are validated against the API schemas (kubernetes-validate,
# from PyPI, installed when missing); docker-compose.yml and the manifests
# are checked against each other and the workspace (binaries, producers,
# ports, volumes, health checks); the scripts parse.
set -euo pipefail
cd "$(dirname "$0")"

scripts="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
export PATH="${scripts:+$scripts:}$HOME/.local/bin:$PATH"

nats-server -t -c nats/single.conf
SERVER_NAME=nats-0 nats-server -t -c nats/cluster.conf

if ! command -v kubernetes-validate >/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
fi
kubernetes-validate --quiet --strict -k 1.30.0 k8s/*.yaml

bash -n local.sh check.sh

python3 - <<'EOF'
"""docker-compose.yml and the manifests against each other and the workspace."""
import pathlib
import re
import sys

import yaml

root = pathlib.Path("..")
problems = []

# The binaries the workspace builds, and the producers they publish as.
binaries = set()
for manifest in root.glob("crates/*/Cargo.toml"):
    binaries |= set(re.findall(r'\[\[bin\]\]\s*\nname = "([^"]+)"', manifest.read_text()))
producers = {
    "referral-intake": ("referral-intake", 50052),
    "conference-scheduler": ("conference-scheduler", 50053),
    "plan-registry": ("plan-registry", 50054),
    "notification": ("notification-service", 50055),
}

compose = yaml.safe_load(pathlib.Path("docker-compose.yml").read_text())
services = compose["services"]
volumes = set(compose.get("volumes") or {})
for producer, (binary, port) in producers.items():
    if binary not in binaries:
        problems.append(f"{binary} is not a binary of the workspace")
    service = services.get(binary)
    if service is None:
        problems.append(f"docker-compose.yml has no service {binary}")
        continue
    command = service["command"]
    if command[0] != binary:
        problems.append(f"{binary} runs {command[0]}")
    if f"0.0.0.0:{port}" not in command:
        problems.append(f"{binary} does not listen on {port}")
    given = dict(arg.split("=", 1) for arg in command if "=http" in arg)
    expected = {p: f"http://{b}:{pt}" for p, (b, pt) in producers.items() if p != producer}
    if given != expected:
        problems.append(f"{binary} repairs gaps from {given}, expected {expected}")
    if "healthcheck" not in service:
        problems.append(f"{binary} has no health check")
    for volume in service.get("volumes", []):
        name = volume.split(":")[0]
        if not name.startswith(".") and name not in volumes:
            problems.append(f"{binary} mounts undeclared volume {name}")
    if service.get("depends_on", {}).get("nats", {}).get("condition") != "service_healthy":
        problems.append(f"{binary} does not wait for a healthy NATS")

# The cluster ConfigMap carries deploy/nats/cluster.conf unchanged.
nats = list(yaml.safe_load_all(pathlib.Path("k8s/nats.yaml").read_text()))
configmap = next(doc for doc in nats if doc["kind"] == "ConfigMap")
if configmap["data"]["nats.conf"].strip() != pathlib.Path("nats/cluster.conf").read_text().strip():
    problems.append("k8s/nats.yaml's ConfigMap differs from nats/cluster.conf")

manifests = list(yaml.safe_load_all(pathlib.Path("k8s/services.yaml").read_text()))
for producer, (binary, port) in producers.items():
    sets = [d for d in manifests if d["kind"] == "StatefulSet" and d["metadata"]["name"] == binary]
    if len(sets) != 1:
        problems.append(f"k8s/services.yaml has {len(sets)} StatefulSets for {binary}")
        continue
    container = sets[0]["spec"]["template"]["spec"]["containers"][0]
    if container["args"][0] != binary or f"0.0.0.0:{port}" not in container["args"]:
        problems.append(f"k8s {binary} runs {container['args'][:5]}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if container.get(probe, {}).get("grpc", {}).get("port") != port:
            problems.append(f"k8s {binary} has no gRPC {probe} on {port}")

if problems:
    print("deploy/check.sh:", *problems, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print("deploy/check.sh: docker-compose.yml and k8s/ agree with the workspace")
EOF
