#!/bin/sh
# A full file system (a small tmpfs, as root): the sweep stops with exit 4
# (cannot write the results, SWEEP_NO_WRITE) and one message, never a crash
# (exit >= 128), whether space runs out at creation (16 KiB) or after some
# rows (300 KiB; no checkpoints or saved models: only the results fill it); the files copied to a normal directory then resume to
# completion with every run exactly once. A journal that must be rewritten
# from the file (behind it, or empty) on a disk with no byte free stays in
# place as it was (exit 4), and the resume with space again completes.
# lane: unit (times nothing: tests/run_all.sh runs it after the unit tests, in parallel with the other lane)
. tests/it/lib.sh
if [ "$(id -u)" -ne 0 ]; then echo "skipped: it_diskfull needs root to mount a tmpfs"; finish; fi
D="$TMP/full"
mkdir "$D"
if ! mount -t tmpfs -o size=16k tmpfs "$D" 2>/dev/null; then
    echo "skipped: it_diskfull cannot mount a tmpfs here"; finish
fi
trap 'umount "$D" 2>/dev/null; rm -rf "$TMP"' EXIT
tiny_sweep "$TMP/t.yaml"
full_sweep() { # size: a sweep into a fresh tmpfs of that size
    umount "$D"; mount -t tmpfs -o size="$1" tmpfs "$D"
    "$UNTANGLE" sweep "$TMP/t.yaml" -o "$D/r.h5" --threads 1 \
        --checkpoint-every 0 --no-save-models >"$TMP/out" 2>"$TMP/err"
    got=$?
    [ "$got" -eq 4 ] && ok "$1: exit 4" || { fail "$1: exit $got, want 4"; tail -n 5 "$TMP/err"; }
    n=$(grep -c "^untangle sweep: " "$TMP/err")
    [ "$n" -eq 1 ] && ok "$1: one error line" || fail "$1: $n error lines"
    expect_err "cannot write the results"
    expect_err "No space left on device"
}
full_sweep 16k
full_sweep 300k
mkdir "$TMP/copy"
cp -r "$D"/r.h5* "$TMP/copy/"
cp "$D/r.h5.journal" "$TMP/behind" # fewer rows than the file will hold
expect 0 "resume the copy with space again" "$UNTANGLE" sweep "$TMP/t.yaml" \
    -o "$TMP/copy/r.h5" --resume --threads 1
n=$(rows "$TMP/copy/r.h5" | wc -l)
d=$(rows "$TMP/copy/r.h5" | awk '{print $1}' | sort -u | wc -l)
[ "$n" -eq 6 ] && [ "$d" -eq 6 ] && [ "$(count_ok "$TMP/copy/r.h5")" -eq 6 ] &&
    ok "every run exactly once" || fail "$n rows, $d distinct indices"
# The complete file with a journal behind it (then an empty one) on a disk
# filled to the last byte: the rewrite fails, the journal stays as it was.
for j in behind empty; do
    umount "$D"; mount -t tmpfs -o size=4m tmpfs "$D"
    cp "$TMP/copy/r.h5" "$D/"
    if [ "$j" = behind ]; then cp "$TMP/behind" "$D/r.h5.journal"; else : >"$D/r.h5.journal"; fi
    cp "$D/r.h5.journal" "$TMP/was"
    dd if=/dev/zero of="$D/fill" bs=4k 2>/dev/null
    expect 4 "$j journal, no space to rewrite it" "$UNTANGLE" sweep "$TMP/t.yaml" -o "$D/r.h5" \
        --resume --threads 1
    expect_err "No space left on device"
    cmp -s "$TMP/was" "$D/r.h5.journal" && ok "$j journal: still in place, unchanged" ||
        fail "$j journal: $(ls "$D" | tr '\n' ' ')"
    rm "$D/fill"
    expect 0 "$j journal: resume with space again" "$UNTANGLE" sweep "$TMP/t.yaml" -o "$D/r.h5" \
        --resume --threads 1
    [ "$(count_ok "$D/r.h5")" -eq 6 ] && [ "$(count_ok_indices "$D/r.h5")" -eq 6 ] &&
        [ -s "$D/r.h5.journal" ] && ok "$j journal: every run once, journal rewritten" ||
        fail "$j journal: $(count_ok "$D/r.h5") ok rows"
done
finish
