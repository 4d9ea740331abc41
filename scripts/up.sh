#!/usr/bin/env bash
# README command 1: set everything up, then run a cluster in the foreground.
# Safe to run again: setup is idempotent and the server reuses its data dir.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/node-env.sh"
bash "$SKIFF_ROOT/scripts/setup.sh"
exec "$SKIFF_ROOT/bin/skiff" server "$@"
