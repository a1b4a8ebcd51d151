#!/bin/sh
# The sweep engine end to end: the same sweep with no mpirun, with 2 ranks and
# with 4 ranks gives the same numbers; list and --dry-run; clear refusals that
# leave files untouched.
# lane: python (times nothing: tests/run_all.sh runs it after the Python tests, in parallel with the other lane)
. tests/it/lib.sh
tiny_sweep "$TMP/s.yaml"

expect 0 "list" "$UNTANGLE" list "$TMP/s.yaml"
grep -q "^6 runs" "$TMP/out" && ok "list counts 6 runs" || fail "list total: $(tail -n 1 "$TMP/out")"
expect 0 "sweep --dry-run" "$UNTANGLE" sweep "$TMP/s.yaml" --dry-run
[ ! -e "$TMP/a.h5" ] && ok "dry run wrote nothing" || fail "dry run wrote a file"

expect 0 "serial sweep" "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/a.h5" --threads 1
expect 0 "sweep under mpirun -np 2" mpirun -np 2 "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/b.h5" --threads 1
expect 0 "sweep under mpirun -np 4" mpirun --oversubscribe -np 4 "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/c.h5" --threads 1
expect 0 "serial == 2 ranks" $PY "$TOOLS/compare_runs.py" "$TMP/a.h5" "$TMP/b.h5"
expect 0 "serial == 4 ranks" $PY "$TOOLS/compare_runs.py" "$TMP/a.h5" "$TMP/c.h5"

# --dry-run with --resume lists what would run, and touches nothing
sed 's/beta: \[1, 4\]/beta: [1, 2, 4]/' "$TMP/s.yaml" >"$TMP/grown.yaml"
before=$(md5sum "$TMP/a.h5" "$TMP/a.h5.journal")
expect 0 "grown sweep --resume --dry-run" "$UNTANGLE" sweep "$TMP/grown.yaml" -o "$TMP/a.h5" --resume --dry-run
grep -q "^2 of 8 runs to run (betavae 2)" "$TMP/out" && ok "only the 2 new runs listed" ||
    { fail "dry run of a resume"; sed 's/^/   | /' "$TMP/out"; }
[ "$(md5sum "$TMP/a.h5" "$TMP/a.h5.journal")" = "$before" ] && ok "the dry run changed nothing" ||
    fail "the dry run changed the file"

# a run retried within the sweep: its line says so, and the [k/N] counter
# never repeats a value
expect 2 "a crash retried once" env UNTANGLE_INJECT_FAULT="crash@1" "$UNTANGLE" sweep "$TMP/s.yaml" \
    -o "$TMP/retry.h5" --retries 1 --threads 1
grep -q "#1 .*failed.*(retried: attempt 2 queued)" "$TMP/err" && ok "the retry is announced" ||
    fail "no retry line"
dups=$(grep -o '^\[[0-9]*/6\]' "$TMP/err" | sort | uniq -d)
[ -z "$dups" ] && [ "$(grep -c '^\[[0-9]*/6\]' "$TMP/err")" -eq 7 ] && ok "7 lines, no counter repeated" ||
    { fail "counter: $dups"; grep '^\[' "$TMP/err" | sed 's/^/   | /'; }

# refusals: exit 1, nothing created or changed
sum() { md5sum "$1" | cut -d' ' -f1; }
before=$(sum "$TMP/a.h5")
expect 1 "existing file without --resume" "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/a.h5"
expect_err "--resume"
sed 's/^name: tiny/name: other/' "$TMP/s.yaml" >"$TMP/other.yaml"
expect 1 "file of another sweep" "$UNTANGLE" sweep "$TMP/other.yaml" -o "$TMP/a.h5" --resume
expect_err "belongs to sweep 'tiny'"
[ "$(sum "$TMP/a.h5")" = "$before" ] && ok "refused file unchanged" || fail "refused file changed"
expect 1 "results in a missing directory" "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/nodir/r.h5"
expect_err "$TMP/nodir/r.h5"
expect 1 "unknown key" sh -c "printf 'name: x\ngrid: {model: vae, betta: 2}\n' > $TMP/bad.yaml; $UNTANGLE sweep $TMP/bad.yaml -o $TMP/bad.h5"
expect_err "bad.yaml:2:"
[ ! -e "$TMP/bad.h5" ] && ok "no file for a bad sweep" || fail "a bad sweep wrote a file"
expect 1 "single rank while SLURM has 4 tasks" env SLURM_NTASKS=4 SLURM_STEP_NUM_TASKS=4 SLURM_STEP_ID=0 SLURM_JOB_ID=1 "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/d.h5"
expect_err "SLURM started 4 tasks"
[ ! -e "$TMP/d.h5" ] && ok "no file when the launch is wrong" || fail "file written despite the wrong launch"
expect 1 "mpirun -np 1 while SLURM has 3 tasks" env SLURM_NTASKS=3 mpirun -np 1 "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/d.h5"
expect_err "mpirun started 1 rank but SLURM allocated 3 tasks"

# numeric options: strict, range-checked, the range in the message; nothing written
for bad in "--retries 2147483648|0..1000" "--threads 1e10|1..4096" "--threads 2.7|an integer" \
           "--max-runs 1e30|an integer" "--deadline -1|a number" "--checkpoint-every x|a number" \
           "--min-start nan|a number" "--stop-grace 1e7|0..1e+06"; do
    opt=${bad%%|*}
    # shellcheck disable=SC2086 # the option and its value are two words
    expect 1 "sweep $opt refused" "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/n.h5" $opt
    expect_err "${bad#*|}"
done
[ ! -e "$TMP/n.h5" ] && ok "no file for a bad option" || fail "a bad option wrote a file"
expect 1 "a key's maximum is named" "$UNTANGLE" train --set beta=1e30
expect_err "beta: 1e30 is out of range (must be 0..1e+18)"
expect 1 "a huge integer is out of range, not malformed" "$UNTANGLE" train --set steps=9223372036854775807
expect_err "steps: 9223372036854775807 is out of range"

# the command line helps: a misspelt key, a results file given as a sweep,
# an existing data file, merge's word on success
expect 1 "--set with a misspelt key" "$UNTANGLE" train --set modl=vae
expect_err "--set modl=vae: unknown key 'modl' (did you mean 'model'?)"
expect 1 "list of a results file" "$UNTANGLE" list "$TMP/a.h5"
expect_err "not a sweep YAML"
before=$(sum "$TMP/a.h5")
expect 1 "dsprites onto an existing file" "$UNTANGLE" dsprites -o "$TMP/a.h5" --image-size 32
expect_err "exists; --force replaces it"
[ "$(sum "$TMP/a.h5")" = "$before" ] && ok "existing file kept" || fail "dsprites overwrote a file"
expect 0 "merge" "$UNTANGLE" merge "$TMP/m.h5" "$TMP/a.h5"
grep -q "wrote $TMP/m.h5 from 1 file" "$TMP/out" && ok "merge says what it wrote" ||
    fail "merge printed: $(cat "$TMP/out")"
finish
