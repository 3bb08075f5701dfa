"""Sweeps: run, track and report the ablations of transfer_core as Ray Tune + Optuna + MLflow sweeps."""
