#!/usr/bin/env bash
# Run a command (the test suite) in a private network namespace that holds only loopback,
# so nothing it starts can reach, or be reached from, another machine.
#
#   scripts/in-private-net.sh CMD [ARGS...]
#
# Outside, first: iproute2 is installed with apt-get when `ip` is missing (root only),
# since nothing can be installed from inside. Then CMD runs under `unshare --net --mount`
# (as root; otherwise in a user namespace of its own, `--map-root-user`), with:
# - `lo` up, and no other interface;
# - a fresh sysfs on /sys/class/net, so it lists this namespace's interfaces (only `lo`);
#   the private mount namespace keeps that mount, and those dockerd makes, to itself;
# - DLSPEC_RAY_PRIVATE_NET=1 exported, so tests can tell they run here.
# The host's network configuration is never touched. The exit status is CMD's.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

if [[ "${1:-}" == "--inside-private-net" ]]; then
    shift
    ip link set lo up
    sysfs=$(mktemp -d "${TMPDIR:-/tmp}/dlspec-ray-sysfs.XXXXXX")
    if mount -t sysfs sysfs "$sysfs" 2>/dev/null; then
        mount --bind "$sysfs/class/net" /sys/class/net
        umount -l "$sysfs"
    else
        echo "in-private-net.sh: cannot mount a sysfs here; /sys/class/net still lists the host's interfaces" >&2
    fi
    rmdir "$sysfs" 2>/dev/null || true
    others=$(ip -o link show | awk -F': ' '$2 != "lo" {print $2}')
    if [[ -n "$others" ]]; then
        echo "in-private-net.sh: the namespace has interfaces besides lo: $others" >&2
        exit 1
    fi
    export DLSPEC_RAY_PRIVATE_NET=1
    exec "$@"
fi

if ! command -v unshare >/dev/null; then
    echo "in-private-net.sh: unshare (util-linux) is not installed" >&2
    exit 1
fi
if ! command -v ip >/dev/null; then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        echo "in-private-net.sh: 'ip' is missing; install iproute2 (apt-get install iproute2)" >&2
        exit 1
    fi
    echo "in-private-net.sh: installing iproute2" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends iproute2 >/dev/null
fi

self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
userns=()
[[ $(id -u) -eq 0 ]] || userns=(--map-root-user)
if ! unshare ${userns[@]+"${userns[@]}"} --net --mount true 2>/dev/null; then
    echo "in-private-net.sh: cannot create a private network namespace here" \
        "(unshare ${userns[*]} --net --mount needs root, or unprivileged user namespaces)." \
        "Run as root, or run the suite directly: scripts/with-dockerd.sh .venv/bin/python -m pytest" >&2
    exit 1
fi
exec unshare ${userns[@]+"${userns[@]}"} --net --mount -- "$self" --inside-private-net "$@"
