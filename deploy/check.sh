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

# The NATS configurations, as they are, with throwaway secrets beside them
# (a certificate made here, the fixture users.conf): valid with every
# variable set, refused with one missing, never listening in the clear, and
# monitoring only on loopback.
nats="${NATS_SERVER:-$(command -v nats-server || echo "$HOME/.local/bin/nats-server")}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cp nats/single.conf nats/cluster.conf "$scratch/"
mkdir "$scratch/secrets"
cp nats/test-fixture/users.conf "$scratch/secrets/users.conf"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=check \
  -keyout "$scratch/key.pem" -out "$scratch/cert.pem" 2>/dev/null
export SAFEGUARD_NATS_CERT="$scratch/cert.pem" SAFEGUARD_NATS_CERT_KEY="$scratch/key.pem" \
  SAFEGUARD_NATS_CA="$scratch/cert.pem" SAFEGUARD_NATS_STORE_KEY=check \
  SAFEGUARD_NATS_MONITOR=127.0.0.1:8222
SAFEGUARD_NATS_LISTEN=0.0.0.0:4222 SAFEGUARD_NATS_STORE="$scratch/store" "$nats" -t -c "$scratch/single.conf"
SERVER_NAME=nats-0 SAFEGUARD_NATS_ROUTE_PASSWORD=check SAFEGUARD_NATS_ROUTE_0=nats-route://route:check@nats-0:6222 \
  SAFEGUARD_NATS_ROUTE_1=nats-route://route:check@nats-1:6222 SAFEGUARD_NATS_ROUTE_2=nats-route://route:check@nats-2:6222 \
  "$nats" -t -c "$scratch/cluster.conf"
if (unset SAFEGUARD_NATS_STORE_KEY; SAFEGUARD_NATS_LISTEN=0.0.0.0:4222 SAFEGUARD_NATS_STORE="$scratch/store" \
    "$nats" -t -c "$scratch/single.conf") >/dev/null 2>&1; then
  echo "deploy/check.sh: nats/single.conf starts without its store key" >&2
  exit 1
fi
for conf in nats/single.conf nats/cluster.conf; do
  for needed in "verify: true" "cipher: chachapoly" "key: \$SAFEGUARD_NATS_STORE_KEY" "sync_interval: always" \
    "http: \$SAFEGUARD_NATS_MONITOR" "include ./secrets/users.conf"; do
    grep -qF "$needed" "$conf" || { echo "deploy/check.sh: $conf lacks $needed" >&2; exit 1; }
  done
done

if ! command -v kubernetes-validate >/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
fi
kubernetes-validate --quiet --strict -k 1.30.0 k8s/*.yaml

bash -n local.sh check.sh

python3 - <<'EOF'
"""docker-compose.yml and the manifests against each other and the workspace."""
import json
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
# producer: (compose service, binary, port). The registry runs as two pods
# in compose: the primary and a read replica, a producer of its own.
producers = {
    "referral-intake": ("referral-intake", "referral-intake", 50052),
    "conference-scheduler": ("conference-scheduler", "conference-scheduler", 50053),
    "plan-registry": ("plan-registry", "plan-registry", 50054),
    "plan-registry-1": ("plan-registry-1", "plan-registry", 50054),
    "notification": ("notification-service", "notification-service", 50055),
}
registry_pods = [p for p in producers if p.startswith("plan-registry")]
# One settings file for every service (crates/service-core/src/settings.rs).
SETTINGS_PATH = "/etc/safeguard/settings.json"
REALM_PATH = "/etc/safeguard/realm"
SECURITY_PATH = "/etc/safeguard-security/security.json"
settings = pathlib.Path("settings.json").read_text()
json.loads(settings)
def flag(command, name):
    return command[command.index(name) + 1] if name in command else None
compose = yaml.safe_load(pathlib.Path("docker-compose.yml").read_text())
services = compose["services"]
volumes = set(compose.get("volumes") or {})
for producer, (name, binary, port) in producers.items():
    if binary not in binaries:
        problems.append(f"{binary} is not a binary of the workspace")
    service = services.get(name)
    if service is None:
        problems.append(f"docker-compose.yml has no service {name}")
        continue
    command = service["command"]
    if command[0] != binary:
        problems.append(f"{name} runs {command[0]}")
    if f"0.0.0.0:{port}" not in command:
        problems.append(f"{name} does not listen on {port}")
    if flag(command, "--metrics") != "0.0.0.0:9090":
        problems.append(f"{name} serves no metrics on 9090")
    if flag(command, "--config") != SETTINGS_PATH or not any(
            v.startswith("./settings.json:" + SETTINGS_PATH) for v in service.get("volumes", [])):
        problems.append(f"{name} does not read deploy/settings.json at {SETTINGS_PATH}")
    given = dict(arg.split("=", 1) for arg in command if "=http" in arg)
    expected = {p: f"https://{n}:{pt}" for p, (n, _, pt) in producers.items() if p != producer}
    if given != expected:
        problems.append(f"{name} repairs gaps from {given}, expected {expected}")
    if producer in registry_pods or producer == "notification":
        if flag(command, "--registry-pods") != str(len(registry_pods)):
            problems.append(f"{name} is not told of {len(registry_pods)} registry pods")
    if producer in registry_pods and flag(command, "--pod") != str(registry_pods.index(producer)):
        problems.append(f"{name} is not --pod {registry_pods.index(producer)}")
    # Whom it trusts: the realm mounted read-only (never in the image), and
    # the loud flag a realm needs beyond loopback; the health check acts in it.
    if flag(command, "--realm") != REALM_PATH or "--insecure-development-realm-on-network" not in command \
            or "./realm:" + REALM_PATH + ":ro" not in service.get("volumes", []):
        problems.append(f"{name} does not trust the realm mounted read-only at {REALM_PATH}")
    check = service.get("healthcheck", {}).get("test", [])
    if f"https://127.0.0.1:{port}" not in check or flag(check, "--realm") != REALM_PATH:
        problems.append(f"{name} has no health check over TLS in the realm: {check}")
    for volume in service.get("volumes", []):
        volume_name = volume.split(":")[0]
        if not volume_name.startswith(".") and volume_name not in volumes:
            problems.append(f"{name} mounts undeclared volume {volume_name}")
    if service.get("depends_on", {}).get("nats", {}).get("condition") != "service_healthy":
        problems.append(f"{name} does not wait for a healthy NATS")
# Each log has one writer: no two services share a data volume (files
# mounted read-only, like the settings, may be shared).
mounted = [v.split(":")[0] for s in services.values() for v in s.get("volumes", [])
           if not v.endswith(":ro")]
if len(mounted) != len(set(mounted)):
    problems.append(f"services share a volume: {mounted}")
# NATS in compose: the configuration as it is, its users, TLS files and
# store key from the realm (mounted, never built in), monitoring on the
# container's loopback.
nats_service = services["nats"]
nats_env = nats_service.get("environment", {})
for needed in ["./nats/single.conf:/etc/nats/nats.conf:ro", "./realm/nats/users.conf:/etc/nats/secrets/users.conf:ro",
               "./realm/server.pem:/etc/nats/tls/server.pem:ro", "./realm/server.key:/etc/nats/tls/server.key:ro",
               "./realm/ca.pem:/etc/nats/tls/ca.pem:ro"]:
    if needed not in nats_service.get("volumes", []):
        problems.append(f"compose nats does not mount {needed}")
if "./realm/nats/nats.env" not in nats_service.get("env_file", []):
    problems.append("compose nats does not take its store key from the realm (env_file)")
if not str(nats_env.get("SAFEGUARD_NATS_MONITOR", "")).startswith("127.0.0.1:"):
    problems.append("compose nats monitoring is not on loopback")
for variable in ["SAFEGUARD_NATS_LISTEN", "SAFEGUARD_NATS_CERT", "SAFEGUARD_NATS_CERT_KEY", "SAFEGUARD_NATS_CA",
                 "SAFEGUARD_NATS_STORE"]:
    if variable not in nats_env:
        problems.append(f"compose nats does not set {variable}")
if any("8222" in port for port in nats_service.get("ports", [])):
    problems.append("compose publishes the NATS monitoring port")
# The cluster ConfigMap carries deploy/nats/cluster.conf unchanged.
nats = list(yaml.safe_load_all(pathlib.Path("k8s/nats.yaml").read_text()))
configmap = next(doc for doc in nats if doc["kind"] == "ConfigMap")
if configmap["data"]["nats.conf"].strip() != pathlib.Path("nats/cluster.conf").read_text().strip():
    problems.append("k8s/nats.yaml's ConfigMap differs from nats/cluster.conf")

nats_set = next(doc for doc in nats if doc["kind"] == "StatefulSet")
nats_container = nats_set["spec"]["template"]["spec"]["containers"][0]
nats_env = {e["name"]: e for e in nats_container.get("env", [])}
for variable in ["SERVER_NAME", "SAFEGUARD_NATS_MONITOR", "SAFEGUARD_NATS_CERT", "SAFEGUARD_NATS_CERT_KEY",
                 "SAFEGUARD_NATS_CA", "SAFEGUARD_NATS_STORE_KEY", "SAFEGUARD_NATS_ROUTE_PASSWORD",
                 "SAFEGUARD_NATS_ROUTE_0", "SAFEGUARD_NATS_ROUTE_1", "SAFEGUARD_NATS_ROUTE_2"]:
    if variable not in nats_env:
        problems.append(f"k8s nats does not set {variable}")
for secret_variable in ["SAFEGUARD_NATS_STORE_KEY", "SAFEGUARD_NATS_ROUTE_PASSWORD"]:
    if nats_env.get(secret_variable, {}).get("valueFrom", {}).get("secretKeyRef", {}).get("name") != "safeguard-nats":
        problems.append(f"k8s nats does not take {secret_variable} from the safeguard-nats Secret")
if not str(nats_env.get("SAFEGUARD_NATS_MONITOR", {}).get("value", "")).startswith("127.0.0.1:"):
    problems.append("k8s nats monitoring is not on loopback")
nats_volumes = {v["name"]: v for v in nats_set["spec"]["template"]["spec"]["volumes"]}
nats_mounts = {m["mountPath"]: m["name"] for m in nats_container["volumeMounts"]}
if nats_volumes.get(nats_mounts.get("/etc/nats/secrets"), {}).get("secret", {}).get("secretName") != "safeguard-nats":
    problems.append("k8s nats does not mount its users from the safeguard-nats Secret at /etc/nats/secrets")
if nats_volumes.get(nats_mounts.get("/etc/nats/tls"), {}).get("secret", {}).get("secretName") != "safeguard-nats-tls":
    problems.append("k8s nats does not mount its TLS from the safeguard-nats-tls Secret at /etc/nats/tls")
nats_headless = next(doc for doc in nats if doc["kind"] == "Service")
if any(p["port"] == 8222 for p in nats_headless["spec"]["ports"]):
    problems.append("k8s exposes the NATS monitoring port")

manifests = list(yaml.safe_load_all(pathlib.Path("k8s/services.yaml").read_text()))
settings_map = [d for d in manifests if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "safeguard-settings"]
if len(settings_map) != 1 or settings_map[0]["data"]["settings.json"].strip() != settings.strip():
    problems.append("k8s/services.yaml's safeguard-settings ConfigMap differs from settings.json")
def stateful_set(binary):
    sets = [d for d in manifests if d["kind"] == "StatefulSet" and d["metadata"]["name"] == binary]
    if len(sets) != 1:
        problems.append(f"k8s/services.yaml has {len(sets)} StatefulSets for {binary}")
        return None
    return sets[0]
ports = {binary: port for _, binary, port in producers.values()}
for binary, port in ports.items():
    found = stateful_set(binary)
    if found is None:
        continue
    container = found["spec"]["template"]["spec"]["containers"][0]
    if container["args"][0] != binary or f"0.0.0.0:{port}" not in container["args"]:
        problems.append(f"k8s {binary} runs {container['args'][:5]}")
    if flag(container["args"], "--metrics") != "0.0.0.0:9090" or not any(
            p.get("containerPort") == 9090 for p in container.get("ports", [])):
        problems.append(f"k8s {binary} serves no metrics on 9090")
    mounted = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/etc/safeguard"]
    pod_volumes = {v["name"]: v for v in found["spec"]["template"]["spec"].get("volumes", [])}
    if flag(container["args"], "--config") != SETTINGS_PATH or not mounted or pod_volumes.get(
            mounted[0]["name"], {}).get("configMap", {}).get("name") != "safeguard-settings":
        problems.append(f"k8s {binary} does not read the safeguard-settings ConfigMap at {SETTINGS_PATH}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        http_get = container.get(probe, {}).get("httpGet", {})
        if http_get.get("path") != "/healthz" or http_get.get("port") != 9090:
            problems.append(f"k8s {binary} has no {probe} on /healthz at 9090")
    secured = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/etc/safeguard-security"]
    if flag(container["args"], "--security") != SECURITY_PATH or not secured or not secured[0].get(
            "readOnly") or pod_volumes.get(secured[0]["name"], {}).get("secret", {}).get(
            "secretName") != "safeguard-security":
        problems.append(f"k8s {binary} does not read its security from the safeguard-security Secret")
    # Its own NKEY, from a Secret no other service mounts.
    seed = flag(container["args"], "--nats-seed") or ""
    nkeys = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/etc/safeguard-nats"]
    own = "plan-registry" if binary == "plan-registry" else next(
        p for p, (_, b, _) in producers.items() if b == binary)
    if not seed.startswith("/etc/safeguard-nats/") or not nkeys or pod_volumes.get(nkeys[0]["name"], {}).get(
            "secret", {}).get("secretName") != f"safeguard-nats-{own}":
        problems.append(f"k8s {binary} does not take its NKEY from the safeguard-nats-{own} Secret")
# The registry's pods: as many as every service is told of, each reachable
# by name through a headless Service, each named as a producer.
registry = stateful_set("plan-registry")
if registry is not None:
    pods = registry["spec"]["replicas"]
    headless = registry["spec"]["serviceName"]
    if not any(d["kind"] == "Service" and d["metadata"]["name"] == headless
               and d["spec"].get("clusterIP") == "None" for d in manifests):
        problems.append(f"k8s plan-registry's serviceName {headless} is not a headless Service")
    pod_urls = {("plan-registry" if n == 0 else f"plan-registry-{n}"):
                f"https://plan-registry-{n}.{headless}.safeguard.svc.cluster.local:50054"
                for n in range(pods)}
    for binary in ports:
        found = stateful_set(binary)
        if found is None:
            continue
        args = found["spec"]["template"]["spec"]["containers"][0]["args"]
        given = dict(arg.split("=", 1) for arg in args if "=http" in arg)
        for producer, url in pod_urls.items():
            if given.get(producer) != url:
                problems.append(f"k8s {binary} repairs {producer} from {given.get(producer)}, expected {url}")
        if binary in ("plan-registry", "notification-service") and flag(args, "--registry-pods") != str(pods):
            problems.append(f"k8s {binary} is not told of the {pods} registry pods")
    container = registry["spec"]["template"]["spec"]["containers"][0]
    if flag(container["args"], "--pod") != "$(POD_NAME)" or not any(
        e["name"] == "POD_NAME" and e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name"
        for e in container.get("env", [])):
        problems.append("k8s plan-registry pods are not told their name (--pod $(POD_NAME))")
# The agencies' HTTPS edges: each the workspace's binary on its port,
# asking its service over gRPC, trusting what the services trust, with a
# Deployment and a Service in k8s.
def check_edge(name, port, upstream_flag, compose_upstream, k8s_upstream):
    if name not in binaries:
        problems.append(f"{name} is not a binary of the workspace")
    edge = services.get(name)
    if edge is None:
        problems.append(f"docker-compose.yml has no service {name}")
    else:
        command = edge["command"]
        if command[0] != name or flag(command, "--listen") != f"0.0.0.0:{port}":
            problems.append(f"compose {name} runs {command[:3]}")
        if flag(command, upstream_flag) != compose_upstream:
            problems.append(f"compose {name} does not ask {compose_upstream}")
        if flag(command, "--realm") != REALM_PATH or "./realm:" + REALM_PATH + ":ro" not in edge.get("volumes", []):
            problems.append(f"compose {name} does not trust the realm mounted read-only at {REALM_PATH}")
    deployments = [d for d in manifests if d["kind"] == "Deployment" and d["metadata"]["name"] == name]
    if len(deployments) != 1:
        problems.append(f"k8s/services.yaml has {len(deployments)} Deployments for {name}")
    else:
        pod = deployments[0]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        args = container["args"]
        if args[0] != name or flag(args, "--listen") != f"0.0.0.0:{port}":
            problems.append(f"k8s {name} runs {args[:3]}")
        if flag(args, upstream_flag) != k8s_upstream:
            problems.append(f"k8s {name} does not ask {k8s_upstream}")
        secured = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/etc/safeguard-security"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        if flag(args, "--security") != SECURITY_PATH or not secured or volumes.get(
                secured[0]["name"], {}).get("secret", {}).get("secretName") != "safeguard-security":
            problems.append(f"k8s {name} does not read its security from the safeguard-security Secret")
    if not any(d["kind"] == "Service" and d["metadata"]["name"] == name for d in manifests):
        problems.append(f"k8s/services.yaml has no Service {name}")
check_edge("fhir-edge", 8443, "--registry", "https://plan-registry:50054",
           "https://plan-registry.safeguard.svc.cluster.local:50054")
check_edge("police-intake", 8444, "--referrals", "https://referral-intake:50052",
           "https://referral-intake.safeguard.svc.cluster.local:50052")
# The GP bridge: the workspace's binary, reading the notification service,
# one pod with its ledger on a volume (two would each deliver).
if "gp-bridge" not in binaries:
    problems.append("gp-bridge is not a binary of the workspace")
bridge = services.get("gp-bridge")
if bridge is None:
    problems.append("docker-compose.yml has no service gp-bridge")
else:
    command = bridge["command"]
    if command[0] != "gp-bridge" or flag(command, "--config") != "/etc/safeguard-gp-bridge/config.json":
        problems.append(f"compose gp-bridge runs {command[:3]}")
    if flag(command, "--realm") != REALM_PATH or "./realm:" + REALM_PATH + ":ro" not in bridge.get("volumes", []):
        problems.append(f"compose gp-bridge does not trust the realm mounted read-only at {REALM_PATH}")
    bridge_config = json.loads(pathlib.Path("gp-bridge/config.json").read_text())
    if bridge_config["notifications"] != "https://notification-service:50055":
        problems.append("deploy/gp-bridge/config.json does not read the notification service")
    if bridge_config["state_dir"] != "/data" or not any(v.endswith(":/data") for v in bridge.get("volumes", [])):
        problems.append("compose gp-bridge does not keep its ledger on a volume")
bridges = [d for d in manifests if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "gp-bridge"]
if len(bridges) != 1:
    problems.append(f"k8s/services.yaml has {len(bridges)} StatefulSets for gp-bridge")
else:
    spec = bridges[0]["spec"]
    args = spec["template"]["spec"]["containers"][0]["args"]
    if spec["replicas"] != 1:
        problems.append("k8s gp-bridge runs more than one pod: each would deliver every notification")
    if args[0] != "gp-bridge" or flag(args, "--security") != SECURITY_PATH:
        problems.append(f"k8s gp-bridge runs {args[:3]}")
    if not spec.get("volumeClaimTemplates"):
        problems.append("k8s gp-bridge keeps its ledger on no volume")
if problems:
    print("deploy/check.sh:", *problems, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print("deploy/check.sh: docker-compose.yml and k8s/ agree with the workspace")
EOF
