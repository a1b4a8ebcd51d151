#!/bin/sh
# Resume: a grown YAML runs only the new indices and the file records both
# YAMLs; a YAML whose fixed sections changed is refused, naming the key;
# --restart keeps the old file under a backup name; --resume on a missing
# file starts it.
# lane: python (times nothing: tests/run_all.sh runs it after the Python tests, in parallel with the other lane)
. tests/it/lib.sh
cat >"$TMP/a.yaml" <<YAML
name: growtest
data:  {name: dsprites, image_size: 32}
train: {arch: mlp, steps: 20, batch_size: 16, lr: 1.0e-3, log_every: 10}
eval:  {images: 200, samples: 100, pairs: 5, hist_images: 200, unsup_images: 200}
grid: {model: betavae, beta: [1, 4]}
seeds: 1
YAML
expect 0 "--resume on a missing file starts it" "$UNTANGLE" sweep "$TMP/a.yaml" -o "$TMP/r.h5" --resume --threads 1
sed 's/beta: \[1, 4\]/beta: [1, 2, 4]/; s/^seeds: 1/seeds: 2/' "$TMP/a.yaml" >"$TMP/b.yaml"
expect 0 "resume with a grown grid" "$UNTANGLE" sweep "$TMP/b.yaml" -o "$TMP/r.h5" --resume --threads 1
expect_err "holds 2 ok"
[ "$(rows "$TMP/r.h5" | wc -l)" -eq 6 ] && ok "only the 4 new runs ran (6 rows)" || fail "rows: $(rows "$TMP/r.h5")"
n=$($PY -c "import sys; from untangle import io; print(len(io.load_meta(sys.argv[1])['sweeps']))" "$TMP/r.h5")
[ "$n" -eq 2 ] && ok "the file records both YAMLs" || fail "/sweeps has $n rows"
sed 's/steps: 20/steps: 30/' "$TMP/b.yaml" >"$TMP/c.yaml"
sum() { md5sum "$1" | cut -d' ' -f1; }
before=$(sum "$TMP/r.h5")
expect 1 "changed fixed section refused" "$UNTANGLE" sweep "$TMP/c.yaml" -o "$TMP/r.h5" --resume
expect_err "'steps' changed"
[ "$(sum "$TMP/r.h5")" = "$before" ] && ok "refused file unchanged" || fail "refused file changed"
expect 0 "--restart starts afresh" "$UNTANGLE" sweep "$TMP/c.yaml" -o "$TMP/r.h5" --restart --threads 1
ls "$TMP"/r.h5.bak-* >/dev/null 2>&1 && ok "old file kept as a backup" || fail "no backup"
[ "$(rows "$TMP/r.h5" | wc -l)" -eq 6 ] && ok "fresh file holds the 6 runs" || fail "rows after restart"
finish
