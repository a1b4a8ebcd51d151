#!/bin/sh
# SIGKILL of the whole MPI job at random moments, then --resume (6 kills).
exec sh tests/it/kill_resume.sh 6
