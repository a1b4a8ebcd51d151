#!/bin/sh
# The scheduler's overhead: runs that train for 0 steps and skip evaluation
# measure dispatch + isolated run process + result message + HDF5 row; and
# the CPU the waiting master uses while workers train.
set -u
UNTANGLE=${UNTANGLE:-$PWD/bin/untangle}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
TMP=$(mktemp -d /tmp/untangle-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
cat >"$TMP/o.yaml" <<YAML
name: overhead
data:  {name: dsprites, image_size: 32}
train: {arch: mlp, steps: 0, batch_size: 64, lr: 1.0e-3, log_every: 100}
grid: {model: vae, latent_dim: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}
seeds: 200
YAML
for np in 1 3; do
    rm -rf "$TMP/o.h5"*
    if [ $np -eq 1 ]; then launch=""; else launch="mpirun -np $np"; fi
    t0=$(date +%s.%N)
    $launch "$UNTANGLE" sweep "$TMP/o.yaml" -o "$TMP/o.h5" --no-eval --threads 1 2>/dev/null
    t1=$(date +%s.%N)
    echo "$t0 $t1 $np" | awk '{printf "scheduler: 2000 empty runs, %d process(es): %.1f s, %.0f runs/s (start-up included)\n", $3, $2 - $1, 2000 / ($2 - $1)}'
done

# the waiting master's CPU: 4 runs of a few seconds on 2 workers
cat >"$TMP/w.yaml" <<YAML
name: waiting
data:  {name: dsprites, image_size: 32}
train: {arch: mlp, steps: 150, batch_size: 64, lr: 1.0e-3, log_every: 100}
grid: {model: vae}
seeds: 4
YAML
mpirun -np 3 "$UNTANGLE" sweep "$TMP/w.yaml" -o "$TMP/w.h5" --no-eval --threads 1 2>/dev/null &
mp=$!
master=""
while [ -z "$master" ] && kill -0 $mp 2>/dev/null; do
    for p in $(pgrep -f "untangle sweep $TMP/w.yaml"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=0" && master=$p
    done
    sleep 0.1
done
sleep 1
tck=$(getconf CLK_TCK)
c0=$(awk '{print $14 + $15}' "/proc/$master/stat"); w0=$(date +%s.%N)
sleep 4
c1=$(awk '{print $14 + $15}' "/proc/$master/stat"); w1=$(date +%s.%N)
wait $mp
echo "$c0 $c1 $w0 $w1 $tck" | awk '{printf "waiting master: %.1f %% of a core over %.1f s\n", 100 * ($2 - $1) / $5 / ($4 - $3), $4 - $3}'
