"""The task registry: each application of Table 1 declared once.

A :class:`Task` names its kind, classes, metrics (primary first), the simulator generator that
stands in for it, the real-data reader, the head and the figure it feeds. Notebooks loop over
``TASKS`` instead of repeating per-task code. Rows of ``data_manifests/table1_applications.csv``
are joined by the simulator task name (its ``sim_task`` column).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..sim.tasks.fetal import LANDMARK_NAMES
from ..sim.tasks.report import ENTITIES as REPORT_ENTITIES


@dataclass(frozen=True)
class Task:
    name: str                 # simulator task name, also the registry key
    title: str
    kind: str                 # classification | segmentation | detection | landmarks |
    #                           regression | enhancement | report
    dataset: str              # the paper's data set (Table 1)
    classes: tuple[str, ...]
    metrics: tuple[str, ...]  # the first one selects the best epoch and model (maximised, or
    #                           minimised when ``higher_is_better`` says False)
    figure: str               # catalogue label of its box plot
    notebook: str
    higher_is_better: dict = field(default_factory=dict)
    uses_frames: bool = False

    @property
    def primary(self) -> str:
        return self.metrics[0]

    def better(self, metric: str) -> bool:
        return self.higher_is_better.get(metric, True)


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("thyroid_nodule_cine_cls", "Thyroid nodule benign/malignant (cine clips)",
         "classification", "Thyroid Cine-Clip", ("benign", "malignant"),
         ("AUC", "F1", "ACC"), "fig5a_thyroid_cls", "03_classification", uses_frames=True),
    Task("breast_birads", "Breast tumour BI-RADS 2-5", "classification", "BRA-BUS",
         ("BI-RADS 2", "BI-RADS 3", "BI-RADS 4", "BI-RADS 5"), ("ACC", "macro-F1"),
         "fig5b_birads", "03_classification"),
    Task("liver_lesion_ceus", "Focal liver lesion HCC/HEM/FNH (CEUS)", "classification",
         "SYSU-FLL-CEUS", ("HCC", "HEM", "FNH"), ("ACC", "macro-F1"), "fig5c_liver_lesion",
         "03_classification", uses_frames=True),
    Task("thyroid_nodule_seg", "Thyroid nodule segmentation", "segmentation", "DDTI",
         ("background", "nodule"), ("DSC", "NSD"), "fig5d_thyroid_seg", "04_segmentation"),
    Task("vessel_seg", "Artery/vein segmentation", "segmentation", "MusV",
         ("background", "vein", "artery"), ("mDSC", "mNSD"), "fig5e_vessel_seg",
         "04_segmentation"),
    Task("abdomen_organ_seg", "Abdominal multi-organ segmentation", "segmentation", "AbdomenUS",
         ("background", "liver", "kidney", "pancreas", "bladder", "spleen"), ("mDSC", "mNSD"),
         "fig5f_abdomen_seg", "04_segmentation"),
    # mDSC (of the fitted ellipses' masks) selects the model: cheap, unlike COCO AP
    Task("fetal_4ch_detection", "Fetal thorax and heart detection (ellipses)", "detection",
         "FOCUS", ("background", "thorax", "cardiac"), ("mDSC", "box-AP", "mask-AP", "P_CTR"),
         "fig6a_detection", "05_detection"),
    Task("fetal_brain_landmarks", "Fetal brain landmarks (24 points)", "landmarks",
         "BrainBenchmark", tuple(LANDMARK_NAMES), ("MRE", "SDR@2", "SDR@4", "SDR@10", "MSE"),
         "fig6b_landmarks", "06_landmarks",
         higher_is_better={"MRE": False, "MSE": False, "MSE_px2": False, "MRE_mm": False}),
    Task("echo_ef", "Left-ventricular ejection fraction from cine", "regression", "CAMUS",
         ("LVEF",), ("MAE", "RMSE", "R2"), "fig6c_ef_regression", "07_ef_regression",
         higher_is_better={"MAE": False, "RMSE": False}, uses_frames=True),
    # unpaired enhancement: blind metrics only (no model selection; see enhance.py)
    Task("enhancement", "Low-quality image enhancement (unpaired)", "enhancement",
         "USenhance", ("thyroid", "carotid", "breast", "liver", "kidney"),
         ("NIQE", "BRISQUE", "PIQE", "FD"), "fig6d_enhancement", "08_enhancement",
         higher_is_better={"NIQE": False, "BRISQUE": False, "PIQE": False, "FD": False}),
    # BLEU-4 (greedy, validation split) selects the epoch; Table 3's ten metrics
    Task("liver_report", "Liver ultrasound report generation", "report", "USreport",
         tuple(REPORT_ENTITIES), ("BLEU-4", "BLEU-1", "BLEU-2", "BLEU-3", "METEOR", "ROUGE-L",
                                  "ACC", "precision", "recall", "F1"),
         "fig7a_report_metrics", "09_report_generation"),
)}

#: kinds trained by their own loops (GAN, sequence decoder) rather than :func:`finetune`
GENERATIVE_KINDS = ("enhancement", "report")


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; registered: {sorted(TASKS)}")
    return TASKS[name]


def tasks_of(notebook: str) -> list[Task]:
    return [t for t in TASKS.values() if t.notebook == notebook]


def table1_rows() -> pd.DataFrame:
    """Table 1 of the paper (manifest) joined to the registry by simulator task."""
    from ..manifests import load_applications

    apps = load_applications()
    return apps[apps["sim_task"].isin(TASKS)]
