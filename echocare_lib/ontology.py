"""The EchoAtlas anatomy ontology: a three-level label tree and the arrays a model needs from it.

EchoCare's meta-object classifier (paper, section 3, "Hierarchical pretraining") predicts
N_p + N_o + N_a classes: clinical regions, meta-object types and anatomical types. Labels are
ancestor-closed (a positive class makes its superclasses positive) and predictions must be
hierarchy-coherent (a child never scores above its parent). The paper gives the counts but not
the tree, so the tree is data (``data_manifests/ontology.yaml``, documented in
``data_manifests/ONTOLOGY.md``) and this module turns it into a fixed class order, multi-hot
encodings, ancestor/descendant matrices, level masks and name/synonym lookup.

Class order, used by every vector and matrix here: all regions, then all meta-object types, then
all anatomical types, each group in YAML order. Parents therefore always precede children.

Numpy only (no torch), so data-preparation code can use it without a model stack.
``python -m echocare_lib.ontology`` prints the counts table that ONTOLOGY.md carries.
"""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Iterable

import numpy as np
import yaml

from .paths import manifests_dir

LEVELS = ("region", "meta", "anatomical")
#: Counts stated in the paper (section 2): 8 named regions plus "other", 52 meta, 56 anatomical.
PAPER_COUNTS = {"region": 9, "meta": 52, "anatomical": 56}

_ID_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_NODE_KEYS = {"id", "name", "synonyms", "children"}
_TOP_KEYS = {"version", "description", "regions"}
_LEVEL_WORDS = {"region": "region", "meta": "meta-object type", "anatomical": "anatomical type"}


class OntologyError(ValueError):
    """The ontology is malformed; the message names the file, the node and what to do."""


@dataclass(frozen=True)
class Node:
    """One class of the ontology. ``parent`` is the parent's id (None for regions)."""

    id: str
    name: str
    level: str
    parent: str | None
    synonyms: tuple[str, ...] = ()


def _norm(text: str) -> str:
    """Lookup key: case-folded, '_' and '-' read as spaces, runs of whitespace collapsed."""
    return " ".join(re.sub(r"[_\-]", " ", str(text)).casefold().split())


class Ontology:
    """The region -> meta-object type -> anatomical type tree, in a fixed class order."""

    def __init__(self, nodes: Iterable[Node], source: str = "<in memory>") -> None:
        self.source = str(source)
        nodes = list(nodes)
        for n in nodes:
            if n.level not in LEVELS:
                raise OntologyError(f"{self.source}: node {n.id!r} has level {n.level!r}; "
                                    f"use one of {LEVELS}.")
        #: All nodes: regions, then meta types, then anatomical types (each in given order).
        self.nodes: tuple[Node, ...] = tuple(n for lvl in LEVELS for n in nodes if n.level == lvl)
        index: dict[str, int] = {}
        for i, n in enumerate(self.nodes):
            if n.id in index:
                first = self.nodes[index[n.id]]
                raise OntologyError(
                    f"{self.source}: duplicate id {n.id!r} (used by {first.name!r} and "
                    f"{n.name!r}). Ids must be unique across the whole tree: rename one of them.")
            index[n.id] = i
        #: id -> position in ``nodes`` (read-only).
        self.index = MappingProxyType(index)
        self.ids: tuple[str, ...] = tuple(n.id for n in self.nodes)
        self.n_regions, self.n_meta, self.n_anatomical = (
            sum(n.level == lvl for n in self.nodes) for lvl in LEVELS)

        parent_index = np.full(len(self.nodes), -1, dtype=np.int64)
        want = {"region": None, "meta": "region", "anatomical": "meta"}
        for i, n in enumerate(self.nodes):
            need = want[n.level]
            p = self.nodes[index[n.parent]] if n.parent in index else None
            if not (n.parent is None if need is None else (p is not None and p.level == need)):
                must = f"an existing {_LEVEL_WORDS[need]}" if need else "none (regions are roots)"
                raise OntologyError(f"{self.source}: {_LEVEL_WORDS[n.level]} {n.id!r} has parent "
                                    f"{n.parent!r}; its parent must be {must}.")
            if p is not None:
                parent_index[i] = index[p.id]
        for i, n in enumerate(self.nodes[: self.n_regions + self.n_meta]):
            if not np.any(parent_index == i):
                raise OntologyError(f"{self.source}: {_LEVEL_WORDS[n.level]} {n.id!r} has no "
                                    "children; every region and meta-object type needs one.")
        #: Parent position of every node (-1 for regions), read-only.
        self.parent_index = parent_index
        self.parent_index.setflags(write=False)
        anc = np.eye(len(self.nodes), dtype=bool)
        for i, p in enumerate(parent_index):  # parents precede children, so one pass suffices
            if p >= 0:
                anc[i] |= anc[p]
        self._anc = anc

        keys: dict[str, str] = {}
        for n in self.nodes:
            for text in (n.id, n.name, *n.synonyms):
                other = keys.setdefault(_norm(text), n.id)
                if other != n.id:
                    raise OntologyError(
                        f"{self.source}: {text!r} names both {other!r} and {n.id!r}, so find() "
                        "could not tell them apart. Ids, names and synonyms must be unique across "
                        "the tree (ignoring case, '_' and '-'): keep it on one node only.")
        self._keys = keys

    # ------------------------------------------------------------------ structure
    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return (f"Ontology({self.n_regions} regions, {self.n_meta} meta-object types, "
                f"{self.n_anatomical} anatomical types; {self.source})")

    def level_slice(self, level: str) -> slice:
        """Positions of one level in the class order (levels are contiguous)."""
        if level not in LEVELS:
            raise ValueError(f"Unknown level {level!r}; use one of {LEVELS}.")
        start = {"region": 0, "meta": self.n_regions, "anatomical": self.n_regions + self.n_meta}
        size = {"region": self.n_regions, "meta": self.n_meta, "anatomical": self.n_anatomical}
        return slice(start[level], start[level] + size[level])

    def _idx(self, node_id: str) -> int:
        try:
            return self.index[node_id]
        except (KeyError, TypeError):
            close = difflib.get_close_matches(str(node_id), self.ids, n=3)
            raise KeyError(f"Unknown node id {node_id!r} in {self.source}"
                           + (f"; did you mean {', '.join(map(repr, close))}?" if close else ".")
                           + " Use Ontology.find() to look up names and synonyms.") from None

    def node(self, node_id: str) -> Node:
        """The Node with this id."""
        return self.nodes[self._idx(node_id)]

    def parent(self, node_id: str) -> str | None:
        """The parent's id (None for a region)."""
        return self.node(node_id).parent

    def ancestors(self, node_id: str, include_self: bool = False) -> list[str]:
        """Ids of the ancestors, nearest first."""
        out, cur = ([node_id] if include_self else []), self.node(node_id).parent
        while cur is not None:
            out.append(cur)
            cur = self.nodes[self.index[cur]].parent
        return out

    def descendants(self, node_id: str, include_self: bool = False) -> list[str]:
        """Ids of the descendants, in class order (meta types before anatomical types)."""
        i = self._idx(node_id)
        return [self.ids[j] for j in np.flatnonzero(self._anc[:, i]) if include_self or j != i]

    def path(self, node_id: str) -> tuple[str, ...]:
        """Ids from the region down to this node."""
        return tuple(reversed(self.ancestors(node_id, include_self=True)))

    def find(self, name_or_synonym: str) -> str:
        """Id of the node whose id, name or synonym matches (ignoring case, '_' and '-').

        The loader rejects a key shared by two nodes, so a match is never ambiguous.
        """
        key = _norm(name_or_synonym)
        if key in self._keys:
            return self._keys[key]
        close = difflib.get_close_matches(key, list(self._keys), n=5, cutoff=0.6)
        hint = ", ".join(f"{c!r} -> {self._keys[c]}" for c in close) or "none"
        raise KeyError(f"{name_or_synonym!r} is not an id, name or synonym in {self.source}; "
                       f"close matches: {hint}. If it names an existing node, add it to that "
                       "node's synonyms in the YAML.")

    # ------------------------------------------------------------------ vectors and matrices
    def encode(self, ids: Iterable[str] | str) -> np.ndarray:
        """Multi-hot float32 vector (length ``len(self)``) of the ids and all their ancestors."""
        if isinstance(ids, str):
            ids = [ids]
        v = np.zeros(len(self), dtype=np.float32)
        for node_id in ids:
            v[self._anc[self._idx(node_id)]] = 1.0
        return v

    def _vector(self, vector: np.ndarray) -> np.ndarray:
        v = np.asarray(vector, dtype=np.float64)
        if v.shape[-1:] != (len(self),):
            raise ValueError(f"Expected a vector of length {len(self)} (one entry per class of "
                             f"{self.source}), got shape {v.shape}.")
        return v

    def decode(self, vector: np.ndarray, threshold: float = 0.5) -> list[str]:
        """Ids whose score is >= threshold, in class order (1-D vector)."""
        v = self._vector(vector)
        if v.ndim != 1:
            raise ValueError(f"decode() takes one vector, got shape {v.shape}; loop over rows.")
        return [self.ids[i] for i in np.flatnonzero(v >= threshold)]

    def ancestor_matrix(self) -> np.ndarray:
        """Bool [N, N]: A[i, j] is True iff node j is node i or one of its ancestors."""
        return self._anc.copy()

    def descendant_matrix(self) -> np.ndarray:
        """Bool [N, N]: D[i, j] is True iff node j is node i or one of its descendants."""
        return self._anc.T.copy()

    def level_mask(self, levels: Iterable[str] | str) -> np.ndarray:
        """Bool [N], True on the classes of the given level(s), for partially labelled data."""
        levels = [levels] if isinstance(levels, str) else list(levels)
        mask = np.zeros(len(self), dtype=bool)
        for level in levels:
            mask[self.level_slice(level)] = True
        return mask

    def is_coherent(self, vector: np.ndarray, tol: float = 1e-6) -> bool:
        """True iff no child scores above its parent (p_child <= p_parent + tol).

        Works for multi-hot labels and probability vectors; a batch [..., N] is coherent iff
        every row is. NaN scores make it False.
        """
        v = self._vector(vector)
        child = np.flatnonzero(self.parent_index >= 0)
        return bool(np.all(v[..., child] <= v[..., self.parent_index[child]] + tol))

    def to_frame(self):
        """pandas DataFrame with one row per class: id, name, level, parent, path ('a/b/c')."""
        import pandas as pd

        return pd.DataFrame({
            "id": self.ids,
            "name": [n.name for n in self.nodes],
            "level": [n.level for n in self.nodes],
            "parent": [n.parent for n in self.nodes],
            "path": ["/".join(self.path(i)) for i in self.ids],
        })


# ---------------------------------------------------------------------- loading
def _parse_node(raw: object, depth: int, parent: str | None, where: str, file: Path,
                out: list[Node]) -> None:
    """Check one YAML node (and, recursively, its children) and append it to ``out``."""
    level = LEVELS[depth]
    what = _LEVEL_WORDS[level]

    def fail(msg: str) -> None:
        raise OntologyError(f"{file}: {msg}")

    if not isinstance(raw, dict):
        fail(f"{where} must be a mapping with 'id' and 'name', got {raw!r}.")
    shown = repr(raw["id"]) if raw.get("id") else "(no id)"
    label = f"{what} {shown} ({where}, name {raw.get('name')!r})"
    unknown = set(raw) - _NODE_KEYS
    if unknown:
        fail(f"{label} has unknown key(s) {sorted(unknown)}; allowed: {sorted(_NODE_KEYS)}.")
    node_id, name = raw.get("id"), raw.get("name")
    if not isinstance(node_id, str) or not node_id:
        fail(f"{label} has no 'id': give it a unique snake_case id.")
    if not _ID_RE.match(node_id):
        fail(f"{label}: id must be snake_case (lower-case letters, digits, '_'), "
             "e.g. 'left_ventricle'.")
    if not isinstance(name, str) or not name.strip():
        fail(f"{label} has no 'name': give it a human-readable name.")
    synonyms = raw.get("synonyms") or []
    if not isinstance(synonyms, list) or not all(isinstance(s, str) and s.strip()
                                                 for s in synonyms):
        fail(f"{label}: 'synonyms' must be a list of non-empty strings, got {synonyms!r}.")
    out.append(Node(node_id, name.strip(), level, parent, tuple(s.strip() for s in synonyms)))

    children = raw.get("children")
    if depth == 2:
        if "children" in raw:
            fail(f"{label} has 'children', which would make a fourth level; the tree has exactly "
                 "region -> meta-object type -> anatomical type. Make its parent the meta type "
                 "and its children siblings (or synonyms), or move it up to be a meta type.")
        return
    if depth == 1 and "children" not in raw:
        fail(f"{label} has no 'children'. A region's children are meta-object types, each holding "
             f"at least one anatomical type: if {node_id!r} is an anatomical type, move it under a "
             f"meta-object type of {parent!r}; if it is a meta type, give it a child such as "
             f"'{name.strip()} parenchyma'.")
    if not isinstance(children, list) or not children:
        fail(f"{label} has an empty or missing 'children' list: every {what} needs at least one "
             + ("meta-object type." if depth == 0 else "anatomical type (if nothing finer exists, "
                "add one 'whole organ' child, e.g. liver -> liver parenchyma)."))
    for k, child in enumerate(children):
        _parse_node(child, depth + 1, node_id, f"{where}.children[{k}]", file, out)


def _parse(file: Path) -> Ontology:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"Ontology file {file} not found. Pass an existing path to load_ontology(), or restore "
            "data_manifests/ontology.yaml from the repository.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or e
        raise OntologyError(f"{file}: malformed YAML{at}: {problem}. Fix the syntax "
                            "(indentation, 'key: value', '- ' before list items).") from None
    if not isinstance(data, dict) or not isinstance(data.get("regions"), list) \
            or not data["regions"]:
        raise OntologyError(f"{file}: expected a mapping with a non-empty 'regions' list at the "
                            "top level (see data_manifests/ONTOLOGY.md for the format).")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise OntologyError(f"{file}: unknown top-level key(s) {sorted(unknown)}; "
                            f"allowed: {sorted(_TOP_KEYS)}.")
    nodes: list[Node] = []
    for k, raw in enumerate(data["regions"]):
        _parse_node(raw, 0, None, f"regions[{k}]", file, nodes)
    return Ontology(nodes, source=str(file))


@lru_cache(maxsize=None)
def _load_resolved(file: Path) -> Ontology:
    return _parse(file)


def load_ontology(path: str | os.PathLike | None = None) -> Ontology:
    """Load and validate the ontology (default: ``data_manifests/ontology.yaml``).

    Cached per resolved path; call ``load_ontology.cache_clear()`` after editing the file
    within a running session.
    """
    file = Path(path).expanduser() if path is not None else manifests_dir() / "ontology.yaml"
    return _load_resolved(file.resolve())


load_ontology.cache_clear = _load_resolved.cache_clear  # type: ignore[attr-defined]


def counts_table(onto: Ontology) -> str:
    """The Markdown counts table that ONTOLOGY.md carries (paper's counts vs this ontology's)."""
    ours = {"region": onto.n_regions, "meta": onto.n_meta, "anatomical": onto.n_anatomical}
    rows = ["| level | paper | this ontology |", "|---|---|---|"]
    rows += [f"| {_LEVEL_WORDS[lvl]}s | {PAPER_COUNTS[lvl]} | {ours[lvl]} |" for lvl in LEVELS]
    return "\n".join(rows)


def map_structures(onto, structures) -> tuple[list[str], list[str]]:
    """Ontology ids of the visible structures (deduplicated, in order), and the names the
    ontology does not hold (tissue layers such as fat or fascia; recorded, not dropped
    silently). Used for the simulator's structures and for annotation files."""
    ids, unmapped = [], []
    for name in structures:
        try:
            node = onto.find(name)
        except KeyError:
            unmapped.append(name)
            continue
        if node not in ids:
            ids.append(node)
    return ids, unmapped


if __name__ == "__main__":
    print(counts_table(load_ontology()))
