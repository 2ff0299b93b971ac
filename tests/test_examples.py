import numpy as np

from echocare_lib.examples import PYDICOM_US_FILES, load_pydicom_ultrasound


def test_real_ultrasound_dicoms_load_as_rgb():
    images = load_pydicom_ultrasound()
    assert [im.name for im in images] == [n for n, _ in PYDICOM_US_FILES]
    for im in images:
        assert im.image.dtype == np.uint8 and im.image.ndim == 3 and im.image.shape[2] == 3
        assert im.image.std() > 5  # real content, not a blank frame
    by_name = {im.name: im for im in images}
    assert by_name["color3d_jpeg_baseline.dcm"].n_frames == 120
    assert "G.E." in by_name["US1_UNCR.dcm"].manufacturer
