"""Point encoders: pillar feature net and the BEV scatter."""
from v2xdet.models.encoders.pillar_vfe import PillarVFE
from v2xdet.models.encoders.scatter import PointPillarScatter

ENCODERS = {"pillar_vfe": PillarVFE}
SCATTERS = {"point_pillar_scatter": PointPillarScatter}

__all__ = ["ENCODERS", "SCATTERS", "PillarVFE", "PointPillarScatter"]
