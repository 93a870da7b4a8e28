#!/usr/bin/env bash
# One search worker per array task, one GPU each, all on one study in PostgreSQL.
#
# Once, from the login node (creates the study and its settings, runs no trial; `--for gpu` records
# the preset's full study although the login node has no GPU, and is the default with --workers 0):
#   python -m search run cnn --study cnn-big --trials 400 --workers 0 --for gpu \
#       --data /shared/gic --storage "$STORAGE"
# Then (SLURM does not create the folder --output names; without it the tasks fail at once):
#   mkdir -p logs
#   STORAGE=postgresql://optuna:PASSWORD@db-host:5432/optuna sbatch --export=ALL deploy/slurm-array.sh
#
# The data folder must be at the same path on every node (a shared file system). A task that hits
# its time limit or is preempted gets SIGTERM (--signal): its trial is failed and queued again, and
# the next task runs it. A task killed outright (node failure) stops beating; after 3 heartbeats
# another worker fails that trial and queues it again. Workers exit when the study has its trials.
#SBATCH --job-name=gic-search
#SBATCH --array=0-7
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=4
#SBATCH --mem=32G
#SBATCH --time=12:00:00
#SBATCH --signal=B:TERM@120
#SBATCH --output=logs/%x-%A_%a.out
set -euo pipefail
: "${STORAGE:?set STORAGE to the study's PostgreSQL URL}"
STUDY=${STUDY:-cnn-big}
cd "${SLURM_SUBMIT_DIR:-.}"
# SLURM already sets CUDA_VISIBLE_DEVICES to the task's one GPU. `exec` makes the worker the
# process SLURM signals, so SIGTERM reaches Python and the clean stop runs.
exec .venv/bin/python -m search worker --study "$STUDY" --storage "$STORAGE" --device cuda --no-progress
