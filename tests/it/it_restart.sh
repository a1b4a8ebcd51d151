#!/bin/sh
# --restart never loses or hijacks: two restarts in the same second keep two
# backups (the first sweep's rows in one of them); a running sweep's files
# are refused, not moved (the writer's lock); a directory at the output path
# is refused, not renamed; a lone journal is moved aside, not recovered.
. tests/it/lib.sh
tiny_sweep "$TMP/t.yaml"
expect 0 "a first sweep" "$UNTANGLE" sweep "$TMP/t.yaml" -o "$TMP/r.h5" --threads 1
cp "$TMP/r.h5.journal" "$TMP/l.h5.journal"
for i in 1 2; do
    expect 3 "--restart $i, no time to run anything" "$UNTANGLE" sweep "$TMP/t.yaml" \
        -o "$TMP/r.h5" --restart --deadline 1e-9 --min-start 0
done
baks=$(ls "$TMP" | grep '^r\.h5\.bak-' | grep -v '\.journal$')
[ "$(echo "$baks" | wc -l)" -eq 2 ] && ok "two backups" || fail "backups: $baks"
found=0
for b in $baks; do [ "$(count_ok "$TMP/$b")" -eq 6 ] && found=1; done
[ "$found" -eq 1 ] && ok "the first sweep's 6 rows are kept" || fail "the first sweep's rows are lost"

# a lone journal: --restart starts afresh, it does not recover the old rows
expect 3 "--restart beside a lone journal" "$UNTANGLE" sweep "$TMP/t.yaml" -o "$TMP/l.h5" \
    --restart --deadline 1e-9 --min-start 0
[ "$(rows "$TMP/l.h5" | wc -l)" -eq 0 ] && ok "no old rows recovered" || fail "old rows recovered"

# a directory at the output path: refused, left as it is
mkdir "$TMP/d.h5"
expect 1 "--restart on a directory" "$UNTANGLE" sweep "$TMP/t.yaml" -o "$TMP/d.h5" --restart
expect_err "not a regular file"
[ -d "$TMP/d.h5" ] && ok "the directory is still there" || fail "the directory was moved"

# a running sweep: --restart is refused and moves nothing
sed 's/steps: 20,/steps: 4000,/' "$TMP/t.yaml" >"$TMP/slow.yaml"
"$UNTANGLE" sweep "$TMP/slow.yaml" -o "$TMP/s.h5" --threads 1 >"$TMP/slow.log" 2>&1 &
P=$!
i=0; while [ ! -s "$TMP/s.h5.journal" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
expect 4 "--restart while a sweep writes the file" "$UNTANGLE" sweep "$TMP/slow.yaml" \
    -o "$TMP/s.h5" --restart
expect_err "in use by another sweep"
[ -f "$TMP/s.h5" ] && [ -z "$(ls "$TMP" | grep '^s\.h5\.bak')" ] && ok "nothing moved" ||
    fail "the running sweep's files were moved"
kill -TERM $P; wait $P
finish
