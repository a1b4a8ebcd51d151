#!/bin/sh
# A run longer than the job's time limit finishes across requeues, against a
# real SLURM (a private slurmctld and slurmd on localhost, tests/it/slurm_env.sh):
# - jobs/sweep.sbatch with a 1-minute limit runs a sweep of ONE run whose
#   training needs about 3 jobs' worth of time (the step count comes from a
#   short timed `untangle train` on this machine, so the test follows its
#   speed); each start trains until the deadline, the run checkpoints and
#   gets an `interrupted` row, the sweep exits 3 and the job requeues itself;
# - the job ends COMPLETED after at least 2 requeues ("start N of job" in its
#   log), /runs holds one ok row and before it interrupted rows whose
#   steps_done rise strictly;
# - the same sweep in one go (one process, no SLURM, same --threads) gives
#   the same metrics and configuration bit for bit (tests/py/compare_runs.py).
# Skipped (exit 0, says why) when SLURM is not installed.
# UNTANGLE_REQUEUE_STEPS=N fixes the step count instead of measuring.
# shellcheck disable=SC1091 # sourced helpers, checked on their own
. tests/it/slurm_env.sh
slurm_need sbatch squeue scontrol
. tests/it/lib.sh
REF=
# shellcheck disable=SC2317 # called from the trap
cleanup() {
    [ -n "$REF" ] && kill "$REF" 2>/dev/null
    slurm_stop
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
T0=$(date +%s)
ROOT=$PWD
JOBS=$ROOT/jobs
export UNTANGLE
LIMIT_MIN=1   # the job's time limit (sbatch -t, minutes; SLURM's minimum)
MARGIN=12     # UNTANGLE_MARGIN: the deadline is ~48 s into each start

check() {
    what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
show() { echo "   --- $1"; sed 's/^/   | /' "$1" 2>/dev/null | tail -n "${2:-40}"; }

if command -v shellcheck >/dev/null 2>&1; then
    expect 0 "shellcheck jobs/sweep.sbatch and this test" shellcheck "$JOBS/sweep.sbatch" \
        tests/it/long_slurm_requeue.sh
    sed 's/^/   | /' "$TMP/out" | head -n 40
fi

# --- the run: one mlp run at 32x32 whose training needs ~3 jobs -----------------------
cd "$TMP" || exit 1
KEYS="model=betavae beta=4 arch=mlp image_size=32 batch_size=8 lr=1.0e-3 seed=0"
if [ -n "${UNTANGLE_REQUEUE_STEPS:-}" ]; then
    STEPS=$UNTANGLE_REQUEUE_STEPS
    echo "steps: $STEPS (UNTANGLE_REQUEUE_STEPS)"
else
    # a timed training on this machine, one thread like the job below
    set --
    for k in $KEYS; do set -- "$@" --set "$k"; done
    "$UNTANGLE" train "$@" --set steps=300 --set log_every=300 --no-eval --threads 1 \
        --json >calib.json 2>calib.err
    TRAIN_S=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["train_s"])' calib.json)
    if [ -z "$TRAIN_S" ]; then
        fail "timing 300 steps with untangle train"
        show calib.err
        finish
    fi
    # a start trains from ~3 s after it begins until its deadline (limit - margin)
    STEPS=$($PY -c 'import sys
rate = 300 / float(sys.argv[1])
per_job = 60 * int(sys.argv[2]) - int(sys.argv[3]) - 3
print(max(300, int(3 * rate * per_job / 100) * 100))' "$TRAIN_S" "$LIMIT_MIN" "$MARGIN")
    echo "steps: $STEPS (300 steps trained in $TRAIN_S s here; ~3 starts of a ${LIMIT_MIN}-minute job)"
fi
cat >one.yaml <<YAML
name: requeue
data:  {name: dsprites, image_size: 32}
train: {arch: mlp, steps: $STEPS, batch_size: 8, lr: 1.0e-3, log_every: 100}
eval:  {images: 200, samples: 100, pairs: 5, hist_images: 200, unsup_images: 200}
grid:
  - model: betavae
    beta: 4
seeds: 1
YAML
N=$("$UNTANGLE" list one.yaml | tail -n 1 | awk '{print $1}')
check "the sweep has one run (untangle list: $N)" [ "$N" = 1 ]

# --- the cluster ------------------------------------------------------------------------
if ! slurm_start "$TMP/slurm" 2; then
    fail "private slurmctld/slurmd did not start"
    show "$TMP/slurm/log/slurmctld.log"
    show "$TMP/slurm/log/slurmd.log"
    finish
fi
ok "private SLURM up (SLURM_CONF=$SLURM_CONF)"

# --- the job: -t 1, one task, deadline-driven stops and requeues --------------------------
J=$(sbatch --parsable -n 1 -c 1 -t "$LIMIT_MIN" -o requeue.log \
    --export=ALL,UNTANGLE_MARGIN=$MARGIN "$JOBS/sweep.sbatch" one.yaml requeue.h5 \
    --min-start 5 --checkpoint-every 5 --stop-grace 5 --threads 1)
if [ -z "$J" ]; then
    fail "sbatch jobs/sweep.sbatch"
    finish
fi
ok "submitted job $J (-t $LIMIT_MIN, UNTANGLE_MARGIN=$MARGIN)"

# the same sweep in one go, one process, no SLURM: meanwhile, at a lower priority
nice -n 5 "$UNTANGLE" sweep one.yaml -o single.h5 --threads 1 >single.log 2>&1 &
REF=$!

# Wait for the job. A requeued job pends with Reason=BeginTime until
# cred_expire (10 s in slurm_env.sh) has passed; if SLURM holds it longer
# than that (a later BeginTime, or held), it is started now: how long a
# requeued job waits is SLURM's business, not what is tested here.
released=0
n=0
state=
while :; do
    state=$(slurm_state "$J")
    case $state in
        COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | PREEMPTED | OUT_OF_MEMORY | \
            BOOT_FAIL | DEADLINE | "") break ;;
        PENDING)
            reason=$(slurm_field "$J" Reason)
            case $reason in
                JobHeld*)
                    scontrol release "$J" 2>/dev/null && released=$((released + 1)) ;;
                BeginTime)
                    eligible=$(date -d "$(slurm_field "$J" EligibleTime)" +%s 2>/dev/null || echo 0)
                    if [ $((eligible - $(date +%s))) -gt 15 ]; then
                        echo "note: job $J pends until $(slurm_field "$J" EligibleTime): starting it now"
                        scontrol update jobid="$J" StartTime=now 2>/dev/null &&
                            released=$((released + 1))
                    fi ;;
            esac ;;
    esac
    n=$((n + 1))
    if [ "$n" -ge 2400 ]; then # 10 minutes
        fail "job $J still $state after 600 s"
        break
    fi
    sleep 0.25
done
echo "   (the job: $(($(date +%s) - T0)) s since the test began; $released early releases)"
check "job $J ended COMPLETED (got ${state:-nothing})" [ "$state" = COMPLETED ]
[ "$state" = COMPLETED ] || show requeue.log
grep -E "start [0-9]+ of job|got SIG|interrupted|the sweep exited|requeueing" requeue.log | sed 's/^/   | /'
starts=$(sed -n 's/.* start \([0-9][0-9]*\) of job .*/\1/p' requeue.log | tr '\n' ' ')
want=$(seq 1 "$(echo "$starts" | wc -w)" | tr '\n' ' ')
check "the starts in the log count 1, 2, ... ($starts)" [ "$starts" = "$want" ]
restarts=$(($(echo "$starts" | wc -w) - 1))
check "at least 2 requeues ($restarts; SLURM says Restarts=$(slurm_field "$J" Restarts))" \
    [ "$restarts" -ge 2 ]
check "SLURM counts as many restarts as the log" [ "$(slurm_field "$J" Restarts)" = "$restarts" ]

# --- the rows: interrupted with rising steps_done, then one ok -----------------------------
cat >rows.py <<'PY'
import sys
from untangle import io
r = io.load_attempts(sys.argv[1])
for i, s, d in zip(r["grid_index"], r["status"], r["steps_done"]):
    print(int(i), s, int(d))
PY
if $PY rows.py requeue.h5 >rows.txt 2>rows.err; then
    sed 's/^/   | /' rows.txt
    seq=$(awk '{printf "%s%s:%s", sep, $2, $3; sep = " "}' rows.txt)
    echo "steps_done: $seq"
    check "every row is run 0" [ "$(awk '$1 != 0' rows.txt | wc -l)" -eq 0 ]
    check "exactly one ok row" [ "$(awk '$2 == "ok"' rows.txt | wc -l)" -eq 1 ]
    check "the ok row is the last" [ "$(tail -n 1 rows.txt | awk '{print $2}')" = ok ]
    check "every earlier row is interrupted" \
        [ "$(sed '$d' rows.txt | awk '$2 != "interrupted"' | wc -l)" -eq 0 ]
    check "at least 2 interrupted rows" [ "$(awk '$2 == "interrupted"' rows.txt | wc -l)" -ge 2 ]
    # shellcheck disable=SC2016 # awk's own $3
    check "steps_done rises strictly from row to row, from above 0 to $STEPS" \
        awk -v last="$STEPS" 'BEGIN { p = 0 } $3 <= p { bad = 1 } { p = $3 }
            END { exit bad || p != last }' rows.txt
else
    fail "cannot read requeue.h5"
    show rows.err
    show requeue.log
fi

# --- bit for bit against the run in one go --------------------------------------------------
wait "$REF"
rc=$?
REF=
check "the sweep in one go (one process) exits 0 (got $rc)" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || show single.log
expect 0 "requeued run == the run in one go, every metric and configuration column" \
    "$PY" "$TOOLS/compare_runs.py" single.h5 requeue.h5
sed 's/^/   | /' "$TMP/out"
echo "long_slurm_requeue: $(($(date +%s) - T0)) s"
cd "$ROOT" || exit 1
finish
