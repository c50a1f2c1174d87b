"""Models: pillar encoder, BEV backbone, fusion, anchor head, assembled by ``build_detector``."""
from v2xdet.models.backbones import BACKBONES
from v2xdet.models.detector import MODEL_FUSION, Detector, build_detector, regroup
from v2xdet.models.encoders import ENCODERS, SCATTERS
from v2xdet.models.heads import HEADS

__all__ = ["BACKBONES", "ENCODERS", "HEADS", "MODEL_FUSION", "SCATTERS", "Detector", "build_detector",
           "regroup"]
