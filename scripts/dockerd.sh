#!/usr/bin/env bash
# A private Docker engine for dlspec-ray's tests and CI, started and stopped by PID.
#
#   scripts/dockerd.sh start STATE_DIR   start it; writes STATE_DIR/env, to be sourced:
#                                        DOCKER_HOST=unix://STATE_DIR/docker.sock, or, when
#                                        no engine can run here, DLSPEC_RAY_DOCKER_UNAVAILABLE
#                                        with the reason (the Docker tests then skip with it)
#   scripts/dockerd.sh stop STATE_DIR    stop it by its PID and remove STATE_DIR
#   scripts/dockerd.sh start STATE_DIR WATCH_PID
#                                        also stop it when process WATCH_PID ends, even if
#                                        that process is killed and cannot stop it itself
#
# It installs docker.io (and debootstrap, for base images) with apt-get when they are
# missing. The engine has its own --exec-root and socket under STATE_DIR, and never
# touches the host's network configuration (no bridge, no iptables, no forwarding).
# Its --data-root is kept across runs (DLSPEC_RAY_DOCKERD_DATA, default
# /var/cache/dlspec-ray/dockerd) so built images survive; an engine already using it
# makes this one fall back to a fresh data root under STATE_DIR.
set -uo pipefail

cmd=${1:-}
state=${2:-}
watch=${3:-}
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
if [[ -z "$cmd" || -z "$state" ]]; then
    echo "usage: $0 start|stop STATE_DIR" >&2
    exit 2
fi

unavailable() {
    echo "export DLSPEC_RAY_DOCKER_UNAVAILABLE=$(printf '%q' "$1")" >"$state/env"
    echo "dockerd.sh: no Docker engine: $1" >&2
    exit 0
}

install_tools() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    ((${#missing[@]} == 0)) && return 0
    if [[ $(id -u) -ne 0 ]]; then
        unavailable "${missing[*]} not installed, and installing needs root (apt-get install ${missing[*]})"
    fi
    if ! command -v apt-get >/dev/null; then
        unavailable "${missing[*]} not installed, and this machine has no apt-get to install them"
    fi
    echo "dockerd.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
        >"$state/apt.log" 2>&1; then
        unavailable "apt-get install ${missing[*]} failed: $(tail -n 3 "$state/apt.log" | tr '\n' ' ')"
    fi
}

launch() {  # launch DATA_ROOT [extra dockerd flags...]; 0 once the socket answers
    local data=$1
    shift
    mkdir -p "$data"
    # The lock on the data root is inherited by dockerd (fd 9) and held for its lifetime.
    exec 9>>"$data/.lock"
    if ! flock -n 9; then
        exec 9>&-
        return 3
    fi
    dockerd --data-root "$data" --exec-root "$state/exec" -H "unix://$state/docker.sock" \
        --pidfile "$state/docker.pid" --bridge=none --iptables=false --ip-forward=false \
        --ip-masq=false --log-level=warn "$@" >"$state/dockerd.log" 2>&1 &
    echo $! >"$state/pid"
    exec 9>&-
    for _ in $(seq 1 150); do
        if DOCKER_HOST="unix://$state/docker.sock" docker version >/dev/null 2>&1 ||
            curl -sf --unix-socket "$state/docker.sock" http://localhost/_ping >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$(cat "$state/pid")" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

stop() {
    [[ -f "$state/pid" ]] || return 0
    local pid
    pid=$(cat "$state/pid")
    if kill -0 "$pid" 2>/dev/null; then
        DOCKER_HOST="unix://$state/docker.sock" docker image prune -f >/dev/null 2>&1 || true
        kill -TERM "$pid"
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$state/pid"
}

case "$cmd" in
start)
    mkdir -p "$state"
    [[ $(uname -s) == Linux ]] || unavailable "dockerd runs on Linux only; this is $(uname -s)"
    install_tools
    command -v docker >/dev/null || unavailable "the docker CLI is not installed"
    data=${DLSPEC_RAY_DOCKERD_DATA:-/var/cache/dlspec-ray/dockerd}
    [[ $(id -u) -eq 0 ]] || data=${DLSPEC_RAY_DOCKERD_DATA:-$HOME/.cache/dlspec-ray/dockerd}
    launch "$data"
    rc=$?
    if ((rc == 3)); then
        echo "dockerd.sh: $data is in use by another engine; using a fresh data root" >&2
        launch "$state/data"
        rc=$?
    fi
    if ((rc != 0)) && grep -qiE "overlay|storage.driver|graphdriver" "$state/dockerd.log"; then
        echo "dockerd.sh: the overlay2 storage driver failed; retrying with vfs" >&2
        stop
        launch "$state/data-vfs" --storage-driver vfs
        rc=$?
    fi
    if ((rc != 0)); then
        stop
        unavailable "dockerd did not start: $(grep -iE 'level=(error|fatal)|failed' "$state/dockerd.log" | tail -n 2 | tr '\n' ' ')"
    fi
    echo "export DOCKER_HOST=unix://$state/docker.sock" >"$state/env"
    if [[ -n "$watch" ]]; then
        nohup bash -c "while kill -0 $watch 2>/dev/null && [[ -f '$state/pid' ]]; do sleep 2; done
                       '$self' stop '$state'" >/dev/null 2>&1 &
    fi
    echo "dockerd.sh: engine up at unix://$state/docker.sock (pid $(cat "$state/pid"))" >&2
    ;;
stop)
    stop
    # Mounts the engine may have left under its exec root, innermost first.
    awk -v s="$state" 'index($2, s) == 1 {print $2}' /proc/mounts | sort -r |
        xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$state"
    ;;
*)
    echo "usage: $0 start|stop STATE_DIR" >&2
    exit 2
    ;;
esac
