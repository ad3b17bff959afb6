#!/usr/bin/env bash
# The synthetic study (README.md beside this file), all on experiment=demo (synthetic world, tiny CLIP):
#   1. baseline vs CLIP-ReID vs SVLL-ReID, STUDY_SEEDS seeds each: one Hydra multirun per arm, so each arm
#      gets one MLflow parent run with a child run per seed; then SVLL-ReID's ablation (each SSL term alone)
#      and the negative-free SimSiam variant, over the same seeds;
#   2. a STUDY_TRIALS-trial Optuna sweep of CLIP-ReID's stage-2 loss weights (conf/hparams_search/
#      clipreid_loss_weights.yaml); it is resumable: re-running this script continues the stored study;
#   3. python -m reid.report: mean ± std of mAP / rank-1 / mINP per arm (named by labels.json) and the paired
#      differences against the baseline, written into README.md and to outputs/synthetic_study/report/, and logged
#      to a run of its own in the experiment (docs/report.md).
# Everything goes to the MLflow experiment STUDY_EXPERIMENT in the project's store (`mlflow ui` in the project root)
# or in STUDY_TRACKING_URI when set.
#
#   experiments/synthetic_study/run.sh                 # the whole study
#   experiments/synthetic_study/run.sh device=cuda     # extra Hydra overrides are passed to every job
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON="${PYTHON:-.venv/bin/python}"
EXPERIMENT="${STUDY_EXPERIMENT:-synthetic_study}"
SEEDS="${STUDY_SEEDS:-1,2,3}"
TRIALS="${STUDY_TRIALS:-20}"
common=(experiment=demo "logger.experiment_name=${EXPERIMENT}")
report=(--experiment "${EXPERIMENT}")
REPORT_DIR="${STUDY_REPORT_DIR:-outputs/synthetic_study/report}"
if [[ -n "${STUDY_TRACKING_URI:-}" ]]; then   # another MLflow store than conf/logger/mlflow.yaml's
  common+=("logger.tracking_uri=${STUDY_TRACKING_URI}")
  report+=(--tracking-uri "${STUDY_TRACKING_URI}")
fi
common+=("$@")

# 1. Three methods x seeds, each arm's method and ssl set explicitly (whatever experiment=demo defaults to).
"$PYTHON" -m reid.train -m "${common[@]}" method=baseline ssl=none "seed=${SEEDS}"
"$PYTHON" -m reid.train -m "${common[@]}" method=clipreid ssl=none "seed=${SEEDS}"
"$PYTHON" -m reid.train -m "${common[@]}" method=clipreid ssl=simclr "seed=${SEEDS}"
"$PYTHON" -m reid.train -m "${common[@]}" method=clipreid ssl=simclr ssl.weight=0 "seed=${SEEDS}"       # language SSL only
"$PYTHON" -m reid.train -m "${common[@]}" method=clipreid ssl=simclr ssl.lang_weight=0 "seed=${SEEDS}"  # vision SSL only
"$PYTHON" -m reid.train -m "${common[@]}" method=clipreid ssl=simsiam "seed=${SEEDS}"

# 2. Loss-weight search for CLIP-ReID (the preset selects method=clipreid; the study lives in outputs/optuna.db).
"$PYTHON" -m reid.train -m "${common[@]}" hparams_search=clipreid_loss_weights "hydra.sweeper.n_trials=${TRIALS}"

# 3. The table: every arm against the baseline, paired by seed (t intervals and a 10,000-resample bootstrap).
"$PYTHON" -m reid.report "${report[@]}" --labels experiments/synthetic_study/labels.json \
  --baseline "Baseline (CLIP fine-tuning)" --bootstrap 10000 \
  --out "${REPORT_DIR}" --log-to new --readme experiments/synthetic_study/README.md
