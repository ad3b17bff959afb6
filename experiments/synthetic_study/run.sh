#!/usr/bin/env bash
# The synthetic study (README.md beside this file), all on experiment=demo (synthetic world, tiny CLIP, a validation
# split of a fifth of the training identities, test evaluated once at the end), every run with the camera probe on
# (eval.diagnostics=true: diag/same_camera_false_top10, diag/camera_probe_acc). One command runs it all, in parts:
#   main     STUDY_SEEDS seeds x {baseline, CLIP-ReID, SVLL-ReID, SVLL language half only, vision half only, SimSiam}
#            on the calibrated world (dataset=synthetic; docs/results.md "Calibration"), one Hydra multirun per arm
#            (one MLflow parent per arm, a child run per seed), MLflow experiment STUDY_EXPERIMENT;
#   diagnose SVLL's vision term: the detach control (ssl.detach=true: only the projector learns from it) and
#            same-identity pairs masked out of the NT-Xent denominators (ssl.mask_same_identity=true), same seeds;
#   hard     main + diagnose again on the world before calibration (dataset=synthetic_hard), in the experiment
#            STUDY_EXPERIMENT_hard;
#   dose     dose-response of the vision term: ssl.weight (λ_vis) in {0.05, 0.1, 0.2, 0.4} x stage-2 lr in
#            {3.5e-4 (the demo's), 1e-4}, both SVLL terms on, same seeds, calibrated world;
#   optuna   a STUDY_TRIALS-trial Optuna sweep of CLIP-ReID's stage-2 loss weights selected on val/mAP
#            (conf/hparams_search/clipreid_loss_weights.yaml; resumable: re-running continues the stored study),
#            then the best weights retrained on the fresh seeds STUDY_FRESH_SEEDS (task_name=optuna_retrain) and
#            reported on test;
#   report   the reid.report tool per experiment: mean ± std per arm (named by labels.json), paired differences
#            against the baseline with t and bootstrap intervals; the calibrated world's table goes into README.md,
#            every report's files to STUDY_REPORT_DIR/<experiment>/ and to a run of its own (docs/report.md).
# STUDY_PARTS picks parts (default: all, in the order above); STUDY_ARMS picks arms of main/hard (default all:
# baseline clipreid svll svll_lang svll_vis simsiam). Everything goes to the project's MLflow store (`mlflow ui` in
# the project root) or to STUDY_TRACKING_URI when set.
#
#   experiments/synthetic_study/run.sh                              # the whole study
#   experiments/synthetic_study/run.sh device=cuda                  # extra Hydra overrides reach every job
#   STUDY_PARTS="main report" STUDY_ARMS="baseline clipreid" experiments/synthetic_study/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON="${PYTHON:-.venv/bin/python}"
EXPERIMENT="${STUDY_EXPERIMENT:-synthetic_study}"
SEEDS="${STUDY_SEEDS:-1,2,3}"
FRESH_SEEDS="${STUDY_FRESH_SEEDS:-4,5,6}"
TRIALS="${STUDY_TRIALS:-20}"
PARTS=" ${STUDY_PARTS:-main diagnose hard dose optuna report} "
ARMS=" ${STUDY_ARMS:-baseline clipreid svll svll_lang svll_vis simsiam} "
REPORT_DIR="${STUDY_REPORT_DIR:-outputs/synthetic_study/report}"
common=(experiment=demo eval.diagnostics=true)
report=()
if [[ -n "${STUDY_TRACKING_URI:-}" ]]; then   # another MLflow store than conf/logger/mlflow.yaml's
  common+=("logger.tracking_uri=${STUDY_TRACKING_URI}")
  report+=(--tracking-uri "${STUDY_TRACKING_URI}")
fi
extra=("$@")

part() { [[ "$PARTS" == *" $1 "* ]]; }
train() { "$PYTHON" -m reid.train -m "${common[@]}" "$@" "${extra[@]}"; }

# One arm over the seeds, each arm's method and ssl set explicitly (whatever experiment=demo defaults to).
# $1: arm name (STUDY_ARMS), $2: MLflow experiment, then the arm's overrides (the world's included).
arm() {
  local name=$1 experiment=$2
  shift 2
  if [[ "$ARMS" == *" $name "* ]]; then
    train "logger.experiment_name=${experiment}" "$@" "seed=${SEEDS}"
  fi
}
comparison() {  # $1: experiment, then the world's overrides
  local experiment=$1
  shift
  arm baseline "$experiment" "$@" method=baseline ssl=none
  arm clipreid "$experiment" "$@" method=clipreid ssl=none
  arm svll "$experiment" "$@" method=clipreid ssl=simclr
  arm svll_lang "$experiment" "$@" method=clipreid ssl=simclr ssl.weight=0       # language SSL only
  arm svll_vis "$experiment" "$@" method=clipreid ssl=simclr ssl.lang_weight=0   # vision SSL only
  arm simsiam "$experiment" "$@" method=clipreid ssl=simsiam
}
diagnosis() {  # $1: experiment, then the world's overrides
  local experiment=$1
  shift
  train "logger.experiment_name=${experiment}" "$@" method=clipreid ssl=simclr ssl.detach=true "seed=${SEEDS}"
  train "logger.experiment_name=${experiment}" "$@" method=clipreid ssl=simclr ssl.mask_same_identity=true \
    "seed=${SEEDS}"
}

if part main; then comparison "${EXPERIMENT}" dataset=synthetic; fi
if part diagnose; then diagnosis "${EXPERIMENT}" dataset=synthetic; fi
if part hard; then
  comparison "${EXPERIMENT}_hard" dataset=synthetic_hard
  diagnosis "${EXPERIMENT}_hard" dataset=synthetic_hard
fi
if part dose; then
  train "logger.experiment_name=${EXPERIMENT}_dose" dataset=synthetic method=clipreid ssl=simclr \
    ssl.weight=0.05,0.1,0.2,0.4 method.stage2.optimizer.lr=3.5e-4,1e-4 "seed=${SEEDS}"
fi
if part optuna; then
  # Selected on val/mAP (the preset's objective), then the best weights retrained on fresh seeds, reported on test.
  train "logger.experiment_name=${EXPERIMENT}_optuna" dataset=synthetic hparams_search=clipreid_loss_weights \
    "hydra.sweeper.n_trials=${TRIALS}"
  best=$("$PYTHON" - "${extra[@]}" <<'EOF'
import sys

import optuna
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from pathlib import Path

with initialize_config_dir(config_dir=str(Path("conf").absolute())):
    cfg = compose("train", return_hydra_config=True, overrides=[
        "experiment=demo", "dataset=synthetic", "hparams_search=clipreid_loss_weights",
        *[o for o in sys.argv[1:] if "=" in o]])
HydraConfig.instance().set_config(cfg)
sweeper = OmegaConf.to_container(cfg.hydra.sweeper, resolve=True)
study = optuna.load_study(study_name=sweeper["study_name"], storage=sweeper["storage"])
print(" ".join(f"{k}={v}" for k, v in sorted(study.best_params.items())))
EOF
)
  echo "Optuna's best weights on val/mAP: ${best}; retrained on seeds ${FRESH_SEEDS}"
  # shellcheck disable=SC2086  # the best parameters are separate key=value overrides
  "$PYTHON" -m reid.train -m "${common[@]}" "logger.experiment_name=${EXPERIMENT}_optuna" dataset=synthetic \
    method=clipreid ssl=none task_name=optuna_retrain ${best} "seed=${FRESH_SEEDS}" "${extra[@]}"
fi

if part report; then
  # Every arm against the baseline, paired by seed (t intervals and a 10,000-resample bootstrap); the calibrated
  # world's table goes into README.md. A part not run leaves its experiment empty: that report says so and goes on.
  list=mAP,rank1,mINP,diag/same_camera_false_top10,diag/camera_probe_acc
  metrics=(--metrics "$list" --bootstrap 10000)
  "$PYTHON" -m reid.report "${report[@]}" --experiment "${EXPERIMENT}" --labels experiments/synthetic_study/labels.json \
    --baseline "Baseline (CLIP fine-tuning)" "${metrics[@]}" --out "${REPORT_DIR}/${EXPERIMENT}" --log-to new \
    --readme experiments/synthetic_study/README.md
  "$PYTHON" -m reid.report "${report[@]}" --experiment "${EXPERIMENT}_hard" \
    --labels experiments/synthetic_study/labels.json --baseline "Baseline (CLIP fine-tuning)" "${metrics[@]}" \
    --out "${REPORT_DIR}/${EXPERIMENT}_hard" --log-to new || echo "no report for ${EXPERIMENT}_hard"
  "$PYTHON" -m reid.report "${report[@]}" --experiment "${EXPERIMENT}_dose" \
    --labels experiments/synthetic_study/labels.json --baseline "SVLL-ReID, λ_vis 0.05, lr 3.5e-4" "${metrics[@]}" \
    --out "${REPORT_DIR}/${EXPERIMENT}_dose" --log-to new || echo "no report for ${EXPERIMENT}_dose"
  "$PYTHON" -m reid.report "${report[@]}" --experiment "${EXPERIMENT}_optuna" \
    --labels experiments/synthetic_study/labels.json --metrics "$list,val/mAP" --bootstrap 10000 \
    --out "${REPORT_DIR}/${EXPERIMENT}_optuna" --log-to new || echo "no report for ${EXPERIMENT}_optuna"
fi
