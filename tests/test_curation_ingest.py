"""Curation step 1 (ingest): hostile archives and files are rejected with their reason,
nothing is written anywhere, cines and videos are sampled every 10th frame, and every input
file is accounted for."""
import io
import os
import pickle
import struct
import tarfile
import uuid
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from echocare_lib.curation import Limits, ingest_file, ingest_paths, walk_inputs
from echocare_lib.curation.ingest import RAR_MISSING


# ----------------------------------------------------------------------------- helpers
def png_bytes(size=(48, 40), seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def snapshot(*roots: Path) -> dict:
    """Every path under the roots with its size and modification time."""
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                st = os.lstat(p)
                out[p] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def no_writes(tmp_path, monkeypatch):
    """Fail the test if anything appears or changes around tmp_path, in the working
    directory or in /tmp while ingest runs (ingest must write nothing at all)."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # '../' entries would resolve against it
    watched = [tmp_path.parent]  # this session's pytest folders; /tmp is checked by name
    state = {}

    def before():
        state["snap"] = {p: v for p, v in snapshot(*watched).items()}
        state["tmp_top"] = set(os.listdir("/tmp")) if Path("/tmp").is_dir() else set()

    def check():
        after = snapshot(*watched)
        ours = str(tmp_path)
        new = {p for p in set(after) - set(state["snap"]) if p.startswith(ours)}
        changed = {p for p in set(after) & set(state["snap"])
                   if p.startswith(ours) and after[p] != state["snap"][p]}
        assert not new and not changed, f"ingest wrote to disk: {sorted(new | changed)}"
        assert not list(work.iterdir()), "something landed in the working directory"
        if state["tmp_top"]:
            born = {n for n in set(os.listdir("/tmp")) - state["tmp_top"]
                    if n.startswith("echocare-evil")}
            assert not born, f"an archive member escaped to /tmp: {born}"

    return inputs, before, check


def reasons(items):
    return {it.source_path.rsplit("!", 1)[-1]: it.reason for it in items}


# ----------------------------------------------------------------------------- archives
def test_malicious_zip_members_are_rejected_and_nothing_is_written(no_writes):
    inputs, before, check = no_writes
    evil_abs = f"/tmp/echocare-evil-{uuid.uuid4().hex}.png"
    zpath = inputs / "evil.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("../../echocare-evil-traversal.png", png_bytes())
        zf.writestr("good/../../echocare-evil-mid.png", png_bytes())
        zf.writestr(zipfile.ZipInfo(evil_abs), png_bytes())
        zf.writestr("C:/echocare-evil-drive.png", png_bytes())
        link = zipfile.ZipInfo("link.png")
        link.create_system = 3  # unix: external attributes hold the file type
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
        zf.writestr("ok/fine.png", png_bytes())
    before()
    items = ingest_file(zpath)
    check()
    r = reasons(items)
    assert "path traversal" in r["../../echocare-evil-traversal.png"]
    assert "path traversal" in r["good/../../echocare-evil-mid.png"]
    assert "absolute path" in r[evil_abs]
    assert "drive-letter" in r["C:/echocare-evil-drive.png"]
    assert "symbolic link" in r["link.png"]
    kept = [it for it in items if it.kept]
    assert [it.source_path for it in kept] == [f"{zpath}!ok/fine.png"]
    assert kept[0].image.shape == (40, 48, 3) and kept[0].image.dtype == np.uint8
    assert not Path(evil_abs).exists()
    assert all(it.status == "rejected" and it.image is None and it.reason
               for it in items if not it.kept)


def tar_with_hazards(path: Path, mode: str, evil_abs: str):
    data = png_bytes()
    with tarfile.open(path, mode) as tf:
        def add(name, payload=None, **attrs):
            ti = tarfile.TarInfo(name)
            for k, v in attrs.items():
                setattr(ti, k, v)
            if payload is not None:
                ti.size = len(payload)
            tf.addfile(ti, io.BytesIO(payload) if payload is not None else None)
        add("ok/fine.png", data)
        add("../echocare-evil-traversal.png", data)
        add(evil_abs, data)
        add("sym.png", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        add("hard.png", type=tarfile.LNKTYPE, linkname="ok/fine.png")
        add("dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
        add("fifo", type=tarfile.FIFOTYPE)


@pytest.mark.parametrize("suffix,mode", [(".tar", "w"), (".tar.gz", "w:gz")])
def test_tar_links_devices_and_traversal_are_rejected(no_writes, suffix, mode):
    inputs, before, check = no_writes
    evil_abs = f"/tmp/echocare-evil-{uuid.uuid4().hex}.png"
    tpath = inputs / f"evil{suffix}"
    tar_with_hazards(tpath, mode, evil_abs)
    before()
    items = ingest_file(tpath)
    check()
    r = reasons(items)
    assert "symbolic link" in r["sym.png"] and "/etc/passwd" in r["sym.png"]
    assert "hard link" in r["hard.png"]
    assert "device or FIFO" in r["dev"] and "device or FIFO" in r["fifo"]
    assert "path traversal" in r["../echocare-evil-traversal.png"]
    assert "absolute path" in r[evil_abs]
    assert [it.source_path for it in items if it.kept] == [f"{tpath}!ok/fine.png"]


def test_zip_bomb_by_compression_ratio(no_writes):
    inputs, before, check = no_writes
    zpath = inputs / "bomb.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.png", b"\0" * (24 << 20))  # 24 MB -> about 24 kB
        zf.writestr("fine.png", png_bytes())
    before()
    items = ingest_file(zpath)
    check()
    r = reasons(items)
    assert "zip bomb: compression ratio" in r["zeros.png"]
    assert r["fine.png"] == ""


def test_zip_bomb_by_declared_total_size_and_member_count(no_writes):
    inputs, before, check = no_writes
    zpath = inputs / "big.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(12):
            zf.writestr(f"part{i}.png", b"\0" * (1 << 20))
    before()
    by_size = ingest_file(zpath, Limits(max_total_uncompressed_bytes=8 << 20))
    by_count = ingest_file(zpath, Limits(max_archive_members=10))
    check()
    assert len(by_size) == 1 and "declares" in by_size[0].reason and "zip bomb" in by_size[0].reason
    assert len(by_count) == 1 and "12 members" in by_count[0].reason


def _patch_zip_sizes(raw: bytes, name: bytes, new_size: int) -> bytes:
    """Make the local and central headers of ``name`` under-state its uncompressed size."""
    b = bytearray(raw)
    i = b.find(b"PK\x03\x04")
    while i >= 0:
        n, m = struct.unpack_from("<HH", b, i + 26)
        if bytes(b[i + 30:i + 30 + n]) == name:
            struct.pack_into("<I", b, i + 22, new_size)
        i = b.find(b"PK\x03\x04", i + 4)
    j = b.find(b"PK\x01\x02")
    while j >= 0:
        n = struct.unpack_from("<H", b, j + 28)[0]
        if bytes(b[j + 46:j + 46 + n]) == name:
            struct.pack_into("<I", b, j + 24, new_size)
        j = b.find(b"PK\x01\x02", j + 4)
    return bytes(b)


def test_lying_zip_header_cannot_expand_past_its_declared_size(no_writes):
    inputs, before, check = no_writes
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("liar.png", b"\0" * (8 << 20))
    zpath = inputs / "liar.zip"
    zpath.write_bytes(_patch_zip_sizes(buf.getvalue(), b"liar.png", 1000))
    before()
    items = ingest_file(zpath)
    check()
    assert len(items) == 1 and items[0].status == "rejected"
    assert items[0].source_path.endswith("!liar.png")
    assert items[0].reason  # the bounded read stops it (CRC / size mismatch)


def test_tar_gz_bomb_stops_at_the_header(no_writes):
    inputs, before, check = no_writes
    tpath = inputs / "bomb.tar.gz"
    with tarfile.open(tpath, "w:gz") as tf:
        ti = tarfile.TarInfo("zeros.png")
        ti.size = 16 << 20
        tf.addfile(ti, io.BytesIO(b"\0" * ti.size))
        ti2 = tarfile.TarInfo("after.png")
        data = png_bytes()
        ti2.size = len(data)
        tf.addfile(ti2, io.BytesIO(data))
    before()
    items = ingest_file(tpath, Limits(max_total_uncompressed_bytes=4 << 20))
    check()
    assert any("zip bomb" in it.reason and it.source_path.endswith("!zeros.png") for it in items)
    assert any("reading stopped" in it.reason for it in items)
    assert not any(it.kept for it in items)


def test_nested_archives_one_level_only(no_writes):
    inputs, before, check = no_writes

    def zip_of(entries):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for n, d in entries:
                zf.writestr(n, d)
        return buf.getvalue()

    inner = zip_of([("a.png", png_bytes())])
    middle = zip_of([("inner.zip", inner)])
    zpath = inputs / "outer.zip"
    zpath.write_bytes(zip_of([("inner.zip", inner), ("middle.zip", middle)]))
    before()
    items = ingest_file(zpath)
    check()
    kept = [it.source_path for it in items if it.kept]
    assert kept == [f"{zpath}!inner.zip!a.png"]
    deep = [it for it in items if it.source_path == f"{zpath}!middle.zip!inner.zip"]
    assert len(deep) == 1 and "nested archive deeper than one level" in deep[0].reason


def test_rar_without_backend_is_rejected_with_install_hint(tmp_path):
    try:
        import rarfile  # noqa: F401
        pytest.skip("rarfile is installed here")
    except ImportError:
        pass
    p = tmp_path / "data.rar"
    p.write_bytes(b"Rar!\x1a\x07\x01\x00" + b"\0" * 64)
    items = ingest_file(p)
    assert len(items) == 1 and items[0].reason == RAR_MISSING


# ----------------------------------------------------------------------------- single files
def test_bad_single_files_are_rejected_with_their_reason(no_writes):
    inputs, before, check = no_writes
    good = png_bytes((64, 64))
    (inputs / "truncated.png").write_bytes(good[: len(good) // 3])
    (inputs / "empty.png").write_bytes(b"")
    (inputs / "notes.png").write_text("this is a text file, not an image\n")
    (inputs / "data.xyz").write_bytes(b"\x00\x01\x02 mystery")
    (inputs / "ok.png").write_bytes(good)
    before()
    items = ingest_paths(walk_inputs(inputs), root=inputs)
    check()
    r = {Path(it.source_path).name: it for it in items}
    assert set(r) == {"truncated.png", "empty.png", "notes.png", "data.xyz", "ok.png"}
    assert "truncated" in r["truncated.png"].reason
    assert r["empty.png"].reason == "empty file (0 bytes)"
    assert r["notes.png"].reason.startswith("not an image:")
    assert r["data.xyz"].reason.startswith("unsupported format:")
    assert r["ok.png"].kept and r["ok.png"].format == "png"


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares huge dimensions (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_png_rejected_before_decoding(no_writes):
    inputs, before, check = no_writes
    (inputs / "bomb.png").write_bytes(_png_header_only(100_000, 100_000))
    (inputs / "moderate.png").write_bytes(_png_header_only(9_000, 8_000))  # 72 MP > 50 MP
    before()
    huge = ingest_file(inputs / "bomb.png")
    moderate = ingest_file(inputs / "moderate.png")
    small_limit = ingest_file(inputs / "moderate.png", Limits(max_pixels=1_000))
    check()
    assert huge[0].status == "rejected" and "decompression bomb" in huge[0].reason
    assert "decompression bomb" in moderate[0].reason and "72.0 MP" in moderate[0].reason
    assert "Limits.max_pixels" in small_limit[0].reason


def test_symlink_leaving_the_root_is_rejected_not_followed(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    outside = tmp_path / "outside.png"
    outside.write_bytes(png_bytes())
    (root / "sub" / "inside.png").write_bytes(png_bytes(seed=1))
    os.symlink(outside, root / "escape.png")
    os.symlink(root / "sub" / "inside.png", root / "alias.png")
    os.symlink(tmp_path, root / "loop")  # a folder link: listed, never walked
    paths = walk_inputs(root)
    assert paths == sorted(paths)
    assert str(root / "escape.png") in paths and str(root / "loop") in paths
    assert not any("outside.png" in p for p in paths)
    items = {Path(it.source_path).name: it for it in ingest_paths(paths, root=root)}
    assert "outside the input root" in items["escape.png"].reason
    assert items["alias.png"].kept and items["inside.png"].kept
    assert "not followed" in items["loop"].reason


# ----------------------------------------------------------------------------- DICOM, video
def test_multiframe_dicom_is_sampled_every_10th_frame():
    from pydicom.data import get_testdata_file

    items = ingest_file(get_testdata_file("color3d_jpeg_baseline.dcm"))
    assert [it.frame for it in items] == list(range(0, 120, 10))
    assert all(it.kept and it.image.shape == (480, 640, 3) for it in items)
    meta = items[0].meta
    assert meta["NumberOfFrames"] == 120 and meta["Manufacturer"] == "SonoSite, Inc."
    assert "PatientName" not in meta and "InstitutionName" not in meta
    assert len(pickle.dumps(items)) > 0  # plain data: Dask can ship it


def test_palette_colour_dicom_becomes_rgb_uint8():
    from pydicom.data import get_testdata_file

    (item,) = ingest_file(get_testdata_file("gdcm-US-ALOKA-16.dcm"))
    assert item.kept and item.image.dtype == np.uint8 and item.image.shape == (480, 640, 3)
    assert item.image.max() > 200  # 16-bit palette scaled, not clipped to black


def test_jpeg_lossless_dicom_without_plugin_names_the_fix():
    import pydicom
    from pydicom.data import get_testdata_file

    path = get_testdata_file("JPGLosslessP14SV1_1s_1f_8b.dcm")
    try:
        pydicom.dcmread(path).pixel_array
        decodable = True
    except Exception:
        decodable = False
    (item,) = ingest_file(path)
    if decodable:
        assert item.kept
    else:
        assert item.status == "rejected" and "pylibjpeg" in item.reason


def test_mp4_is_sampled_every_10th_frame(tmp_path):
    import imageio.v2 as iio

    path = tmp_path / "clip.mp4"
    frames = [np.full((64, 80, 3), 8 * i, np.uint8) for i in range(25)]
    iio.mimwrite(path, frames, fps=10, codec="libx264", macro_block_size=16)
    items = ingest_file(path)
    assert [it.frame for it in items] == [0, 10, 20]
    assert all(it.kept and it.format == "mp4" and it.image.shape == (64, 80, 3) for it in items)
    assert abs(int(items[1].image.mean()) - 80) <= 6  # frame 10, not frame 1
    assert items[0].meta["frames_total"] == 25


# ----------------------------------------------------------------------------- accounting
def test_every_file_of_the_simulated_corpus_is_accounted_for(tmp_path):
    import pandas as pd

    from echocare_lib.sim.corpus import write_corpus

    root = tmp_path / "corpus"
    write_corpus(root, n_sources=6, images_per_source=3, size=48, seed=0, progress=False)
    truth = pd.read_csv(root / "truth.csv", keep_default_na=False)
    before = snapshot(root)
    paths = walk_inputs(root)
    items = ingest_paths(paths, root=root)
    assert snapshot(root) == before
    sources = {it.source_path.split("!")[0] for it in items}
    assert sources == set(paths)
    seen = {os.path.relpath(it.source_path, root) for it in items}
    assert set(truth["path"]) <= seen  # archive members included
    by_path = {os.path.relpath(it.source_path, root): it for it in items}
    for _, row in truth.iterrows():
        it = by_path[row["path"]]
        assert it.kept == (row["kind"] != "corrupt"), (row["path"], it.reason)
