"""TransFER (Xue, Wang, Guo, ICCV 2021) in pure PyTorch: model, data sets and training engine.

    from transfer_core import ModelConfig, build_model
    model = build_model(ModelConfig())      # the released configuration, 65,217,869 parameters

Never imports ray, optuna, mlflow or click: a researcher who only wants the model gets only torch.
The heavy parts (models, engine) load on first use, so reading a config stays cheap.
"""

from transfer_core.config import (ConfigError, DataConfig, ModelConfig, OptimConfig, TrialConfig,
                                  config_hash, from_flat, to_flat)

_LAZY = {"build_model": "transfer_core.models", "fit": "transfer_core.engine",
         "evaluate": "transfer_core.engine", "History": "transfer_core.engine",
         "load_state": "transfer_core.engine", "save_state": "transfer_core.engine",
         "load_splits": "transfer_core.data"}

__all__ = ["ConfigError", "DataConfig", "ModelConfig", "OptimConfig", "TrialConfig", "config_hash",
           "from_flat", "to_flat", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'transfer_core' has no attribute {name!r}")
