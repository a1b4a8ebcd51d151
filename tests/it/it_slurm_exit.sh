#!/bin/sh
# What jobs/sweep.sbatch does with each exit code, against a real SLURM (a
# private slurmctld and slurmd on localhost, tests/it/slurm_env.sh):
# - a real sweep under mpirun gets SIGUSR1 (it drains), then SIGTERM while
#   the master drains: mpirun ends the ranks and returns 1, which the script
#   takes as 3 (resumable); the job exits 3, is not requeued by the script
#   (after SIGTERM SLURM decides), and the file opens for --resume;
# - a stand-in for untangle (one task, no launcher) signals the job script
#   and exits with a given code when the signal comes back, for the script's
#   whole decision table: after SIGUSR1, 3 and 1 requeue the job (the second
#   start completes it), 0, 2 and 4 end it with that code, not requeued;
#   after SIGTERM, 1 becomes 3, not requeued; without a signal, 1 and 137
#   are passed on, not requeued.
# Skipped (exit 0, says why) when SLURM is not installed.
# shellcheck disable=SC1091 # sourced helpers, checked on their own
. tests/it/slurm_env.sh
slurm_need sbatch squeue scontrol scancel
. tests/it/lib.sh
trap 'slurm_stop; rm -rf "$TMP"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
T0=$(date +%s)
ROOT=$PWD
JOBS=$ROOT/jobs

check() {
    what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
show() { echo "   --- $1"; sed 's/^/   | /' "$1" 2>/dev/null | tail -n "${2:-30}"; }
log_has() {
    if grep -qF -- "$2" "$1"; then ok "$3"; else fail "$3: no '$2' in the log"; show "$1"; fi
}
log_lacks() {
    if grep -qF -- "$2" "$1"; then fail "$3: '$2' in the log"; show "$1"; else ok "$3"; fi
}
wait_for() { # LOG TEXT SECONDS: until the log has TEXT
    n=0
    until grep -qF -- "$2" "$1" 2>/dev/null; do
        n=$((n + 1))
        [ "$n" -ge $(($3 * 5)) ] && return 1
        sleep 0.2
    done
}
# ended JOB STATE EXITCODE RESTARTS WHAT LOG: the job ended so
ended() {
    if ! slurm_wait "$1" 90; then
        fail "$5: job $1 still $(slurm_state "$1") after 90 s"
        show "$6"
        return
    fi
    got="$(slurm_state "$1") $(slurm_field "$1" ExitCode) $(slurm_field "$1" Restarts)"
    if [ "$got" = "$2 $3:0 $4" ]; then ok "$5: $2, exit $3, $4 restarts"; else
        fail "$5: state, exit code, restarts: $got, want $2 $3:0 $4"
        show "$6"
    fi
}

if ! slurm_start "$TMP/slurm" 12; then
    fail "private slurmctld/slurmd did not start"
    show "$TMP/slurm/log/slurmctld.log"
    finish
fi
cd "$TMP" || exit 1

# --- the stand-in: the decision table, every job at once -------------------------
# STUB_SIG: the signal it sends the job script (its parent), again every
# second until the script passes it back; STUB_RC: its exit code then (or at
# once without STUB_SIG). A requeued job's second start exits 0.
cat >stub.sh <<'STUB'
#!/bin/sh
[ "${SLURM_RESTART_COUNT:-0}" -gt 0 ] && { echo "stub: start 2, done"; exit 0; }
[ -z "${STUB_SIG:-}" ] && exit "$STUB_RC"
trap 'echo "stub: got the signal back, exit $STUB_RC"; exit "$STUB_RC"' USR1 TERM
while :; do
    kill -s "$STUB_SIG" "$PPID"
    sleep 1 &
    wait $!
done
STUB
chmod +x stub.sh
stub_job() { # NAME SIG RC: submit one job of the stand-in, print its id
    STUB_SIG=$2 STUB_RC=$3 UNTANGLE=$TMP/stub.sh sbatch --parsable -n 1 -t 5 -o "$1.log" \
        "$JOBS/sweep.sbatch" none.yaml none.h5
}
for c in "usr3 USR1 3" "usr1 USR1 1" "usr0 USR1 0" "usr2 USR1 2" "usr4 USR1 4" \
    "term1 TERM 1" "plain1 '' 1" "plain137 '' 137"; do
    eval "set -- $c"
    eval "J_$1=\$(stub_job $1 \"\$2\" $3)"
done

# --- a real sweep: SIGUSR1, then SIGTERM while the master drains -----------------
tiny_sweep long.yaml
sed -i 's/steps: 20,/steps: 300,/' long.yaml
N=$("$UNTANGLE" list long.yaml | tail -n 1 | awk '{print $1}')
J=$(UNTANGLE_LAUNCHER=mpirun UNTANGLE=$UNTANGLE sbatch --parsable -n 3 -c 1 -t 5 -o real.log \
    "$JOBS/sweep.sbatch" long.yaml real.h5 --stop-grace 1)
if wait_for real.log "runs ($N to run)" 60 && sleep 1 && scancel -b -s USR1 "$J" &&
    wait_for real.log "draining" 20; then
    scancel -b -s TERM "$J"
    ok "SIGUSR1, then SIGTERM while draining, sent to job $J"
else
    fail "the real sweep did not start or drain in time"
    show real.log
fi
ended "$J" FAILED 3 0 "mpirun, SIGTERM while draining" real.log
log_has real.log "got SIGTERM" "the script passed SIGTERM on"
# mpirun ends the ranks itself 2 s after SIGTERM and returns 1; should the
# ranks be quicker it passes the sweep's own 3 on
rc=$(sed -n 's/.*the sweep exited with \([0-9]*\)$/\1/p' real.log | tail -n 1)
case $rc in
    1) log_has real.log "(treated as 3)" "mpirun returned 1 after SIGTERM: taken as 3" ;;
    3) ok "mpirun returned the sweep's 3 after SIGTERM" ;;
    *) fail "mpirun returned '$rc' after SIGTERM, want 1 or 3"; show real.log ;;
esac
log_has real.log "not requeued here" "after SIGTERM the script does not requeue"
# resumable: the file opens (recovered if need be) and the runs left are
# counted; a deadline already past starts none of them
expect 3 "the terminated job's file opens for --resume" "$UNTANGLE" sweep long.yaml \
    -o real.h5 --resume --threads 1 --deadline 1e-9
expect_err "runs left; run again with --resume"

# --- the stand-in's jobs ---------------------------------------------------------------
# shellcheck disable=SC2154 # J_* are set by eval above
{
    ended "$J_usr3" COMPLETED 0 1 "USR1, exit 3: requeued, completed" usr3.log
    log_has usr3.log "requeueing job $J_usr3" "USR1, exit 3: the script requeued the job"
    ended "$J_usr1" COMPLETED 0 1 "USR1, exit 1: taken as 3, requeued" usr1.log
    log_has usr1.log "(treated as 3)" "USR1, exit 1: the script says so"
    ended "$J_usr0" COMPLETED 0 0 "USR1, exit 0: done" usr0.log
    ended "$J_usr2" FAILED 2 0 "USR1, exit 2: some runs failed, not requeued" usr2.log
    ended "$J_usr4" FAILED 4 0 "USR1, exit 4: cannot write, not requeued" usr4.log
    ended "$J_term1" FAILED 3 0 "TERM, exit 1: taken as 3, not requeued" term1.log
    log_has term1.log "(treated as 3)" "TERM, exit 1: the script says so"
    ended "$J_plain1" FAILED 1 0 "no signal, exit 1: bad input, not requeued" plain1.log
    log_lacks plain1.log "treated as 3" "no signal, exit 1: not taken as 3"
    ended "$J_plain137" FAILED 137 0 "no signal, exit 137: launcher failed, not requeued" \
        plain137.log
    for l in usr0 usr2 usr4 term1 plain1 plain137; do
        log_lacks "$l.log" "requeueing job" "$l: the script did not requeue"
    done
}
echo "it_slurm_exit: $(($(date +%s) - T0)) s"
cd "$ROOT" || exit 1
finish
