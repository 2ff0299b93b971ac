"""SYSU-FLL-CEUS import layout (official layout unavailable): labels.csv + clips/."""
import numpy as np
import pytest

import echocare_lib.readers.sysu_fll_ceus as mod
from echocare_lib.readers import DataFormatError, ReaderWarning, read_sysu_fll_ceus
from fixtures_readers import write_sysu


def test_sysu_frame_folders(tmp_path):
    write_sysu(tmp_path)
    with pytest.warns(ReaderWarning) as rec:
        out = read_sysu_fll_ceus(tmp_path, max_frames=4)
    assert [s["meta"]["case_id"] for s in out] == ["c1", "c3"]
    assert [(s["label"], s["label_name"]) for s in out] == [(0, "HCC"), (2, "FNH")]
    c1, c3 = out
    assert c1["frames"].dtype == np.float32 and c1["frames"].shape == (4, 1, 8, 12)
    assert c1["image"].shape == (1, 8, 12) and np.array_equal(c1["image"], c1["frames"][2])
    assert c1["meta"]["n_frames_total"] == 5 and c1["meta"]["split"] == "train"
    assert c1["meta"]["patient_id"] == "p1" and c3["meta"]["split"] is None
    # frames are taken in numeric name order (0, 1, 2, ..., 10, 11): first and last kept
    first = np.random.default_rng(100).integers(0, 256, (6, 6), dtype=np.uint8) / 255
    last = np.random.default_rng(111).integers(0, 256, (6, 6), dtype=np.uint8) / 255
    np.testing.assert_allclose(c3["frames"][0, 0], first, atol=1e-6)
    np.testing.assert_allclose(c3["frames"][-1, 0], last, atol=1e-6)
    reasons = {sk.item: sk.reason for sk in out.skipped}
    assert "frames differ in size" in reasons["labels.csv#line 3"]
    assert "no clips/c4/ folder" in reasons["labels.csv#line 5"]
    assert "no row of labels.csv" in reasons["clips/c9"] and "clips/c2" in reasons
    assert all(v == "used" or v.startswith("skipped") for v in out.inputs.values())
    assert "c9" in str(rec[0].message)


def test_sysu_video_clip(tmp_path):
    iio = pytest.importorskip("imageio.v2")
    pytest.importorskip("imageio_ffmpeg")
    (tmp_path / "clips").mkdir()
    frames = [np.full((32, 48, 3), 20 * t, np.uint8) for t in range(10)]
    iio.mimwrite(tmp_path / "clips" / "v1.mp4", frames, fps=5, macro_block_size=16)
    (tmp_path / "labels.csv").write_text("case_id,label\nv1,HEM\n")
    out = read_sysu_fll_ceus(tmp_path, max_frames=3)
    s = out[0]
    assert s["frames"].shape == (3, 1, 32, 48) and s["label_name"] == "HEM"
    assert s["meta"]["n_frames_total"] == 10 and s["meta"]["patient_id"] == "v1"
    assert "case_id" in s["meta"]["patient_id_source"]
    assert s["frames"][0].mean() < 0.05 < s["frames"][-1].mean()  # dark first, bright last


def test_sysu_docs_and_errors(tmp_path):
    assert "official release's layout was not available" in mod.__doc__
    with pytest.raises(DataFormatError, match="labels.csv not found.*import layout"):
        read_sysu_fll_ceus(tmp_path)
    (tmp_path / "labels.csv").write_text("case_id,label\nc1,angiosarcoma\n")
    with pytest.raises(DataFormatError, match="'angiosarcoma' is not one of HCC, HEM, FNH"):
        read_sysu_fll_ceus(tmp_path, strict=True)
    with pytest.raises(ValueError, match="max_frames"):
        read_sysu_fll_ceus(tmp_path, max_frames=0)
