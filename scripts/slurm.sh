#!/usr/bin/env bash
# A single-node Slurm cluster for tests and for trying `--executor slurm` on one machine:
# Debian's slurm-wlm with munge, no systemd, no cgroups. Everything (config, key, state,
# logs, PIDs) lives in one directory; `down` stops exactly the daemons `up` started, by
# the PIDs it recorded.
#
#   scripts/slurm.sh up   [DIR]   install if missing, start munged, slurmctld, slurmd;
#                                  prints `export SLURM_CONF=DIR/slurm.conf`
#   scripts/slurm.sh down [DIR]   stop them
#   scripts/slurm.sh env  [DIR]   print the export line if the cluster is up (exit 1 if not)
#
# DIR defaults to ${TMPDIR:-/tmp}/tern-slurm. Runs the daemons as the calling user (root
# in CI); Slurm's ports default to 16817/16818 (TERN_SLURM_PORT sets the first).
set -euo pipefail

cmd=${1:-}
dir=${2:-${TMPDIR:-/tmp}/tern-slurm}
port=${TERN_SLURM_PORT:-16817}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

up_already() {
    alive "$dir/munged.pid" && alive "$dir/slurmctld.pid" && alive "$dir/slurmd.pid"
}

install() {
    local missing=()
    for tool in sbatch:slurm-wlm slurmctld:slurm-wlm slurmd:slurm-wlm munged:munge mungekey:munge; do
        command -v "${tool%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${tool%%:*}" ] || missing+=("${tool##*:}")
    done
    if ((${#missing[@]})); then
        local sudo=""
        if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
        mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
        echo "tern slurm: installing ${packages[*]}" >&2
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    fi
}

start() {
    # Detached from this shell (setsid), output to the daemon's own log.
    local pidfile=$1 log=$2
    shift 2
    setsid "$@" >>"$log" 2>&1 </dev/null &
    echo $! >"$pidfile"
}

wait_for() {
    local what=$1 tries=100
    shift
    until "$@" >/dev/null 2>&1; do
        tries=$((tries - 1))
        if ((tries == 0)); then
            echo "tern slurm: $what did not come up; logs in $dir" >&2
            tail -n 5 "$dir"/*.log >&2 || true
            return 1
        fi
        sleep 0.1
    done
}

up() {
    if up_already; then
        echo "export SLURM_CONF=$dir/slurm.conf"
        return 0
    fi
    down 2>/dev/null || true
    install
    PATH=$PATH:/usr/sbin
    mkdir -p "$dir"/{state,spool}
    chmod 700 "$dir"
    local host cpus
    host=$(hostname -s)
    cpus=$(nproc)
    [ -f "$dir/munge.key" ] || mungekey --create --keyfile="$dir/munge.key" >/dev/null
    chmod 600 "$dir/munge.key"
    cat >"$dir/slurm.conf" <<EOF
# Written by scripts/slurm.sh: a one-node cluster, no cgroups, no accounting daemon.
ClusterName=tern
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge.socket
CredType=cred/munge
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pidfile
SlurmdPidFile=$dir/slurmd.pidfile
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
MailProg=/bin/true
MaxArraySize=100001
MaxJobCount=200000
MinJobAge=300
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF=$dir/slurm.conf
    start "$dir/munged.pid" "$dir/munged.log" munged -F --force \
        --socket="$dir/munge.socket" --key-file="$dir/munge.key" \
        --pid-file="$dir/munged.pidfile" --log-file="$dir/munged.log" --seed-file="$dir/munge.seed"
    wait_for munged test -S "$dir/munge.socket"
    start "$dir/slurmctld.pid" "$dir/slurmctld.log" slurmctld -D -i -f "$SLURM_CONF"
    wait_for slurmctld scontrol ping
    start "$dir/slurmd.pid" "$dir/slurmd.log" slurmd -D -N "$host" -f "$SLURM_CONF"
    wait_for "slurmd (node $host idle)" sh -c "sinfo -h -N -o %T | grep -qx idle"
    echo "tern slurm: one-node cluster up ($host, $cpus CPUs) in $dir" >&2
    echo "export SLURM_CONF=$dir/slurm.conf"
}

down() {
    local stopped=0
    for d in slurmd slurmctld munged; do
        if alive "$dir/$d.pid"; then
            kill "$(cat "$dir/$d.pid")" 2>/dev/null || true
            for _ in $(seq 50); do alive "$dir/$d.pid" || break; sleep 0.1; done
            alive "$dir/$d.pid" && kill -9 "$(cat "$dir/$d.pid")" 2>/dev/null || true
            stopped=$((stopped + 1))
        fi
        rm -f "$dir/$d.pid"
    done
    echo "tern slurm: stopped $stopped daemons of $dir" >&2
}

case "$cmd" in
up) up ;;
down) down ;;
env)
    up_already || exit 1
    echo "export SLURM_CONF=$dir/slurm.conf"
    ;;
*)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
