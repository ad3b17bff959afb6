"""Training engine: optimisers and schedules, stage loops, checkpoints, precision, evaluation glue."""
