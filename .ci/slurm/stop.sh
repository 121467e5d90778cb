#!/usr/bin/env bash
# Stop the daemons .ci/slurm/start.sh started: slurmd, slurmctld, slurmdbd, mariadb, munged.
# Bounded (TERM, wait up to DYNAPSIM_SLURM_STOP_WAIT s, default 15, then KILL), idempotent,
# always exits 0 so it can run in a CI `trap ... EXIT`. Pass --purge to also delete the
# state dir ($DYNAPSIM_SLURM_DIR, default /tmp/dynapsim-slurm: configs, DB, logs).
# Only processes whose pid is recorded in the state dir (or munged's pid file) are signalled.
set -uo pipefail

DIR=${DYNAPSIM_SLURM_DIR:-/tmp/dynapsim-slurm}
WAIT=${DYNAPSIM_SLURM_STOP_WAIT:-15}
log() { printf '[slurm-stop %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# stop NAME PIDFILE EXPECTED_COMM: TERM, bounded wait, then KILL; skip a pid that now
# belongs to another program (a stale pid file).
stop() {
    local name=$1 pidfile=$2 comm=$3 pid
    [[ -s "$pidfile" ]] || { log "$name: no pid file"; return 0; }
    pid=$(tr -dc 0-9 <"$pidfile")
    if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
        log "$name: not running"; rm -f "$pidfile"; return 0
    fi
    if ! grep -q "$comm" "/proc/$pid/comm" 2>/dev/null; then
        log "$name: pid $pid is $(cat "/proc/$pid/comm" 2>/dev/null), not $comm; leaving it"
        rm -f "$pidfile"; return 0
    fi
    kill -TERM "$pid" 2>/dev/null
    local deadline=$((SECONDS + WAIT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name: still alive after ${WAIT}s, SIGKILL"; kill -KILL "$pid" 2>/dev/null
        sleep 0.5
    fi
    log "$name: stopped (pid $pid)"
    rm -f "$pidfile"
}

# descendants PID...: the PIDs and every process below them (from /proc/*/stat ppid).
descendants() {
    local -A kids=()
    local stat pid ppid
    for stat in /proc/[0-9]*/stat; do
        read -r pid _ _ ppid _ <"$stat" 2>/dev/null || continue
        kids[$ppid]+=" $pid"
    done
    local queue=("$@") out=()
    while ((${#queue[@]})); do
        pid=${queue[0]}; queue=("${queue[@]:1}"); out+=("$pid")
        # shellcheck disable=SC2206
        queue+=(${kids[$pid]:-})
    done
    echo "${out[@]}"
}

if [[ -d "$DIR" ]]; then
    export SLURM_CONF=$DIR/slurm.conf
    # Cancel the jobs still queued or running while slurmctld/slurmd can still clean up.
    if [[ -f "$SLURM_CONF" ]] && jobs=$(timeout 5 squeue -h -o %A 2>/dev/null) && [[ -n $jobs ]]; then
        log "cancelling jobs: $(echo $jobs)"
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs 2>/dev/null
        deadline=$((SECONDS + WAIT))
        while [[ -n $(timeout 5 squeue -h -o %A 2>/dev/null) ]] && ((SECONDS < deadline)); do
            sleep 0.5
        done
    fi
    # Job steps of this cluster (their environment names $DIR) and everything below them.
    steps=()
    for p in $(pgrep -x slurmstepd 2>/dev/null); do
        grep -qs "$DIR" "/proc/$p/environ" && steps+=("$p")
    done
    tree=""
    ((${#steps[@]})) && tree=$(descendants "${steps[@]}")
    stop slurmd    "$DIR/run/slurmd.pid"    slurmd
    stop slurmctld "$DIR/run/slurmctld.pid" slurmctld
    stop slurmdbd  "$DIR/run/slurmdbd.pid"  slurmdbd
    stop mariadb   "$DIR/run/mariadb.pid"   mariadbd
    # munged only if start.sh started it (it records munged's pid); a pre-existing munged
    # that start.sh found running is left alone.
    if [[ -s "$DIR/run/munged.pid" ]]; then
        stop munged "$DIR/run/munged.pid" munged
        rm -f /run/munge/munged.pid
    fi
    # Jobs that outlived the cancel above: kill their slurmstepd and its process tree.
    if [[ -n $tree ]]; then
        # shellcheck disable=SC2086
        kill -KILL $tree 2>/dev/null && log "killed leftover job processes: $tree"
    fi
else
    log "no state dir $DIR: nothing to stop"
fi
if [[ ${1:-} == --purge ]]; then
    rm -rf "$DIR" && log "removed $DIR"
fi
exit 0
