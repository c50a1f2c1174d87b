"""AP at BEV IoU thresholds as OpenCOOD computes it (and with a global re-sort), range-wise AP,
``eval.yaml`` and tables."""
from v2xdet.evaluation.accumulator import DEFAULT_IOU_THRESHOLDS, DEFAULT_RANGES, EvalAccumulator
from v2xdet.evaluation.ap import APResult, average_precision, voc_ap
from v2xdet.evaluation.matching import match_frame
from v2xdet.evaluation.report import format_table, summary_to_eval_dict, write_eval_yaml

__all__ = [
    "APResult", "DEFAULT_IOU_THRESHOLDS", "DEFAULT_RANGES", "EvalAccumulator", "average_precision",
    "format_table", "match_frame", "summary_to_eval_dict", "voc_ap", "write_eval_yaml",
]
