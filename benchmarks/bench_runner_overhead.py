"""Runner overhead: our Papermill runner vs plain nbclient on the same notebook.

Peer: ``nbclient.NotebookClient`` (what ``jupyter nbconvert --execute`` uses) executing
``notebooks/00_overview.ipynb`` with the smoke profile. Ours adds parameter injection,
executed-copy writing, failure location and the output snapshot. Target: ratio <= 1.3
(the runner's bookkeeping costs little next to kernel start-up and the notebook itself).
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from echocare_lib.paths import project_root
from echocare_lib.run import execute

REPEATS = 3


def main() -> None:
    root = project_root()
    nb = root / "notebooks" / "00_overview.ipynb"
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ECHOCARE_PROFILE"] = "smoke"
        os.environ["ECHOCARE_OUT_DIR"] = str(Path(tmp) / "peer")
        params = {"profile": "smoke", "seed": 0, "out_dir": str(Path(tmp) / "ours"),
                  "data_dir": None, "device": "cpu"}
        ours, peer = [], []
        for _ in range(REPEATS):
            t = time.perf_counter()
            execute(nb, Path(tmp) / "ours.ipynb", params, progress=False, timeout=None,
                    cwd=nb.parent)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            client = NotebookClient(nbformat.read(nb, 4), kernel_name="python3",
                                    resources={"metadata": {"path": str(nb.parent)}})
            client.execute()
            peer.append(time.perf_counter() - t)
    o, p = statistics.median(ours), statistics.median(peer)
    ratio = o / p
    print(f"00_overview (smoke), median of {REPEATS}: echocare_lib.run {o:.2f} s, "
          f"nbclient {p:.2f} s, ratio {ratio:.2f} (target <= 1.3)")
    out = root / "benchmarks" / "results" / "runner_overhead.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"ours_s": o, "nbclient_s": p, "ratio": ratio,
                               "repeats": REPEATS, "machine": platform.platform(),
                               "cores": os.cpu_count()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
