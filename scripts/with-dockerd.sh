#!/usr/bin/env bash
# Run a command (the test suite) with a private Docker engine: start it, export
# DOCKER_HOST, run the command, stop the engine by its PID, exit with the command's code.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=$(mktemp -d "${TMPDIR:-/tmp}/dlspec-ray-dockerd.XXXXXX")
trap '"$here/dockerd.sh" stop "$state"' EXIT
trap 'exit 130' INT TERM
"$here/dockerd.sh" start "$state" $$
# shellcheck disable=SC1091
[[ -f "$state/env" ]] && source "$state/env"
"$@"
