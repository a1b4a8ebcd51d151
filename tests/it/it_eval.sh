#!/bin/sh
# `untangle eval` and merge of a grown grid, on the real binary:
# - eval of a finished tiny sweep reproduces every ok run's metrics bit for
#   bit (every metric and per-factor column of /evals against /runs, and the
#   /detail arrays), alone and under `mpirun -np 3` (evaluations 1 and 2);
# - --set images=500 writes evaluation 3 with other values; --set of a train
#   key is refused (exit 1, the key named, nothing written);
# - a missing and a damaged saved model: one line each, no row, exit 2;
# - merge of a shard with a shard resumed under a grown grid (its runs under
#   other indices) keeps every run; --expect lists the one run not run.
#
#   sh tests/it/it_eval.sh        (from the repository root)
# lane: unit (times nothing: tests/run_all.sh runs it after the unit tests, in parallel with the other lane)
. tests/it/lib.sh
tiny_sweep "$TMP/s.yaml"
expect 0 "tiny sweep" "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/s.h5" --threads 1
n_evals() { $PY -c "import sys; from untangle import io; t = io.evals_table(sys.argv[1]);
print(0 if t is None else len(t))" "$1"; }

expect 0 "eval alone" "$UNTANGLE" eval "$TMP/s.h5" --threads 1
expect 0 "evaluation 1 == the training's, bit for bit" $PY "$TOOLS/compare_evals.py" "$TMP/s.h5" 1
expect 0 "eval under mpirun -np 3" mpirun -np 3 "$UNTANGLE" eval "$TMP/s.h5" --threads 1
expect 0 "evaluation 2 (mpirun) == the training's, bit for bit" \
    $PY "$TOOLS/compare_evals.py" "$TMP/s.h5" 2
[ "$(n_evals "$TMP/s.h5")" -eq 12 ] && ok "12 /evals rows" || fail "/evals rows: $(n_evals "$TMP/s.h5")"

expect 0 "eval --set images=500 --runs 0,1" "$UNTANGLE" eval "$TMP/s.h5" --threads 1 \
    --set images=500 --runs 0,1
expect 1 "evaluation 3 differs from the training's" $PY "$TOOLS/compare_evals.py" "$TMP/s.h5" 3
expect 1 "eval --set steps=5 refused" "$UNTANGLE" eval "$TMP/s.h5" --set steps=5
expect_err "'steps' is a train key"
[ "$(n_evals "$TMP/s.h5")" -eq 14 ] && ok "14 /evals rows" || fail "/evals rows: $(n_evals "$TMP/s.h5")"

set -- "$TMP"/s.h5.runs/*.model
rm "$1"
echo damaged >"$2"
expect 2 "eval with a missing and a damaged saved model" "$UNTANGLE" eval "$TMP/s.h5" --threads 1
expect_err "no saved model $1"
expect_err "saved model unusable: $2"
[ "$(n_evals "$TMP/s.h5")" -eq 18 ] && ok "4 more rows, none for them" ||
    fail "/evals rows: $(n_evals "$TMP/s.h5")"
expect 0 "the file opens clean (check against the journal)" "$UNTANGLE" eval "$TMP/s.h5" \
    --runs "$(basename "$3" .model)" --threads 1
if grep -q "rebuilt" "$TMP/err"; then fail "the file was rebuilt"; else ok "no rebuild"; fi

# --- merge of a grown grid ------------------------------------------------------------
tiny_sweep "$TMP/t.yaml"
sed 's/beta: \[1, 4\]/beta: [0.5, 1, 4]/' "$TMP/t.yaml" >"$TMP/grown.yaml"
expect 0 "shard 0/2" "$UNTANGLE" sweep "$TMP/t.yaml" -o "$TMP/s0.h5" --shard 0/2 --threads 1
expect 0 "shard 1/2" "$UNTANGLE" sweep "$TMP/t.yaml" -o "$TMP/s1.h5" --shard 1/2 --threads 1
expect 0 "merge of the shards" "$UNTANGLE" merge "$TMP/m.h5" "$TMP/s0.h5" "$TMP/s1.h5" --expect 6
cp "$TMP/s1.h5" "$TMP/g.h5" && cp "$TMP/s1.h5.journal" "$TMP/g.h5.journal"
expect 0 "shard 1/2 resumed with a grown grid" "$UNTANGLE" sweep "$TMP/grown.yaml" \
    -o "$TMP/g.h5" --resume --shard 1/2 --threads 1
expect 2 "merge m.h5 g.h5 --expect 8: one run missing" "$UNTANGLE" merge "$TMP/out.h5" \
    "$TMP/m.h5" "$TMP/g.h5" --expect 8
expect_err "1 of 8 runs missing"
expect_err "runs missing (index run_id): 0 "
n=$(rows "$TMP/out.h5" | awk '$3 == "ok"' | wc -l)
ids=$($PY -c "import sys; from untangle import io; print(io.load_runs(sys.argv[1])['run_id'].nunique())" "$TMP/out.h5")
[ "$n" -eq 7 ] && ok "every attempt kept once (7 rows)" || fail "rows: $n, want 7"
[ "$ids" -eq 7 ] && ok "7 runs" || fail "runs: $ids, want 7"
finish
