"""The TransFER model layer: stems, LANets + dropping variants, the MSAD encoder, the assembly.

    from transfer_core.models import build_model
    model = build_model(ModelConfig())          # the released configuration, 65.22 M parameters
"""

from transfer_core.models.checkpoint import CheckpointError, LoadReport, load_ir50_checkpoint, load_vit_checkpoint
from transfer_core.models.dropping import DROPPING
from transfer_core.models.stems import STEMS
from transfer_core.models.transfer import TransFER, build_model, check_pretrained, trained_model

__all__ = ["build_model", "check_pretrained", "trained_model", "TransFER", "STEMS", "DROPPING", "load_ir50_checkpoint",
           "load_vit_checkpoint", "CheckpointError", "LoadReport"]
