# shellcheck shell=sh
# A private SLURM cluster on localhost, for tests/it/it_slurm.sh: sourced, not run.
#
#   . tests/it/slurm_env.sh
#   slurm_start DIR [CPUS]   write DIR/slurm.conf, start slurmctld and slurmd
#                            (their pids in DIR/slurmctld.pid.test and
#                            DIR/slurmd.pid.test), wait until the node is
#                            idle, export SLURM_CONF
#   slurm_stop               cancel this cluster's jobs, stop both daemons (by pid)
#   slurm_state JOB          the job's state (PENDING, RUNNING, COMPLETED, ...)
#   slurm_field JOB NAME     a field of `scontrol show job` (Restarts, ExitCode, ...)
#   slurm_wait JOB SECONDS   poll until the job has ended; 0 when it did in time
#
# No munge (auth/none, cred/none), no accounting, no cgroups. cred_expire=10:
# a requeued job waits that long (+1 s) before it may start again (default
# 120). The ports are picked at random, job ids start at a random number and
# PMIx keeps its files under DIR, so that two test runs on one machine do not
# meet. By hand:
# `. tests/it/slurm_env.sh; slurm_start /tmp/s 4`, then sbatch/squeue as usual
# with SLURM_CONF exported, and `slurm_stop` at the end.

SLURMCTLD=${SLURMCTLD:-/usr/sbin/slurmctld}
SLURMD=${SLURMD:-/usr/sbin/slurmd}
SLURM_DIR=

# a TCP port nobody listens on, from 20000..39999
# slurm_need CMD...: exit 0 with a "skipped:" line when SLURM (its daemons
# and the commands given) is not installed, so a test says why it did not run.
slurm_need() {
    for c in "$SLURMCTLD" "$SLURMD" "$@"; do
        if ! command -v "$c" >/dev/null 2>&1; then
            echo "skipped: $(basename "$c") not installed (apt-get install slurm-wlm runs this test)"
            exit 0
        fi
    done
}

slurm_free_port() {
    while :; do
        p=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 20000 + 20000 ))
        if ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then echo "$p"; return; fi
    done
}

slurm_start() {
    SLURM_DIR=$1
    cpus=${2:-4}
    # as a real node declares it, so that the job scripts' --mem-per-cpu fits
    mem=$(awk '/^MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    mkdir -p "$SLURM_DIR/state" "$SLURM_DIR/spool" "$SLURM_DIR/log" "$SLURM_DIR/tmp"
    ctld_port=$(slurm_free_port)
    d_port=$(slurm_free_port)
    while [ "$d_port" = "$ctld_port" ]; do d_port=$(slurm_free_port); done
    # job ids of their own too: srun's PMIx directories are named by job id
    first_id=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') * 10 + 1000 ))
    cat >"$SLURM_DIR/slurm.conf" <<CONF
ClusterName=untangletest
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
AuthInfo=cred_expire=10
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MailProg=/bin/true
KillWait=5
MinJobAge=300
FirstJobId=$first_id
TmpFS=$SLURM_DIR/tmp
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    SLURM_CONF=$SLURM_DIR/slurm.conf
    export SLURM_CONF
    # In the foreground (-D) behind &: $! is the daemon itself, no pid-file race.
    "$SLURMCTLD" -D -i >"$SLURM_DIR/log/slurmctld.out" 2>&1 &
    echo $! >"$SLURM_DIR/slurmctld.pid.test"
    "$SLURMD" -D -N localhost >"$SLURM_DIR/log/slurmd.out" 2>&1 &
    echo $! >"$SLURM_DIR/slurmd.pid.test"
    n=0
    until sinfo -h -n localhost -o %T 2>/dev/null | grep -qx idle; do
        n=$((n + 1))
        if [ "$n" -gt 150 ]; then
            echo "slurm_start: the node did not become idle in 30 s" >&2
            tail -n 20 "$SLURM_DIR/log/slurmctld.log" "$SLURM_DIR/log/slurmd.log" >&2
            return 1
        fi
        sleep 0.2
    done
}

slurm_stop() {
    [ -n "$SLURM_DIR" ] || return 0
    if [ -n "${SLURM_CONF:-}" ]; then
        # jobs first: slurmstepd outlives slurmd, so end the jobs while slurmd runs
        jobs=$(squeue -h -o %i 2>/dev/null)
        if [ -n "$jobs" ]; then
            # shellcheck disable=SC2086 # one word per job id
            scancel $jobs 2>/dev/null
            n=0
            while [ -n "$(squeue -h -o %i 2>/dev/null)" ] && [ "$n" -lt 100 ]; do
                n=$((n + 1)); sleep 0.2
            done
        fi
    fi
    for d in slurmd slurmctld; do
        f=$SLURM_DIR/$d.pid.test
        [ -s "$f" ] || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null
        n=0
        while kill -0 "$pid" 2>/dev/null && [ "$n" -lt 50 ]; do n=$((n + 1)); sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
        rm -f "$f"
    done
    SLURM_DIR=
}

# the job's state (PENDING, RUNNING, COMPLETED, ...), one line per array task
slurm_state() {
    squeue -h -t all -j "$1" -o %T 2>/dev/null
}

# the field NAME of the job (scontrol show job), e.g. slurm_field J Restarts
slurm_field() {
    scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

# poll (squeue, every 0.25 s) until the job, or every task of an array, has
# ended: 0 when it did within SECONDS, 1 when not, 2 when SLURM does not know it
slurm_wait() {
    n=0
    limit=$(($2 * 4))
    while :; do
        st=$(slurm_state "$1")
        [ -n "$st" ] || return 2
        printf '%s\n' "$st" | grep -qvxE \
            'COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|PREEMPTED|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE' ||
            return 0
        n=$((n + 1))
        [ "$n" -ge "$limit" ] && return 1
        sleep 0.25
    done
}
