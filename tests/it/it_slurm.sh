#!/bin/sh
# The SLURM job scripts (jobs/) against a real SLURM: a private slurmctld and
# slurmd on localhost (tests/it/slurm_env.sh), stopped on exit.
# - jobs/sweep.sbatch (mpirun) runs a shortened sweeps/quick.yaml: COMPLETED,
#   one ok row per index;
# - jobs/sweep.sbatch (srun --mpi=pmix) gets SIGUSR1 mid-run: it drains,
#   requeues itself, resumes and ends COMPLETED with one ok row per index;
# - jobs/submit_array.sh: 3 shards (one of them drained and requeued) and the
#   merge job give the same /runs as the single job, column for column;
# - srun without PMI, and mpirun with one rank in a 3-task allocation, are
#   refused with untangle's message and write no file;
# - the scripts pass shellcheck.
# Skipped (exit 0, says why) when SLURM is not installed.
# shellcheck disable=SC1091 # sourced helpers, checked on their own
. tests/it/slurm_env.sh
slurm_need sbatch srun squeue scontrol
. tests/it/lib.sh
trap 'slurm_stop; rm -rf "$TMP"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
T0=$(date +%s)
TL=$T0
# lap WHAT: how long the part just done took
lap() { t=$(date +%s); echo "   ($1: $((t - TL)) s)"; TL=$t; }
ROOT=$PWD
JOBS=$ROOT/jobs
export UNTANGLE

# --- static checks ------------------------------------------------------------------
if command -v shellcheck >/dev/null 2>&1; then
    expect 0 "shellcheck jobs/ and the SLURM test scripts" shellcheck "$JOBS"/*.sbatch \
        "$JOBS"/*.sh tests/it/slurm_env.sh tests/it/it_slurm.sh tests/it/it_slurm_exit.sh
    sed 's/^/   | /' "$TMP/out" | head -n 40
else
    echo "skipped: shellcheck not installed (apt-get install shellcheck runs that check)"
fi

# --- helpers ------------------------------------------------------------------------
# check WHAT TEST...: ok when the test command succeeds
check() {
    what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
show() { echo "   --- $1"; sed 's/^/   | /' "$1" 2>/dev/null | tail -n "${2:-40}"; }
# wait_job JOB SECONDS WHAT LOG...: the job (every task of an array) ends in time
wait_job() {
    j=$1 secs=$2 what=$3
    shift 3
    slurm_wait "$j" "$secs"
    case $? in
        0) return 0 ;;
        1) fail "$what: job $j still $(slurm_state "$j" | sort -u | tr '\n' ' ')after $secs s" ;;
        *) fail "$what: SLURM does not know job $j" ;;
    esac
    for l in "$@"; do show "$l"; done
    return 1
}
# state_is JOB STATE WHAT LOG: the job ended in STATE
state_is() {
    got=$(slurm_state "$1" | sort -u | tr '\n' ' ')
    if [ "$got" = "$2 " ]; then ok "$3: job $1 $2"; else
        fail "$3: job $1 ended ${got}not $2"; show "$4"; fi
}
# log_has LOG TEXT WHAT
log_has() {
    if grep -qF -- "$2" "$1"; then ok "$3"; else fail "$3: no '$2' in the log"; show "$1"; fi
}
# ok_once FILE N WHAT: /runs holds exactly one ok row for each index 0..N-1
ok_once() {
    if ! rows "$1" >"$TMP/ok_once" 2>&1; then
        fail "$3: cannot read $1: $(tail -n 1 "$TMP/ok_once")"
        return
    fi
    got=$(awk '$3 == "ok" { print $1 }' "$TMP/ok_once" | sort -n | tr '\n' ' ')
    want=$(seq 0 $(($2 - 1)) | tr '\n' ' ')
    other=$(awk '$3 != "ok" { printf "%s%s", sep, $3; sep = ", " }' "$TMP/ok_once")
    if [ "$got" = "$want" ]; then
        ok "$3: $2 ok rows, one per index${other:+; other rows: $other}"
    else
        fail "$3: ok rows per index: ${got}(want each of 0..$(($2 - 1)) once)"
    fi
}
# runs_of YAML: the sweep's size (the last line of `untangle list`: "N runs (...)")
runs_of() { "$UNTANGLE" list "$1" | tail -n 1 | awk '{print $1}'; }
# wait_for LOG TEXT SECONDS: until the log has TEXT
wait_for() {
    n=0
    until grep -qF -- "$2" "$1" 2>/dev/null; do
        n=$((n + 1))
        [ "$n" -ge $(($3 * 5)) ] && return 1
        sleep 0.2
    done
}

# --- the cluster --------------------------------------------------------------------
if ! slurm_start "$TMP/slurm" 4; then
    fail "private slurmctld/slurmd did not start"
    show "$TMP/slurm/log/slurmctld.log"
    show "$TMP/slurm/log/slurmd.log"
    finish
fi
ok "private SLURM up (SLURM_CONF=$SLURM_CONF, 1 node with CPUs=4)"
lap "shellcheck and start"
SRUN_OK=1
if ! srun --mpi=list 2>&1 | grep -q pmix; then
    SRUN_OK=0
    echo "note: srun has no pmix plugin here: the srun launches below use mpirun instead"
fi
cd "$TMP" || exit 1

# a shortened sweeps/quick.yaml: the same grid, tiny training and evaluation
sed -e 's/^train: .*/train: {arch: mlp, steps: 40, batch_size: 16, lr: 1.0e-3, log_every: 20}/' \
    -e 's/^eval: .*/eval:  {images: 200, samples: 100, pairs: 5, hist_images: 200, unsup_images: 200}/' \
    "$ROOT/sweeps/quick.yaml" >quick.yaml
# runs long enough (several seconds) for a signal to land mid-run
tiny_sweep long.yaml
sed -i 's/steps: 20,/steps: 150,/' long.yaml
NQ=$(runs_of quick.yaml)
NL=$(runs_of long.yaml)

# --- refusals: a launch without the job's layout ---------------------------------------
# srun with --mpi=none starts 2 single-process copies; mpirun -np 1 one rank in a
# 3-task allocation. Both are refused, with untangle's message in the job log.
J1=$(UNTANGLE_SRUN_MPI=none UNTANGLE_LAUNCHER=srun sbatch --parsable -n 2 -t 5 -o nopmi.log \
    "$JOBS/sweep.sbatch" quick.yaml nopmi.h5)
J2=$(sbatch --parsable -n 3 -t 5 -o np1.log --wrap "mpirun -np 1 $UNTANGLE sweep quick.yaml -o np1.h5")
if wait_job "$J1" 60 "srun --mpi=none" nopmi.log && wait_job "$J2" 60 "mpirun -np 1" np1.log; then
    state_is "$J1" FAILED "srun --mpi=none -n 2 refused" nopmi.log
    log_has nopmi.log "SLURM started 2 tasks" "srun --mpi=none: untangle's message in the log"
    log_has nopmi.log "not requeued" "srun --mpi=none: the job script does not requeue it"
    check "srun --mpi=none: no restart" [ "$(slurm_field "$J1" Restarts)" = 0 ]
    state_is "$J2" FAILED "mpirun -np 1 in a 3-task allocation refused" np1.log
    log_has np1.log "mpirun started 1 rank but SLURM allocated 3 tasks" "mpirun -np 1: untangle's message in the log"
    for f in nopmi.h5 np1.h5; do
        check "refused launch wrote no $f" [ ! -e "$f" ]
    done
fi

lap "refusals"

# --- one MPI job for the whole sweep (mpirun) ------------------------------------------------
J=$(UNTANGLE_LAUNCHER=mpirun sbatch --parsable -n 3 -c 1 -t 10 -o single.log \
    "$JOBS/sweep.sbatch" quick.yaml single.h5)
if wait_job "$J" 120 "sweep.sbatch (mpirun)" single.log; then
    state_is "$J" COMPLETED "sweep.sbatch, mpirun, 3 ranks, shortened quick.yaml ($NQ runs)" single.log
    log_has single.log "launcher mpirun" "sweep.sbatch launched mpirun"
    log_has single.log "on 2 workers" "the sweep ran with 2 workers"
    ok_once single.h5 "$NQ" "sweep.sbatch results"
fi

lap "single job"

# --- drain on SIGUSR1, requeue, resume (srun --mpi=pmix) ----------------------------------
LAUNCHER=srun
[ "$SRUN_OK" -eq 1 ] || LAUNCHER=mpirun
J=$(UNTANGLE_LAUNCHER=$LAUNCHER sbatch --parsable -n 3 -c 1 -t 10 -o drain.log \
    "$JOBS/sweep.sbatch" long.yaml drain.h5)
if wait_for drain.log "runs ($NL to run)" 60; then
    sleep 1.5 # inside the first runs
    scancel -b -s USR1 "$J"
    ok "SIGUSR1 sent to job $J mid-run"
else
    fail "drain: the sweep did not start within 60 s"
    show drain.log
fi
if wait_job "$J" 180 "sweep.sbatch drained and requeued" drain.log; then
    state_is "$J" COMPLETED "drained job ($LAUNCHER) ends" drain.log
    log_has drain.log "got SIGUSR1: draining" "drain: the job script forwarded the signal"
    log_has drain.log "untangle: signal 10: draining" "drain: the sweep drained"
    log_has drain.log "runs left; run again with --resume" "drain: the first start left work"
    log_has drain.log "requeueing job $J" "drain: the job requeued itself"
    log_has drain.log "start 2 of job $J" "drain: the second start ran"
    log_has drain.log "holds " "drain: the second start resumed the file"
    r=$(slurm_field "$J" Restarts)
    check "drain: SLURM counts 1 restart (Restarts=$r)" [ "$r" = 1 ]
    ok_once drain.h5 "$NL" "drained and resumed results"
fi

lap "drain and requeue"

# --- job array of 3 shards + merge job ---------------------------------------------------
# Same sweep and threads as the drained job, so the merged file must match it
# column for column. Shard 2 is drained mid-run and requeues itself; the
# merge job (afterany) must wait for its second start.
# The tasks' log directory does not exist yet: submit_array.sh makes it.
if IDS=$(UNTANGLE_ARRAY_MAX=3 UNTANGLE_MERGE_OPTS="-o merge.log" "$JOBS/submit_array.sh" \
    long.yaml merged.h5 3 -c 1 -t 10 -o "logs/array-%a.log" 2>submit.err); then
    A=${IDS% *} M=${IDS#* }
    ok "submit_array.sh: array $A, merge $M"
    check "the array's log directory was made" [ -d logs ]
    check "the array is throttled to 3 tasks" [ "$(slurm_field "$A" ArrayTaskThrottle)" = 3 ]
    if wait_for logs/array-2.log "runs (" 60; then
        sleep 1.5
        scancel -b -s USR1 "${A}_2"
    else
        fail "array: task 2 did not start within 60 s"
        show logs/array-2.log
    fi
    if wait_job "$M" 180 "array + merge" logs/array-0.log logs/array-1.log logs/array-2.log merge.log; then
        state_is "$A" COMPLETED "array: every task" logs/array-2.log
        state_is "$M" COMPLETED "merge job" merge.log
        log_has logs/array-2.log "requeueing job ${A}_2" "array: task 2 drained and requeued itself"
        log_has logs/array-2.log "start 2 of job" "array: task 2 started again"
        log_has merge.log "done: all $NL indices" "merge: no index missing"
        for i in 0 1 2; do
            check "shard file $i of 3" [ -e "merged.shard-$i-of-3.h5" ]
        done
        ok_once merged.h5 "$NL" "merged results"
        expect 0 "merged array == single drained job, every column" \
            "$PY" "$TOOLS/compare_runs.py" drain.h5 merged.h5
    fi
else
    fail "submit_array.sh failed"
    show submit.err
fi

lap "array and merge"
echo "it_slurm: $(($(date +%s) - T0)) s"
cd "$ROOT" || exit 1
finish
