"""EchoAtlas curation (paper section 2): one plain function per step, each usable on one file.

Steps 1-3 live here; every function is top-level and takes and returns plain data, so the
pipeline can map it over a Dask collection unchanged::

    from echocare_lib.curation import ingest_file, find_fov, crop_to_fov, quality_check
    for item in ingest_file("raw/study.zip"):    # 1. ingest: kept, or rejected with a reason
        if item.kept:
            fov = find_fov(item.image)           # 2. de-identify the pixels (crop to the FOV)
            ok, reason, flags = quality_check(crop_to_fov(item.image, fov))   # 3. QC
"""
from .deid import (EMPTY_TAGS, REMOVE_TAGS, UID_TAGS, Fov, background_level, crop_to_fov,
                   deidentify_dicom, find_fov)
from .ingest import Item, Limits, ingest_file, ingest_paths, sniff_format, walk_inputs
from .qc import MIN_VALID_PIXELS, quality_check

__all__ = [
    "Limits", "Item", "ingest_file", "ingest_paths", "walk_inputs", "sniff_format",
    "deidentify_dicom", "REMOVE_TAGS", "EMPTY_TAGS", "UID_TAGS", "Fov", "find_fov",
    "crop_to_fov", "background_level", "quality_check", "MIN_VALID_PIXELS",
]
