"""Run the compendium's notebooks headlessly with Papermill: ``python -m echocare_lib.run``.

Each notebook ``notebooks/NN_name.ipynb`` runs in order on a fresh ``python3`` kernel with
the profile, seed, output folder, data folder and device injected as Papermill parameters.
Executed copies are kept under ``build/<profile>/notebooks/``; a summary (notebook, status,
seconds, outputs written) is printed and saved as ``build/<profile>/run_summary.csv``.
On failure the runner exits non-zero naming the notebook, the failing cell and its error.
New notebooks are discovered by their ``NN_`` prefix: adding one needs no change here.

``--jobs N`` runs independent notebooks side by side. Notebooks run in *stages*
(:data:`STAGES`): a stage starts when every notebook of the previous one has finished, and the
notebooks of one stage share nothing they write (each application's cached trial rows
belong to one notebook; the figure index is updated under a file lock). A parallel stage
gives each kernel ``cores // workers`` threads (``OMP_NUM_THREADS``), so the split is the same
on every run with the same ``--jobs``. The gain is modest: on two cores one segmentation
task's trials ran 1.4 times faster as two one-thread processes, but whole notebooks ran about
twice as slowly on one thread, so the `cpu` downstream stage gains little (see the README's
run-time table).
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import re
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from .paths import build_dir, notebooks_dir, resolve_data_dir, resolve_out_dir
from .profiles import get_profile, profile_names

KERNEL = "python3"
NOTEBOOK_RE = re.compile(r"^(\d{2})_[A-Za-z0-9_]+\.ipynb$")
#: Notebook numbers that may run side by side; stages run in this order. 00 and 01 need
#: nothing; 02 pretrains on 01's curated index; 03-09 load 02's checkpoints and each owns its
#: applications; 10 reuses 03-09's trial rows (and appends to their stores); 11 reads every
#: summary. A notebook number not listed here runs alone, after the stages before it.
STAGES: tuple[tuple[str, ...], ...] = (
    ("00", "01"), ("02",), ("03", "04", "05", "06", "07", "08", "09"), ("10",), ("11",))


class NotebookFailed(RuntimeError):
    """A notebook raised, timed out or lost its kernel; the message says where and why."""


@dataclass
class Result:
    notebook: str
    status: str
    seconds: float
    outputs: int
    output_labels: str
    error: str = ""
    #: threads per kernel when the notebook ran beside others (None: the default)
    threads: int | None = None


def discover(nb_dir: Path) -> list[Path]:
    """Notebooks named ``NN_name.ipynb`` in run order."""
    if not nb_dir.is_dir():
        raise FileNotFoundError(f"Notebook folder {str(nb_dir)!r} does not exist.")
    return sorted(p for p in nb_dir.iterdir() if NOTEBOOK_RE.match(p.name))


def _match(selector: str, notebooks: list[Path]) -> Path:
    sel = Path(selector.strip()).name.removesuffix(".ipynb")
    hits = [p for p in notebooks if p.stem == sel or p.stem.split("_", 1)[0] == sel
            or (len(sel) == 1 and sel.isdigit() and p.stem.startswith(f"0{sel}_"))]
    if len(hits) != 1:
        names = ", ".join(p.stem for p in notebooks)
        what = "matches no notebook" if not hits else f"is ambiguous ({len(hits)} matches)"
        raise SystemExit(f"error: notebook selector {selector!r} {what}. Known: {names}")
    return hits[0]


def select(everything: list[Path], only: list[str] | None, start: str | None) -> list[Path]:
    """Apply ``--only`` (a subset) and ``--from`` (a starting point) to the discovered list."""
    notebooks = list(everything)
    if only:
        wanted = {_match(s, everything) for item in only for s in item.split(",") if s.strip()}
        notebooks = [p for p in notebooks if p in wanted]
    if start:
        first = _match(start, everything)
        notebooks = [p for p in notebooks if p.name >= first.name]
    return notebooks


def stages(notebooks: list[Path]) -> list[list[Path]]:
    """The selected notebooks grouped into :data:`STAGES` (run order kept; a notebook whose
    number no stage lists forms a stage of its own)."""
    where = {num: i for i, group in enumerate(STAGES) for num in group}
    out: list[list[Path]] = []
    keys: list = []
    for nb in notebooks:
        num = nb.stem.split("_", 1)[0]
        key = where.get(num, ("alone", num))
        if keys and keys[-1] == key and isinstance(key, int):
            out[-1].append(nb)
        else:
            out.append([nb])
            keys.append(key)
    return out


#: Wall seconds of each notebook in a cold `cpu` run with ``--jobs 2`` on 2 cores (2026-11-29);
#: the order a stage starts its notebooks in (longest first) when this build folder has no
#: earlier run summary to go by
TYPICAL_SECONDS = {"00": 38, "01": 79, "02": 312, "03": 133, "04": 429, "05": 152, "06": 171,
                   "07": 78, "08": 361, "09": 684, "10": 335, "11": 23}


def _expected_seconds(run_dir: Path, notebooks: list[Path]) -> dict[str, float]:
    """Each notebook's wall time in the last run of this profile, else its typical time (for
    longest-first scheduling within a stage)."""
    out = {nb.stem: float(TYPICAL_SECONDS.get(nb.stem.split("_", 1)[0], 0)) for nb in notebooks}
    try:
        import pandas as pd

        df = pd.read_csv(run_dir / "run_summary.csv")
        out.update(dict(zip(df.notebook, df.seconds.astype(float))))
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    return out


def _written_labels(out_dir: Path, notebook: str, since: float) -> list[str]:
    """Labels the figure index attributes to ``notebook`` whose files changed after ``since``
    (read from the index, not from a folder listing, so that notebooks running side by side
    are told apart)."""
    from .figures import read_index

    idx = read_index(out_dir)
    labels = []
    for _, row in idx[idx["notebook"] == notebook].iterrows():
        files = [out_dir / f for f in str(row["files"]).split(";") if f]
        if any(f.is_file() and f.stat().st_mtime >= since for f in files):
            labels.append(row["label"])
    return sorted(labels)


def _failing_cell(executed: Path, source_nb: Path) -> tuple[int | None, str]:
    """Locate the failing cell: its 1-based position among the source notebook's cells."""
    import nbformat

    try:
        nb = nbformat.read(executed, as_version=4)
        src = nbformat.read(source_nb, as_version=4)
    except Exception:
        return None, ""
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("papermill", {})
        if meta.get("exception") or meta.get("status") == "running":
            ids = [c.get("id") for c in src.cells]
            if cell.get("id") in ids:
                return ids.index(cell.get("id")) + 1, cell.source
            sources = [c.source for c in src.cells]
            if cell.source in sources:
                return sources.index(cell.source) + 1, cell.source
            return None, cell.source
    return None, ""


def _describe_failure(nb: Path, executed: Path, exc: BaseException) -> str:
    position, source = _failing_cell(executed, nb)
    where = f"cell {position} of {len(_cells(nb))}" if position else "an unknown cell"
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    exec_count = getattr(exc, "exec_count", None)
    lines = [f"notebook {nb.name} failed in {where}"
             + (f" (execution count {exec_count})" if exec_count else "") + ":",
             f"  {ename}: {evalue}".rstrip()]
    if source:
        shown = source.strip().splitlines()
        lines.append("  cell source:")
        lines += ["    | " + s for s in shown[:12]]
        if len(shown) > 12:
            lines.append(f"    | ... ({len(shown) - 12} more lines)")
    lines.append(f"  executed copy with the full traceback: {executed}")
    return "\n".join(lines)


def _cells(nb: Path) -> list:
    import nbformat

    return nbformat.read(nb, as_version=4).cells


def execute(nb: Path, executed: Path, parameters: dict, *, progress: bool,
            timeout: int | None, cwd: Path) -> None:
    """Execute one notebook with Papermill on a fresh ``python3`` kernel."""
    import papermill as pm

    executed.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(
            str(nb), str(executed), parameters=parameters, kernel_name=KERNEL,
            progress_bar=progress, log_output=False, cwd=str(cwd),
            execution_timeout=timeout,
        )
    except Exception as exc:  # PapermillExecutionError, timeouts, dead kernels, bad JSON
        raise NotebookFailed(_describe_failure(nb, executed, exc)) from exc


def _print_summary(results: list[Result], out_dir: Path, summary_path: Path, *,
                   wall: float | None = None, profile=None) -> None:
    import pandas as pd

    df = pd.DataFrame([r.__dict__ for r in results])
    df.to_csv(summary_path, index=False)
    width = max([len(r.notebook) for r in results] + [8])
    print("\n" + f"{'notebook':<{width}}  {'status':<7} {'seconds':>8}  outputs written")
    for r in results:
        labels = textwrap.shorten(r.output_labels.replace(";", ", "), 70) or "-"
        print(f"{r.notebook:<{width}}  {r.status:<7} {r.seconds:8.1f}  {r.outputs:3d}  {labels}")
    total = sum(r.seconds for r in results)
    print(f"{'sum':<{width}}  {'':<7} {total:8.1f}")
    if wall is not None:
        budget = f" (budget {profile.budget_minutes:g} min)" if profile and profile.budget_minutes else ""
        print(f"{'wall time':<{width}}  {'':<7} {wall:8.1f}  = {wall / 60:.1f} min{budget}")
    print(f"\noutputs: {out_dir}\nsummary: {summary_path}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m echocare_lib.run",
        description="Run the EchoCare compendium's notebooks in order with Papermill.",
    )
    ap.add_argument("--profile", default=None,
                    help=f"one of {profile_names()} (default: $ECHOCARE_PROFILE or cpu)")
    ap.add_argument("--seed", type=int, default=0, help="global seed (default 0)")
    ap.add_argument("--out-dir", default=None,
                    help="figure/table folder (default: figures/ for cpu, "
                         "build/<profile>/figures otherwise)")
    ap.add_argument("--data-dir", default=None,
                    help="folder with real data sets (default: $ECHOCARE_DATA_DIR; none = simulator)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    ap.add_argument("--only", action="append", metavar="NB",
                    help="run only these notebooks (number, stem or file; repeat or comma-separate)")
    ap.add_argument("--from", dest="start", metavar="NB", help="start at this notebook")
    ap.add_argument("--notebooks-dir", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--build-dir", type=Path, default=None,
                    help="where executed notebooks go (default build/)")
    ap.add_argument("--timeout", type=int, default=None,
                    help="per-cell timeout in seconds (default: none)")
    ap.add_argument("--keep-going", action="store_true",
                    help="run the remaining notebooks after a failure (still exits non-zero)")
    ap.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="run up to N independent notebooks side by side (see STAGES; default 1)")
    ap.add_argument("--list", action="store_true", help="list the notebooks that would run")
    ap.add_argument("--no-progress", action="store_true", help="no per-cell progress bar")
    args = ap.parse_args(argv)

    if args.seed < 0:
        ap.error(f"--seed must be non-negative, got {args.seed}")
    if args.jobs < 1:
        ap.error(f"--jobs must be at least 1, got {args.jobs}")
    try:
        profile = get_profile(args.profile)
        out_dir = resolve_out_dir(args.out_dir, profile.name)
        data_dir = resolve_data_dir(args.data_dir)
    except (ValueError, FileNotFoundError) as exc:
        ap.error(str(exc))
    nb_dir = (args.notebooks_dir or notebooks_dir()).resolve()
    notebooks = select(discover(nb_dir), args.only, args.start)
    if not notebooks:
        ap.error(f"no notebooks selected in {nb_dir}")
    if args.list:
        for p in notebooks:
            print(p.stem)
        return 0

    run_dir = (args.build_dir or build_dir()).resolve() / profile.name
    executed_dir = run_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    parameters = {
        "profile": profile.name, "seed": args.seed, "out_dir": str(out_dir),
        "data_dir": str(data_dir) if data_dir else None, "device": args.device,
    }
    # The kernel must be this environment's Python (jupyter_client maps "python" to
    # sys.executable; keep PATH consistent for anything the notebooks spawn).
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    os.environ["ECHOCARE_PROFILE"] = profile.name
    progress = not args.no_progress

    groups = stages(notebooks)
    jobs = max(1, args.jobs)
    cores = os.cpu_count() or 1
    print(f"EchoCare compendium: {len(notebooks)} notebook(s), profile '{profile.name}' "
          f"(budget {profile.budget_minutes:g} min on {profile.budget_hardware}), seed {args.seed}"
          + (f", up to {jobs} side by side" if jobs > 1 else ""))
    print(f"figures/tables -> {out_dir}\nexecuted notebooks -> {executed_dir}\n")
    expected = _expected_seconds(run_dir, notebooks)
    results: dict[str, Result] = {}
    failures: list[str] = []
    counter = iter(range(1, len(notebooks) + 1))
    user_threads = {k: os.environ.get(k) for k in _THREAD_VARS}
    t_start = time.perf_counter()

    def one(nb: Path) -> Result:
        print(f"[{next(counter)}/{len(notebooks)}] {nb.stem} started", flush=True)
        since, t0 = time.time() - 1.0, time.perf_counter()  # 1 s: file-system mtime slack
        status, error = "ok", ""
        try:
            execute(nb, executed_dir / nb.name, parameters, progress=progress and workers == 1,
                    timeout=args.timeout, cwd=nb_dir)
        except NotebookFailed as exc:
            status, error = "FAILED", str(exc)
            print("\n" + error + "\n", file=sys.stderr, flush=True)
        seconds = time.perf_counter() - t0
        labels = _written_labels(out_dir, nb.stem, since)
        print(f"    {nb.stem}: {status} in {seconds:.1f} s, {len(labels)} output(s) written",
              flush=True)
        return Result(nb.stem, status, round(seconds, 1), len(labels), ";".join(labels),
                      error.splitlines()[0] if error else "", threads)

    for group in groups:
        workers = min(jobs, len(group))
        # the same split on every run with these --jobs: cores // workers threads per kernel
        threads = max(1, cores // workers) if workers > 1 else None
        for k in _THREAD_VARS:
            if threads is None:
                _restore(k, user_threads[k])
            else:
                os.environ[k] = str(threads)
        order = sorted(group, key=lambda nb: -expected.get(nb.stem, 0.0))  # longest first
        with cf.ThreadPoolExecutor(max_workers=workers) as pool:
            for res in pool.map(one, order):
                results[res.notebook] = res
                if res.status != "ok":
                    failures.append(res.error)
        if failures and not args.keep_going:
            break
    for k in _THREAD_VARS:
        _restore(k, user_threads[k])
    wall = time.perf_counter() - t_start
    ordered = [results[nb.stem] for nb in notebooks if nb.stem in results]
    run_dir.mkdir(parents=True, exist_ok=True)
    _print_summary(ordered, out_dir, run_dir / "run_summary.csv", wall=wall, profile=profile)
    if failures:
        print(f"\n{len(failures)} notebook(s) failed:", file=sys.stderr)
        for f in failures:
            print(f.splitlines()[0], file=sys.stderr)
        return 1
    return 0


_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _restore(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value


if __name__ == "__main__":
    sys.exit(main())
