#!/bin/sh
# Submit a sweep as a job array of N shards plus the merge job that joins them:
#
#   jobs/submit_array.sh SWEEP.yaml RESULTS.h5 N [sbatch options for the array tasks]
#
# e.g. jobs/submit_array.sh sweeps/chen2018.yaml out/chen2018.h5 20 -c 4 -t 8:00:00
# Task I runs `untangle sweep SWEEP.yaml --shard I/N --resume` into
# RESULTS.shard-I-of-N.h5 (jobs/array.sbatch); once every task has ended
# (--dependency=afterany), jobs/merge.sbatch writes RESULTS.h5 and lists any
# missing index. Prints "ARRAY_JOB_ID MERGE_JOB_ID" on stdout.
# UNTANGLE_MERGE_OPTS: sbatch options for the merge job (e.g. "-t 1:00:00");
# UNTANGLE_SWEEP_OPTS: options for `untangle sweep` (e.g. "--retries 2");
# UNTANGLE_ARRAY_MAX: at most this many tasks at once (sbatch --array=0-N%K),
# to leave a shared cluster room.
# The directories of -o/--output and -e/--error given here are created
# first (SLURM does not create them; a job whose log directory is missing
# fails without a word).
# The environment reaches both jobs (sbatch's default --export=ALL).
set -eu

usage() {
    echo "usage: $0 SWEEP.yaml RESULTS.h5 N [sbatch options for the array tasks]" >&2
    exit 1
}
[ $# -ge 3 ] || usage
SWEEP=$1 RESULTS=$2 N=$3
shift 3
case $N in
    "" | *[!0-9]* | 0) usage ;;
esac
case $RESULTS in
    *.h5) ;;
    *) echo "$0: RESULTS must end in .h5 (the shards are RESULTS.shard-I-of-N.h5)" >&2
       exit 1 ;;
esac
JOBS=$(cd "$(dirname "$0")" && pwd)
UNTANGLE=${UNTANGLE:-$(command -v untangle || echo "$(dirname "$JOBS")/bin/untangle")}
export UNTANGLE

# Refuse a bad sweep file now rather than in N tasks.
"$UNTANGLE" list "$SWEEP" >/dev/null
case ${UNTANGLE_ARRAY_MAX:-} in
    "") THROTTLE= ;;
    *[!0-9]* | 0) echo "$0: UNTANGLE_ARRAY_MAX must be a positive integer" >&2; exit 1 ;;
    *) THROTTLE=%$UNTANGLE_ARRAY_MAX ;;
esac
# The log directories of the options (-o DIR/x.out, --output=DIR/x.out, ...).
logdir() { d=$(dirname -- "$1"); case $d in *%*) ;; *) mkdir -p -- "$d" ;; esac; }
prev=
for a in "$@" ${UNTANGLE_MERGE_OPTS:-}; do
    case $prev in -o | --output | -e | --error) logdir "$a" ;; esac
    case $a in --output=* | --error=*) logdir "${a#*=}" ;; esac
    prev=$a
done

# shellcheck disable=SC2086 # UNTANGLE_SWEEP_OPTS: options, split on purpose
ARRAY=$(UNTANGLE_SHARDS=$N sbatch --parsable --array="0-$((N - 1))$THROTTLE" "$@" \
    "$JOBS/array.sbatch" "$SWEEP" "$RESULTS" ${UNTANGLE_SWEEP_OPTS:-})
ARRAY=${ARRAY%%;*}   # "ID;CLUSTER" on multi-cluster set-ups
# shellcheck disable=SC2086 # UNTANGLE_MERGE_OPTS: options, split on purpose
MERGE=$(sbatch --parsable --dependency="afterany:$ARRAY" ${UNTANGLE_MERGE_OPTS:-} \
    "$JOBS/merge.sbatch" "$SWEEP" "$RESULTS" "$N")
MERGE=${MERGE%%;*}
echo "submitted array job $ARRAY ($N shards of $SWEEP) and merge job $MERGE -> $RESULTS" >&2
echo "$ARRAY $MERGE"
