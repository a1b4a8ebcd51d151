#!/bin/sh
# soak_faults.sh [FAULTS [SEEDS]]: what a hostile cluster does to a sweep,
# FAULTS times (default 200), each followed by --resume: a SIGKILL of the
# master (mpirun), a SIGKILL of one worker rank, a SIGSTOP of one worker (the
# master writes it off at the deadline), a full disk (the output directory
# copied onto a small tmpfs and resumed there, as root only), or a byte of
# the journal or the HDF5 file flipped between runs. Runs checkpoint every
# 0.5 s, so kills land in checkpoints too. Then the sweep is resumed to
# completion: every run of the grid has exactly one ok row, every metric
# equal bit for bit to an undisturbed sweep, and nothing outside the output
# directory changed. A sweep that the faults let finish is checked the same
# way and a new one started in a new directory, so that kills and stops keep
# meeting running work. `make soak` runs it; prints the count of each fault.
. tests/it/lib.sh
faults=${1:-200}
seeds=${2:-3}
n=$((4 * seeds))
cat >"$TMP/s.yaml" <<YAML
name: soak
data:  {name: dsprites, image_size: 32}
train: {arch: mlp, steps: 120, batch_size: 16, lr: 1.0e-3, log_every: 20}
eval:  {images: 300, samples: 100, pairs: 5, hist_images: 300, unsup_images: 300}
grid:
  - model: betavae
    beta: [1, 4, 8]
  - model: betatcvae
seeds: $seeds
YAML
OPTS="--threads 1 --checkpoint-every 0.5 --stop-grace 1 --min-start 0 --retries 1000"
expect 0 "undisturbed reference" mpirun -np 3 "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/ref.h5" --threads 1
OUT=$TMP/results
mkdir -p "$OUT"
echo "a file outside the output directory" >"$TMP/outside"
outside=$(md5sum "$TMP/outside" "$TMP/s.yaml" "$TMP/ref.h5" | md5sum)
root=0
[ "$(id -u)" -eq 0 ] && mkdir -p "$TMP/full" && mount -t tmpfs -o size=400k tmpfs "$TMP/full" 2>/dev/null &&
    root=1
trap '[ "$root" -eq 1 ] && umount "$TMP/full" 2>/dev/null; rm -rf "$TMP"' EXIT

rand() { shuf -i "$1-$2" -n 1; }
nap_ms() { sleep "$(echo "$1" | awk '{printf "%.3f", $1 / 1000}')"; }
# rank_pid MPIRUN_PID RANK: the pid of that rank's process
rank_pid() {
    for p in $(pgrep -P "$1"); do
        tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qx "OMPI_COMM_WORLD_RANK=$2" &&
            echo "$p" && return
    done
}
# flip FILE: one byte at a random offset, inverted
flip() {
    size=$(stat -c %s "$1" 2>/dev/null || echo 0)
    [ "$size" -gt 0 ] || return 1
    off=$(rand 0 $((size - 1)))
    b=$(od -An -tu1 -j "$off" -N1 "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $((255 - b)))" | dd of="$1" bs=1 seek="$off" conv=notrunc 2>/dev/null
}
sweep_bg() { # DIR [extra options]: a resume of the sweep in DIR, in the background
    d=$1; shift
    # shellcheck disable=SC2086 # OPTS are words
    mpirun -np 3 "$UNTANGLE" sweep "$TMP/s.yaml" -o "$d/r.h5" --resume $OPTS "$@" \
        >>"$TMP/soak.log" 2>&1 &
    pid=$!
}

# check_round: resume the sweep in OUT to completion; one ok row per run,
# every metric equal to the undisturbed sweep's
check_round() {
    # shellcheck disable=SC2086
    expect 0 "round $round: resume to completion" mpirun -np 3 "$UNTANGLE" sweep "$TMP/s.yaml" \
        -o "$OUT/r.h5" --resume $OPTS
    [ "$(count_ok "$OUT/r.h5")" -eq "$n" ] && [ "$(count_ok_indices "$OUT/r.h5")" -eq "$n" ] &&
        ok "round $round: exactly one ok row per run" ||
        fail "round $round: ok rows: $(rows "$OUT/r.h5" | awk '$3 == "ok"' | wc -l)"
    expect 0 "round $round: every metric equals the undisturbed sweep" $PY "$TOOLS/compare_runs.py" \
        "$TMP/ref.h5" "$OUT/r.h5"
}
# the last launch found nothing to run
round_done() {
    grep -E "to run\)|^soak round" "$TMP/soak.log" 2>/dev/null | tail -n 1 | grep -q "(0 to run)"
}
kill_master=0 kill_worker=0 stop_worker=0 disk_full=0 flip_journal=0 flip_file=0 crashes=0
round=1
i=0
while [ "$i" -lt "$faults" ]; do
    i=$((i + 1))
    kind=$(rand 1 12)
    case $kind in
        1|2|3|4)
            sweep_bg "$OUT"; nap_ms "$(rand 300 3000)"
            kill -KILL "$pid" 2>/dev/null && kill_master=$((kill_master + 1))
            wait "$pid" 2>/dev/null; sleep 0.3 ;;
        5|6|7)
            sweep_bg "$OUT"; nap_ms "$(rand 1000 3000)"
            w=$(rank_pid "$pid" "$(rand 1 2)")
            [ -n "$w" ] && kill -KILL "$w" 2>/dev/null && kill_worker=$((kill_worker + 1))
            wait "$pid" 2>/dev/null; sleep 0.3 ;;
        8)
            sweep_bg "$OUT" --deadline 6; nap_ms "$(rand 1000 3000)"
            w=$(rank_pid "$pid" "$(rand 1 2)")
            [ -n "$w" ] && kill -STOP "$w" 2>/dev/null && stop_worker=$((stop_worker + 1))
            # the job ends ~10 s in; a launcher still there at 120 s hangs
            (sleep 120; kill -KILL "$pid" 2>/dev/null) & dog=$!
            wait "$pid"; rc=$?
            kill "$dog" 2>/dev/null
            [ -n "$w" ] && kill -CONT "$w" 2>/dev/null
            [ "$rc" -ge 128 ] && crashes=$((crashes + 1)) && echo "crash: exit $rc (stopped worker; 137: hung)"
            sleep 0.3 ;;
        9)
            if [ "$root" -eq 1 ]; then
                # a disk that holds the results as they are and ~100 KiB more:
                # the resume fills it (checkpoints never fit: runs restart)
                rm -rf "${TMP:?}/full/"*
                need=$(du -sk "$OUT/r.h5" "$OUT/r.h5.journal" 2>/dev/null | awk '{s += $1} END {print s + 100}')
                mount -o remount,size="${need}k" "$TMP/full" &&
                    cp "$OUT/r.h5" "$OUT/r.h5.journal" "$TMP/full/" 2>/dev/null && {
                    # shellcheck disable=SC2086
                    mpirun -np 3 "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/full/r.h5" --resume $OPTS \
                        >>"$TMP/soak.log" 2>&1
                    rc=$?
                    [ "$rc" -ge 128 ] && crashes=$((crashes + 1)) && echo "crash: exit $rc (disk full)"
                    disk_full=$((disk_full + 1))
                    # what the full disk left is what a user moves back
                    cp "$TMP/full/r.h5" "$TMP/full/r.h5.journal" "$OUT/"
                }
            fi ;;
        10|11)
            flip "$OUT/r.h5.journal" && flip_journal=$((flip_journal + 1)) ;;
        12)
            flip "$OUT/r.h5" && flip_file=$((flip_file + 1)) ;;
    esac
    if round_done; then
        check_round
        round=$((round + 1))
        OUT=$TMP/results.$round
        mkdir -p "$OUT"
        echo "soak round $round" >>"$TMP/soak.log"
    fi
done
echo "   faults: $kill_master master kills, $kill_worker worker kills, $stop_worker stopped workers," \
     "$disk_full full disks, $flip_journal journal bytes, $flip_file file bytes flipped; $round rounds"
check_round
cat "$TMP/out"
grep -h "rebuilt\|recover\|damaged\|written off\|cannot write" "$TMP/soak.log" |
    sed 's/[0-9][0-9]*/N/g' | sort | uniq -c | sort -rn | head -n 12 | sed 's/^/   | /'
[ "$crashes" -eq 0 ] && ok "no crash" || fail "$crashes crashes"
[ "$(md5sum "$TMP/outside" "$TMP/s.yaml" "$TMP/ref.h5" | md5sum)" = "$outside" ] &&
    ok "nothing outside the output directory changed" || fail "a file outside the output changed"
finish
