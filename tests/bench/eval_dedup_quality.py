"""Detection quality of the near-duplicate image step on a planted set (no Spark).

The set (udfs/planted.py): real photos from the demo packages and rendered charts in look-alike
pairs (same template, different data: hard negatives), each with one copy per transformation
(resize, JPEG 25-45, crop 3-8%, border 5-15%, brightness +-10-20%, text overlay, combinations);
optionally real distractors from ../shared/data (TabMWP table renderings, NLVR scenes), which
are singletons. The signals are the ones the Spark stage uses (udfs.signatures.phash, SSCD
vectors of the whole image and of the picture shown inside it, framed or turned, from
udfs.embedding.embed_views, udfs.verify.verify); the search is exhaustive (numpy), so the numbers
measure the rules, not the bucketed search's recall. Rows "configured, no ..." leave one candidate signal out.

Scores
- dedup, the whole step: pairs -> clusters (jobs/ops/clusters.py: cores joined by pairs that set
  nothing aside, and the cores with an overlay-explained pair to a pivot core) -> every pair of
  images in one cluster is a predicted duplicate pair; pairwise precision and recall against the planted truth
  (original-copy and copy-copy pairs). Recall per transformation counts original-copy pairs.
- decontamination: benchmark = the originals of about half the groups (one chart of every
  look-alike pair, so its sibling is a clean training image); training = their copies (planted
  leaks) and everything else (clean). A training image is flagged when a pair rule holds with
  a benchmark image; leak recall and false leaks (clean images flagged).

Two sets: the first (udfs/planted.py, above) and the second (udfs/planted_disc.py): DISC21's
edit families (mirror, rotations, framing in a screenshot, overlays of text/emoji/logo, colour and
tone, blur and noise, aspect, crops of 10-30%, combinations) on rendered documents, forms,
receipts, app screens, diagrams and maps drawn in same-template pairs with other text, and photos.
Per set: the tables below, recall per edit family, and the share of same-template pairs grouped.

    python tests/bench/eval_dedup_quality.py [--set first|second|both] [--seed 0] [--chart-pairs 24]
                                             [--tables 60] [--nlvr 60] [--templates 4] [--cache DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[2]
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from udfs import planted  # noqa: E402
from udfs.embedding import EmbeddingSettings, embed_images, embed_views  # noqa: E402
from udfs import planted_disc  # noqa: E402
from udfs.signatures import dihedral_phashes, phash  # noqa: E402
from udfs.verify import prepared, verify  # noqa: E402

SHARED = PROJECT.parent / "shared" / "data"


# ---------------------------------------------------------------- the set


def photo_originals(limit: int | None = None) -> list[tuple[str, str, bytes]]:
    from udfs import demo_sources

    photos = demo_sources.load_photos()[:limit]
    return [(f"photo-{p.name}", "photo", p.data) for p in photos]


def chart_originals(pairs: int, seed: int) -> list[tuple[str, str, bytes]]:
    return [(i, "chart", d) for i, d in planted.render_charts(pairs, seed)]


def shared_distractors(tables: int, nlvr: int, seed: int) -> list[tuple[str, bytes]]:
    """Real rendered tables (TabMWP) and scenes (NLVR, one rendering per statement), when present."""
    rng = random.Random(seed)
    out = []
    table_dir = SHARED / "tabmwp" / "tables"
    if tables and table_dir.is_dir():
        out += [(f"table-{p.stem}", p.read_bytes()) for p in rng.sample(sorted(table_dir.glob("*.png")), tables)]
    listing = SHARED / "nlvr" / "dev.jsonl"
    if nlvr and listing.is_file():
        statements = rng.sample([json.loads(line) for line in listing.read_text().splitlines() if line.strip()], nlvr)
        for s in statements:
            path = SHARED / "nlvr" / "images" / s["directory"] / f"dev-{s['identifier']}-0.png"
            if path.is_file():
                out.append((f"nlvr-{s['identifier']}", path.read_bytes()))
    return out


def build_set(seed: int, chart_pairs: int, tables: int, nlvr: int, photos: int | None = None) -> list[planted.PlantedImage]:
    originals = photo_originals(photos) + chart_originals(chart_pairs, seed)
    return planted.planted_set(originals, distractors=shared_distractors(tables, nlvr, seed), seed=seed)


# ---------------------------------------------------------------- signals


@dataclass
class Signals:
    phash: np.ndarray  # int64 per image, plain
    phash_trim: np.ndarray  # of the image without uniform borders
    sscd: np.ndarray  # (n, 512) unit vectors, plain preprocessing
    sscd_trim: np.ndarray  # preprocessing with trim_borders
    phash_dihedral: np.ndarray  # (n, 8) int64: the pHashes of the image's rotations and mirrors
    sscd_framed: np.ndarray  # (n, 512): of the picture shown inside the image (plain preprocessing), 0 when none


def onnx_settings(trim: bool, threads: int = 2, framed: bool = False) -> EmbeddingSettings:
    return EmbeddingSettings("onnx", "sscd", None, "auto", True, batch_size=16, threads=threads, image_size=288,
                             trim_borders=trim, framed=framed)


def signals(images: list[planted.PlantedImage], cache: Path | None = None, plain: bool = True,
            trimmed: bool = True) -> Signals:
    """pHashes (plain, trimmed) and SSCD vectors: plain and/or of trimmed images (an empty matrix when not asked)."""
    data = [im.data for im in images]
    salt = b"dihedral+framed+turned"  # what the stored signals hold: another salt recomputes them
    key = hashlib.sha256(b"".join(hashlib.sha256(d).digest() for d in data) + bytes([plain, trimmed]) + salt).hexdigest()
    if cache and cache.is_file():
        stored = np.load(cache)
        if str(stored["key"]) == key:
            return Signals(*(stored[f] for f in ("phash", "phash_trim", "sscd", "sscd_trim", "phash_dihedral", "sscd_framed")))
    start = time.time()
    whole, framed = embed_views(data, onnx_settings(False, framed=True)) if plain else (None, [])
    sig = Signals(
        phash=np.array([phash(d) for d in data], dtype=np.int64),
        phash_trim=np.array([phash(d, trim=True) for d in data], dtype=np.int64),
        sscd=whole if plain else np.zeros((len(data), 0), np.float32),
        sscd_trim=embed_images(data, onnx_settings(True)) if trimmed else np.zeros((len(data), 0), np.float32),
        phash_dihedral=np.array([dihedral_phashes(d) for d in data], dtype=np.int64),
        sscd_framed=np.stack([np.zeros(whole.shape[1], np.float32) if v is None else v for v in framed])
        if plain else np.zeros((len(data), 0), np.float32),
    )
    print(f"signals of {len(data)} images in {time.time() - start:.0f} s", file=sys.stderr)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with cache.open("wb") as out:
            np.savez(out, key=np.array(key), **vars(sig))
    return sig


def hamming_between(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    xor = left.view(np.uint64)[:, None] ^ right.view(np.uint64)[None, :]
    return np.unpackbits(xor.view(np.uint8).reshape(len(left), len(right), 8), axis=2).sum(axis=2)


def hamming_matrix(hashes: np.ndarray) -> np.ndarray:
    return hamming_between(hashes, hashes)


# ---------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    """A pair rule as the Spark stage applies it (dedup config keys in brackets).

    certain: pHash <= radius [phash_radius] (unless phash_verify), SSCD >= tau [sscd_tau];
    checked (kept when verify >= verify_min [verify_min]): SSCD in [band_low, tau)
    [sscd_band_low], and pHash <= radius when phash_verify [phash_verify]; with `neighbours`, only
    pairs among the nearest candidates of one of their images (dedup) or of the training image
    (decontamination) are checked.
    """

    name: str
    phash_radius: int = 6
    sscd_tau: float = 0.95
    band_low: float = 1.0  # >= sscd_tau: no band
    phash_verify: bool = False
    verify_min: float = 0.9
    neighbours: int = 0  # pixel check only among an image's nearest candidates per signal [verify_neighbours]; 0: all
    trim: bool = False  # also the pHash of trimmed images, the closest counts [dedup.trim_borders]
    sscd_trim: bool | None = None  # SSCD of trimmed images [embed.trim_borders]; None: as `trim`
    use_phash: bool = True
    use_sscd: bool = True
    dihedral: bool = False  # pHash candidates also between an image's rotations/mirror and the other image [phash_turns]
    framed: bool = False  # SSCD also of the picture shown inside an image [embed.framed]


CHUNK = 200  # pairs per task of a worker process
_SET: list[planted.PlantedImage] = []  # the set being scored, inherited by forked workers


def _checked(pairs: list[tuple[int, int]]) -> tuple[dict[tuple[int, int], tuple[float, int]], float]:
    """(pair -> (pixel check score, overlays), seconds) of sorted pairs of _SET, each image prepared once."""
    start, ready, scores = time.time(), {}, {}
    for i, j in pairs:
        for k in (i, j):
            if k not in ready:
                ready[k] = prepared(_SET[k].data)
        match = verify(ready[i], ready[j])
        scores[(i, j)] = (match.score, match.overlays)
    return scores, time.time() - start


class Scorer:
    """Pairwise signals of one set, and the pixel check computed once per pair it is asked about."""

    def __init__(self, images: list[planted.PlantedImage], sig: Signals, workers: int = 1):
        self.images, self.n, self.workers = images, len(images), workers
        # trimmed: as the stage, the closest of the plain and trimmed pHashes of both images
        both = np.concatenate([sig.phash, sig.phash_trim])
        every = hamming_matrix(both)
        n = len(sig.phash)
        closest = np.minimum.reduce([every[i * n:(i + 1) * n, j * n:(j + 1) * n] for i in (0, 1) for j in (0, 1)])
        self.distance = {False: every[:n, :n], True: closest}
        # dihedral: the closest of the 8 variants of one side to the plain or trimmed hash of the other
        variants = [hamming_between(sig.phash_dihedral[:, k], other) for k in range(8) for other in (sig.phash, sig.phash_trim)]
        turned = np.minimum.reduce(variants)
        self.dihedral_distance = np.minimum(turned, turned.T)
        self.cosine = {(trim, False): v @ v.T for trim, v in ((False, sig.sscd), (True, sig.sscd_trim)) if v.shape[1]}
        if sig.sscd.shape[1]:  # the closest of the pairs of views: a framed picture meets its original
            views = sig.sscd @ sig.sscd_framed.T
            self.cosine[(False, True)] = np.maximum.reduce(
                [self.cosine[(False, False)], views, views.T, sig.sscd_framed @ sig.sscd_framed.T])
        self._scores: dict[tuple[int, int], tuple[float, int]] = {}
        self.checked = 0
        self.check_seconds = 0.0

    def check_all(self, pairs: list[tuple[int, int]]) -> None:
        """Compute the pixel check of the pairs not checked yet, in `workers` forked processes (pairs
        sorted so a chunk prepares each of its images once)."""
        todo = sorted({(min(i, j), max(i, j)) for i, j in pairs} - set(self._scores))
        if not todo:
            return
        global _SET
        _SET = self.images
        chunks = [todo[k:k + CHUNK] for k in range(0, len(todo), CHUNK)]
        if self.workers == 1:
            done = map(_checked, chunks)
        else:
            pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"))
            done = pool.map(_checked, chunks)
        for scores, seconds in done:
            self._scores.update(scores)
            self.check_seconds += seconds
        if self.workers != 1:
            pool.shutdown()
        self.checked += len(todo)

    def check(self, i: int, j: int) -> float:
        self.check_all([(i, j)])
        return self._scores[(min(i, j), max(i, j))][0]

    def overlays(self, i: int, j: int) -> int:
        self.check_all([(i, j)])
        return self._scores[(min(i, j), max(i, j))][1]

    def edges(self, rule: Rule, rows: np.ndarray | None = None, cols: np.ndarray | None = None) -> np.ndarray:
        """Boolean matrix of accepted pairs (upper triangle when rows/cols are all images)."""
        return self.graded_edges(rule, rows, cols)[0]

    def graded_edges(self, rule: Rule, rows: np.ndarray | None = None,
                     cols: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(accepted pairs, the accepted pairs that passed the check only with overlays set aside)."""
        rows = np.arange(self.n) if rows is None else rows
        cols = np.arange(self.n) if cols is None else cols
        distance = (np.minimum(self.distance[rule.trim], self.dihedral_distance) if rule.dihedral
                    else self.distance[rule.trim])[np.ix_(rows, cols)]
        cosine = self.cosine[(rule.trim if rule.sscd_trim is None else rule.sscd_trim, rule.framed)][np.ix_(rows, cols)]
        valid = rows[:, None] != cols[None, :]
        if len(rows) == self.n and len(cols) == self.n:
            valid &= rows[:, None] < cols[None, :]
        square = len(rows) == self.n and len(cols) == self.n
        ph = (distance <= rule.phash_radius) & valid & rule.use_phash
        certain = ph & (not rule.phash_verify)
        checked = nearest(ph & rule.phash_verify, 1 - distance / 64, rule.neighbours, square)
        if rule.use_sscd:
            certain |= (cosine >= rule.sscd_tau) & valid
            band = (cosine >= rule.band_low) & (cosine < rule.sscd_tau) & valid
            checked |= nearest(band, cosine, rule.neighbours, square)
        checked &= ~certain
        accepted, weak = certain.copy(), np.zeros_like(certain)
        pairs = [(rows[a], cols[b]) for a, b in zip(*np.nonzero(checked))]
        self.check_all(pairs)
        for a, b in zip(*np.nonzero(checked)):
            if self.check(rows[a], cols[b]) >= rule.verify_min:
                accepted[a, b] = True
                weak[a, b] = self.overlays(rows[a], cols[b]) > 0
        return accepted, weak


def nearest(candidates: np.ndarray, similarity: np.ndarray, neighbours: int, symmetric: bool) -> np.ndarray:
    """The candidates among the `neighbours` most similar of their row's image (and, `symmetric`,
    of their column's: an upper-triangle pair matrix), as the stage's pixel_check ranks them."""
    if not neighbours:
        return candidates
    full = candidates | candidates.T if symmetric else candidates
    score = np.where(full, similarity, -np.inf)
    top = np.argsort(-score, axis=1, kind="stable")[:, :neighbours]
    keep = np.zeros_like(full)
    np.put_along_axis(keep, top, True, axis=1)
    keep &= full
    if symmetric:
        keep |= keep.T
    return candidates & keep


# ---------------------------------------------------------------- scores


def connected(n: int, edges: np.ndarray) -> np.ndarray:
    """Connected component label per image (union-find)."""
    parent = list(range(n))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for i, j in zip(*np.nonzero(edges)):
        parent[root(i)] = root(j)
    return np.array([root(k) for k in range(n)])


def clusters(ids: list[str], edges: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """Cluster label per image (an index into `ids`: the smallest id of the pivot core), as
    jobs/ops/clusters.py computes it: cores are the components of the accepted pairs that set
    nothing aside (`edges` and not `weak`), and pivot rounds over the cores follow the `weak` pairs."""
    n = len(ids)
    edges, weak = edges | edges.T, (weak | weak.T) & (edges | edges.T)
    core = connected(n, edges & ~weak)
    roots = sorted(set(core.tolist()), key=lambda r: min(ids[k] for k in np.flatnonzero(core == r)))
    slot = {r: k for k, r in enumerate(roots)}
    label = [min((ids[k], k) for k in np.flatnonzero(core == r))[1] for r in roots]  # the core's smallest id
    of = np.array([slot[c] for c in core])
    linked = np.zeros((len(roots), len(roots)), bool)
    for i, j in zip(*np.nonzero(weak)):
        linked[of[i], of[j]] = of[i] != of[j]
    size, pairs = np.bincount(of, minlength=len(roots)), linked.sum(axis=1)
    order = sorted(range(len(roots)), key=lambda c: (size[c], pairs[c], hashlib.md5(ids[label[c]].encode()).hexdigest(),
                                                     ids[label[c]]))
    rank = np.empty(len(roots), int)
    rank[order] = np.arange(len(roots))
    pivot = np.full(len(roots), -1)
    while (pivot < 0).any():
        free = pivot < 0
        strongest = np.where(linked & free[None, :], rank[None, :], -1).max(axis=1)
        chosen = free & (rank > strongest)
        pivot[chosen] = np.flatnonzero(chosen)
        claimed = free & ~chosen & (linked & chosen[None, :]).any(axis=1)
        best = np.where(linked & chosen[None, :], rank[None, :], -1).argmax(axis=1)
        pivot[claimed] = best[claimed]
    return np.array([label[pivot[c]] for c in of])


def dedup_scores(images, scorer: Scorer, rule: Rule) -> dict:
    n = len(images)
    edges, weak = scorer.graded_edges(rule)
    labels = clusters([im.image_id for im in images], edges, weak)
    group = np.array([im.original_id for im in images])
    upper = np.triu(np.ones((n, n), bool), 1)
    predicted = (labels[:, None] == labels[None, :]) & upper
    truth = (group[:, None] == group[None, :]) & upper
    tp = int((predicted & truth).sum())
    edge_tp = int((edges & truth).sum())
    out = {
        "precision": tp / max(int(predicted.sum()), 1), "recall": tp / max(int(truth.sum()), 1),
        "edges": int(edges.sum()), "edge_precision": edge_tp / max(int(edges.sum()), 1),
        "edge_recall": edge_tp / max(int(truth.sum()), 1), "false_pairs": int((predicted & ~truth).sum()),
    }
    transform = np.array([im.transform for im in images])
    index = {im.image_id: k for k, im in enumerate(images)}
    for name in families(images):
        copies = np.flatnonzero(transform == name)
        originals = np.array([index[images[c].original_id] for c in copies])
        out[f"recall:{name}"] = float((labels[copies] == labels[originals]).mean()) if len(copies) else float("nan")
    # where the false pairs come from
    kind = np.array([im.kind for im in images])
    false = predicted & ~truth
    look_alike = look_alike_matrix(images)
    distractor = (kind[:, None] == "distractor") | (kind[None, :] == "distractor")
    out["false:look-alike"] = int((false & look_alike).sum())
    out["false:distractor"] = int((false & distractor).sum())
    out["false:other"] = int((false & ~look_alike & ~distractor).sum())
    return out


def templated(image: planted.PlantedImage) -> bool:
    """Drawn from a template in look-alike pairs (`...a`, `...b`): charts, and the second set's content."""
    return image.kind == "chart" or image.kind in planted_disc.CONTENT


def look_alike_matrix(images: list[planted.PlantedImage]) -> np.ndarray:
    """Pairs of images from one template's two drawings (`...a` and `...b`, copies included)."""
    group = np.array([im.original_id for im in images])
    stem = np.array([im.original_id[:-1] if templated(im) else im.original_id for im in images])
    return (stem[:, None] == stem[None, :]) & (group[:, None] != group[None, :])


def families(images: list[planted.PlantedImage]) -> list[str]:
    return list(dict.fromkeys(im.transform for im in images if im.transform != "original"))


def decontamination_split(images: list[planted.PlantedImage]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(benchmark, leaks, clean) indices: benchmark = originals of every other photo and of each template pair's `a`."""
    photos = sorted({im.original_id for im in images if im.kind == "photo"})
    chosen = set(photos[::2]) | {im.original_id for im in images if templated(im) and im.original_id.endswith("a")}
    bench = [k for k, im in enumerate(images) if im.original_id in chosen and im.transform == "original"]
    leaks = [k for k, im in enumerate(images) if im.original_id in chosen and im.transform != "original"]
    clean = [k for k, im in enumerate(images) if im.original_id not in chosen]
    return np.array(bench), np.array(leaks), np.array(clean)


def decontamination_scores(images, scorer: Scorer, rule: Rule) -> dict:
    bench, leaks, clean = decontamination_split(images)
    train = np.concatenate([leaks, clean])
    flagged = scorer.edges(rule, rows=train, cols=bench).any(axis=1)
    is_leak = np.isin(train, leaks)
    out = {"leaks": int(is_leak.sum()), "clean": int((~is_leak).sum()),
           "leak_recall": float(flagged[is_leak].mean()), "false_leaks": int(flagged[~is_leak].sum())}
    transform = np.array([images[k].transform for k in train])
    for name in families(images):
        mask = is_leak & (transform == name)
        out[f"recall:{name}"] = float(flagged[mask].mean()) if mask.any() else float("nan")
    return out


# ---------------------------------------------------------------- methods


def configured_rule() -> Rule:
    """The rule conf/base.yaml configures (dedup: and embed: sections)."""
    import yaml

    from jobs.runtime.config import DedupConf, EmbedConf

    raw = yaml.safe_load((PROJECT / "conf" / "base.yaml").read_text())
    dedup, embed = DedupConf(**raw.get("dedup", {})), EmbedConf(**raw.get("embed", {}))
    return Rule(
        "configured (base.yaml)", phash_radius=dedup.phash_radius, sscd_tau=dedup.sscd_tau,
        band_low=dedup.sscd_band_low, phash_verify=dedup.phash_verify, verify_min=dedup.verify_min,
        neighbours=dedup.verify_neighbours, dihedral=dedup.phash_turns, framed=embed.framed,
        trim=dedup.trim_borders, sscd_trim=embed.trim_borders,
    )


BASELINES = [
    Rule("pHash r<=6", use_sscd=False),
    Rule("SSCD >= 0.95", use_phash=False),
    Rule("union (stage before)"),
    Rule("union, borders trimmed", trim=True),
]


def improved_rules() -> list[Rule]:
    configured = configured_rule()
    return [
        configured,
        replace(configured, name="configured, no turned pHashes", dihedral=False),
        replace(configured, name="configured, no framed pictures", framed=False),
    ]


def table(title: str, rows: list[tuple[str, dict]], columns: list[tuple[str, str]]) -> str:
    width = max(len(name) for name, _ in rows) + 2
    lines = [title, " " * width + " ".join(f"{label:>9s}" for _, label in columns)]
    for name, scores in rows:
        cells = []
        for key, _ in columns:
            value = scores.get(key, float("nan"))
            cells.append(f"{value:9d}" if isinstance(value, int) else f"{value:9.3f}")
        lines.append(f"{name:<{width}s}" + " ".join(cells))
    return "\n".join(lines)


def second_set(seed: int, per_kind: int, photos: int | None) -> list[planted.PlantedImage]:
    """udfs/planted_disc.py: DISC21's edit families on rendered documents, forms, receipts, app
    screens, diagrams, maps (same-template pairs) and real photos."""
    return planted_disc.planted_set(photo_originals(photos) + planted_disc.render_templates(per_kind, seed), seed)


def evaluate(title: str, images: list[planted.PlantedImage], sig: Signals, rules: list[Rule], workers: int = 1) -> dict:
    counts = {k: sum(im.kind == k for im in images) for k in dict.fromkeys(im.kind for im in images)}
    n = len(images)
    look_alikes = int(np.triu(look_alike_matrix(images), 1).sum())
    print(f"\n=== {title}: {n} images ({', '.join(f'{v} {k}' for k, v in counts.items())}; {len(families(images))} "
          f"copies of each original); {len(planted.true_pairs(images))} true pairs, {look_alikes} same-template pairs")
    scorer = Scorer(images, sig, workers)
    short = {name: name.replace("rotate", "rot").replace("overlay_", "ov_")[:9] for name in families(images)}
    dedup = [(r.name, dedup_scores(images, scorer, r)) for r in rules]
    decon = [(r.name, decontamination_scores(images, scorer, r)) for r in rules]
    for _, scores in dedup:  # share of same-template pairs that end in one group
        scores["template_grouped"] = scores["false:look-alike"] / max(look_alikes, 1)
    print()
    print(table("dedup, whole step (pairs -> clusters): pairwise precision / recall", dedup, [
        ("precision", "P"), ("recall", "R"), ("edges", "edges"), ("edge_precision", "edge P"),
        ("edge_recall", "edge R"), ("false:look-alike", "FP look"), ("template_grouped", "look grp"),
        ("false:distractor", "FP dist"), ("false:other", "FP other")]))
    print()
    print(table("dedup recall per edit family (original-copy pairs in one group)", dedup,
                [(f"recall:{k}", v) for k, v in short.items()]))
    print()
    first = decon[0][1]
    print(table(f"decontamination: {first['leaks']} planted leaks, {first['clean']} clean training images",
                decon, [("leak_recall", "leak R"), ("false_leaks", "false")] + [(f"recall:{k}", v) for k, v in short.items()]))
    print(f"\npixel checks: {scorer.checked} pairs, {1000 * scorer.check_seconds / max(scorer.checked, 1):.1f} ms each"
          " (incl. preparing images)")
    return {"dedup": dict(dedup), "decontamination": dict(decon)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=["first", "second", "both"], default="both")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chart-pairs", type=int, default=24)
    parser.add_argument("--tables", type=int, default=60, help="TabMWP table distractors (0: none)")
    parser.add_argument("--nlvr", type=int, default=60, help="NLVR scene distractors (0: none)")
    parser.add_argument("--templates", type=int, default=4, help="second set: templates per content kind (2 images each)")
    parser.add_argument("--photos", type=int, default=None, help="photos per set (default: all the demo's)")
    parser.add_argument("--cache", type=Path, default=None, help="folder for the signals, reused when a set matches")
    parser.add_argument("--json", type=Path, default=None, help="write every score here")
    parser.add_argument("--workers", type=int, default=2, help="processes for the pixel checks")
    args = parser.parse_args(argv)

    start = time.time()
    sets = {}
    if args.set in ("first", "both"):
        sets["first set: photos and charts, resize/JPEG/crop/border/brightness/text"] = build_set(
            args.seed, args.chart_pairs, args.tables, args.nlvr, args.photos)
    if args.set in ("second", "both"):
        sets["second set: documents, forms, receipts, app screens, diagrams, maps, photos; DISC21 edits"] = second_set(
            args.seed, args.templates, args.photos)
    results = {}
    for index, (title, images) in enumerate(sets.items()):
        cache = args.cache / f"signals-{index}.npz" if args.cache else None
        rules = BASELINES + improved_rules()
        results[title] = evaluate(title, images, signals(images, cache), rules, args.workers)
    print(f"\ntotal {time.time() - start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
