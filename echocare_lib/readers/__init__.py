"""Real-data readers for the downstream data sets of the paper's Table 1.

Each reader turns a data set, laid out as its release is downloaded, into samples of the
simulator's schema (:mod:`echocare_lib.sim.render`): ``image`` float32 [1, H, W] in [0, 1] at
the native size, per task ``mask`` uint8 [H, W] / ``label`` + ``label_name`` / ``frames``
float32 [T, 1, H, W], and ``meta`` (dataset, case_id, patient_id, pixel_spacing_mm, split,
source_path, ...). Layouts follow ``shared/DATASETS.md``; each module's docstring says what its
layout rests on. Readers return a :class:`ReadResult` (a list of samples) that accounts for every
input: skipped files/rows are listed in ``.skipped`` with their reason and in one
:class:`ReaderWarning`.

Folder names under the data directory (``read_task(task, data_dir)``; matched ignoring case,
spaces, ``-`` and ``_``; the first name is the one ``data_manifests/table1_applications.csv``
prints):

===========================  ==============================================================
task                         folder under data_dir
===========================  ==============================================================
thyroid_nodule_seg           ``DDTI``
vessel_seg                   ``MusV`` (or ``Mus-V``, ``Multimodal Ultrasound Vascular
                             Segmentation``)
abdomen_organ_seg            ``AbdomenUS`` (import layout: official layout unavailable)
thyroid_nodule_cine_cls      ``Thyroid Cine-Clip`` (or ``ThyroidCineClip``,
                             ``Stanford-AIMI-thyroid-cine``, ``stanford_thyroid``)
breast_birads                ``BRA-BUS`` (or ``BUS-BRA``)
liver_lesion_ceus            ``SYSU-FLL-CEUS`` (import layout: official layout unavailable)
fetal_4ch_detection          ``FOCUS``
echo_ef                      ``CAMUS``
fetal_brain_landmarks        ``BrainBenchmark`` (or ``BrainLandmark``,
                             ``Fetal Brain Landmarks``; import layout: official layout
                             unavailable)
enhancement                  ``USenhance`` (or ``USenhance2023``, ``USenhance 2023``)
liver_report                 ``USreport`` (or ``USData``, ``USData Liver``)
===========================  ==============================================================

The two generative applications' samples follow the simulator's schemas of those tasks:
``enhancement`` gives ``image`` (low quality), ``target`` (high quality, absent for an
unpaired image) and ``organ``, with high-quality images lacking a partner in
``result.targets_only``; ``liver_report`` gives ``image``, ``images`` [2, 1, H, W], ``report``
and ``entities`` (None for the release's Chinese reports).
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from ._common import (DataFormatError, DataNotFoundError, ReaderWarning, ReadResult, Skipped,
                      load_gray, to_gray01)
from .abdomenus import read_abdomenus
from .aimi_thyroid_cine import read_aimi_thyroid_cine
from .brain_landmarks import read_brain_landmarks
from .busbra import read_busbra
from .camus import read_camus
from .ddti import read_ddti
from .focus import read_focus
from .musv import read_musv
from .splits import patient_split
from .sysu_fll_ceus import read_sysu_fll_ceus
from .usenhance import read_usenhance
from .usreport import read_usreport

__all__ = ["READERS", "FOLDERS", "DataNotFoundError", "DataFormatError", "ReaderWarning",
           "ReadResult", "Skipped", "read_task", "dataset_dir", "patient_split", "read_ddti",
           "read_musv", "read_abdomenus", "read_aimi_thyroid_cine", "read_busbra",
           "read_sysu_fll_ceus", "read_focus", "read_camus", "read_brain_landmarks",
           "read_usenhance", "read_usreport",
           "load_gray", "to_gray01"]

#: simulator task name -> reader
READERS = {
    "thyroid_nodule_seg": read_ddti,
    "vessel_seg": read_musv,
    "abdomen_organ_seg": read_abdomenus,
    "thyroid_nodule_cine_cls": read_aimi_thyroid_cine,
    "breast_birads": read_busbra,
    "liver_lesion_ceus": read_sysu_fll_ceus,
    "fetal_4ch_detection": read_focus,
    "echo_ef": read_camus,
    "fetal_brain_landmarks": read_brain_landmarks,
    "enhancement": read_usenhance,
    "liver_report": read_usreport,
}

#: task -> (data set, accepted folder names; the first is the documented one)
FOLDERS = {
    "thyroid_nodule_seg": ("DDTI", ("DDTI",)),
    "vessel_seg": ("Mus-V", ("MusV", "Mus-V", "Multimodal Ultrasound Vascular Segmentation")),
    "abdomen_organ_seg": ("AbdomenUS", ("AbdomenUS",)),
    "thyroid_nodule_cine_cls": ("Stanford AIMI thyroid cine-clip",
                                ("Thyroid Cine-Clip", "ThyroidCineClip",
                                 "Stanford-AIMI-thyroid-cine", "stanford_thyroid")),
    "breast_birads": ("BUS-BRA", ("BRA-BUS", "BUS-BRA")),
    "liver_lesion_ceus": ("SYSU-FLL-CEUS", ("SYSU-FLL-CEUS",)),
    "fetal_4ch_detection": ("FOCUS", ("FOCUS",)),
    "echo_ef": ("CAMUS", ("CAMUS",)),
    "fetal_brain_landmarks": ("BrainBenchmark (fetal brain landmarks)",
                              ("BrainBenchmark", "BrainLandmark", "Fetal Brain Landmarks")),
    "enhancement": ("USenhance 2023", ("USenhance", "USenhance2023", "USenhance 2023")),
    "liver_report": ("USData / USreport (Liver)", ("USreport", "USData", "USData Liver")),
}

#: where each data set comes from, for the error message, when data_manifests/table6_links.csv
#: does not list it (it lists none of these). Sources: the authors' pages/repositories named.
SOURCES = {
    "thyroid_nodule_seg": "DDTI: Pedraza et al., 'An open access thyroid ultrasound image "
                          "database', Proc. SPIE 9287 (2015), Universidad Nacional de Colombia",
    "vessel_seg": "Kaggle data set among22/multimodal-ultrasound-vascular-segmentation (named "
                  "by the authors' repository evelynskip/PADReg)",
    "abdomen_organ_seg": "no public release found (BGI Genomics data; shared/DATASETS.md)",
    "thyroid_nodule_cine_cls": "Stanford AIMI shared data sets portal, 'Thyroid Ultrasound "
                               "Cine-clip' (account needed; files dataset.hdf5 + metadata.csv)",
    "breast_birads": "Zenodo doi:10.5281/zenodo.7730709 (named by the authors' repository "
                     "wgomezf/BUS-BRA)",
    "liver_lesion_ceus": "announced by Sun Yat-sen University (Liang et al., IEEE TMI 2016); "
                         "no public download found",
    "fetal_4ch_detection": "Zenodo doi:10.5281/zenodo.14597550 (FOCUS; named by the authors' "
                           "repository szuboy/FOCUS-dataset)",
    "echo_ef": "CAMUS challenge, CREATIS (Leclerc et al., IEEE TMI 2019): "
               "https://www.creatis.insa-lyon.fr/Challenge/camus/ (account needed; current "
               "release database_nifti/ + database_split/)",
    "fetal_brain_landmarks": "no public release format found (shared/DATASETS.md); "
                             "BrainBenchmark/ holds this project's import layout",
    "enhancement": "USenhance 2023 challenge (MICCAI 2023), "
                   "https://ultrasoundenhance2023.grand-challenge.org/ (training archive: "
                   "train_datasets/<organ>/{low_quality,high_quality}/)",
    "liver_report": "USData, linked from the authors' repository "
                    "LijunRio/Ultrasound-Report-Generation (README, Google Drive file "
                    "11Aw3_ETNBtfT1W7eWifbsaexFqSsM5BB): new_Liver2.json + Liver_report/",
}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _manifest_rows(file: str) -> list[dict]:
    try:
        from ..paths import manifests_dir

        with open(manifests_dir() / file, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except (OSError, ImportError, csv.Error):
        return []


def where_to_get(task: str) -> str:
    """Where the data set of ``task`` can be obtained: the link in
    data_manifests/table6_links.csv if it lists the data set, else the reference DOI of
    table1_applications.csv and the known source."""
    dataset, names = FOLDERS[task]
    keys = {_norm(n) for n in (dataset, *names)}
    for r in _manifest_rows("table6_links.csv"):
        if _norm(r.get("dataset", "")) in keys and r.get("url"):
            return f"{r['url']} (data_manifests/table6_links.csv)"
    parts = ["not listed in data_manifests/table6_links.csv"]
    for r in _manifest_rows("table1_applications.csv"):
        if r.get("sim_task") == task and r.get("reference_url"):
            parts.append(f"paper reference {r['reference_url']} "
                         "(data_manifests/table1_applications.csv)")
    parts.append(SOURCES[task])
    return "; ".join(parts)


def _not_found(task: str, expected: str, why: str) -> DataNotFoundError:
    dataset, names = FOLDERS[task]
    return DataNotFoundError(
        f"{why}\n  data set: {dataset} (task {task!r})\n  expected: {expected}"
        f"{'  (also accepted: ' + ', '.join(names[1:]) + ')' if len(names) > 1 else ''}\n"
        f"  get it from: {where_to_get(task)}\n"
        f"  or use the simulator instead: leave data_dir empty (and ECHOCARE_DATA_DIR unset), "
        f"or call echocare_lib.sim.tasks.generate({task!r}, n, size=...)")


def dataset_dir(task: str, data_dir=None) -> Path:
    """The folder of ``task``'s data set under ``data_dir`` (``$ECHOCARE_DATA_DIR`` when None);
    raises :class:`DataNotFoundError` naming the path expected and where to get the data."""
    if task not in READERS:
        raise KeyError(f"no real-data reader for task {task!r}; readers exist for "
                       f"{sorted(READERS)}")
    from ..paths import resolve_data_dir

    names = FOLDERS[task][1]
    try:
        base = resolve_data_dir(data_dir)
    except FileNotFoundError as exc:
        raise _not_found(task, f"<data_dir>/{names[0]}", str(exc)) from None
    if base is None:
        raise _not_found(task, f"<data_dir>/{names[0]}",
                         "No data directory: pass data_dir or set ECHOCARE_DATA_DIR.")
    wanted = {_norm(n) for n in names}
    hits = sorted(p for p in base.iterdir() if p.is_dir() and _norm(p.name) in wanted)
    if len(hits) > 1:
        raise DataFormatError(f"{FOLDERS[task][0]}: several folders under {base} match: "
                              f"{[h.name for h in hits]}; keep one")
    if not hits:
        raise _not_found(task, str(base / names[0]),
                         f"No {FOLDERS[task][0]} folder under {base}.")
    return hits[0]


def read_task(task: str, data_dir=None, *, limit: int | None = None, **options) -> ReadResult:
    """Read the real data set of simulator task ``task`` from its folder under ``data_dir``
    (see the table above); ``options`` go to the reader (e.g. ``max_frames``, ``strict``)."""
    folder = dataset_dir(task, data_dir)
    return READERS[task](folder, limit=limit, **options)
