#!/bin/sh
# The default job until the sweep engine lands: one betavae training at 32x32.
set -e
mkdir -p results
OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2} ./bin/untangle train \
    --set model=betavae --set beta=4 --set arch=mlp --set image_size=32 \
    --set steps=3000 --set log_every=250 --json > results/quick_train.json
echo "result: results/quick_train.json"
