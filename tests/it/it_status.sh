#!/bin/sh
# untangle status: on a sweep in flight under mpirun it shows the runs in
# flight with their current step; at the end every run ok and nothing in
# flight; with a grown sweep file the new runs are pending; a results file
# given where a sweep file belongs is named as such.
. tests/it/lib.sh
tiny_sweep "$TMP/s.yaml"
# long enough runs (a few seconds each) to be seen in flight
sed -i 's/steps: 20, batch_size: 16/steps: 300, batch_size: 16/' "$TMP/s.yaml"
mpirun --oversubscribe -np 3 "$UNTANGLE" sweep "$TMP/s.yaml" -o "$TMP/r.h5" --threads 1 \
    --min-start 0 >"$TMP/sweep.log" 2>&1 &
SWEEP=$!
seen=0
i=0
while [ $i -lt 600 ] && kill -0 $SWEEP 2>/dev/null; do
    if "$UNTANGLE" status "$TMP/r.h5" --json >"$TMP/st.json" 2>/dev/null &&
        $PY - "$TMP/st.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
f = [r for r in s["in_flight"] if r["step"] > 0]
sys.exit(0 if f and s["writer_pid"] and s["total"]["running"] == len(s["in_flight"]) and
         all(r["rank"] in (1, 2) and r["steps"] == 300 and "loss" in r["losses"] for r in f)
         else 1)
PY
    then
        seen=1
        break
    fi
    sleep 0.1
    i=$((i + 1))
done
[ $seen = 1 ] && ok "status shows the runs in flight with rank, step and losses" ||
    fail "no run seen in flight: $(cat "$TMP/st.json" 2>/dev/null)"
expect 0 "status as text while the sweep runs" "$UNTANGLE" status "$TMP/r.h5"
grep -q "in flight:" "$TMP/out" && grep -q "step [0-9]* / 300" "$TMP/out" &&
    ok "the text lists the runs in flight" || { fail "text status"; sed 's/^/   | /' "$TMP/out"; }
wait $SWEEP && ok "the sweep ended (exit 0)" || fail "the sweep failed: $(tail -n 5 "$TMP/sweep.log")"
expect 0 "status of the finished file" "$UNTANGLE" status "$TMP/r.h5" --json
$PY - "$TMP/out" <<'PY' && ok "6 ok, nothing pending or in flight" || fail "final status: $(cat "$TMP/out")"
import json, sys
s = json.load(open(sys.argv[1]))
t = s["total"]
sys.exit(0 if t["ok"] == 6 and t["pending"] == t["running"] == 0 and not s["in_flight"]
         and s["writer_pid"] is None and s["methods"]["betavae"]["ok"] == 4 else 1)
PY
[ -z "$(ls "$TMP/r.h5.runs/"*.progress 2>/dev/null)" ] && ok "no progress record left" ||
    fail "progress records left: $(ls "$TMP/r.h5.runs/")"
sed 's/beta: \[1, 4\]/beta: [1, 2, 4]/' "$TMP/s.yaml" >"$TMP/grown.yaml"
expect 0 "status against a grown sweep file" "$UNTANGLE" status "$TMP/r.h5" "$TMP/grown.yaml"
grep -q "^betavae  *4  *0  *0  *0  *0  *2  *0" "$TMP/out" && ok "the two new runs are pending" ||
    { fail "grown: pending"; sed 's/^/   | /' "$TMP/out"; }
expect 1 "status of a missing file" "$UNTANGLE" status "$TMP/none.h5"
expect_err "$TMP/none.h5"
finish
