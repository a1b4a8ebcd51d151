#!/bin/sh
# SIGKILL of the whole MPI job at random moments, then --resume (6 kills, a
# sweep of 12 runs).
exec sh tests/it/kill_resume.sh 6 3
