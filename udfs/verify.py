"""A precise second check for candidate near-duplicate pairs: find the geometry that maps one picture
onto the other, then look for differences that no overlay explains.

SSCD cosine and pHash distance are global summaries: two receipts, forms or diagrams drawn from one
template with other text look alike to both, while a mirrored, rotated, cropped or framed copy can
score lower than such a look-alike. This check looks at the pixels of one pair:

1. geometry: ORB features of both images (uniform borders trimmed, longest side scaled to
   WORK_SIDE, up or down), matched with Lowe's ratio test, and an affine map (rotation at any angle, scale,
   aspect, shear within bounds, translation) fitted by RANSAC (OpenCV); tried on the second image
   as it is, then mirrored when that map leaves differences (a map of few inliers must hold a fair
   share of the matches: repeated rows or grids give chance maps). `covered` is the share of each
   image inside the overlap (a crop covers part of its original, a framed copy part of its frame);
   an overlap holding less than MIN_COVER of both images, or less than MIN_SHARED of either, scores 0.
2. a common frame: the overlap, resampled so that neither image is magnified (a framed copy shown
   at half size is compared at its own resolution) and at most COMPARE_SIDE; the sharper image is
   blurred until both carry as much fine detail (a blurred or noisy copy is compared at its own
   level of detail).
3. differences: per pixel, the local correlation of the two images (slightly smoothed) over a
   WINDOW x WINDOW window; where either is textured (local contrast >= TEXTURE grey levels),
   a pixel differs when the correlation is below MATCH_CORRELATION or one side is flat where the
   other is not. Correlation ignores brightness, contrast, gamma, hue and grayscale changes.
   Differing pixels are grown by GROW of the frame into regions: an overlay (a caption, a logo,
   emoji) is one to a few compact regions; two drawings of one template with other text differ in
   many places (every field, label, line item). Up to OVERLAYS compact regions (each within
   OVERLAY_BOX of the frame) are explained as overlays, unless the map holds fewer than
   CONFIDENT_INLIERS inliers (a street grid or rows of boxes give such chance maps, and then the
   whole overlap must agree); any other region holding at least MIN_REGION of the frame's pixels
   is a difference. When differences remain, the map is refined
   once by ECC (an affine map fitted to a dozen features can be off by pixels at the far side of a
   page) and the better comparison counts; a refinement that moves b's corners by more than
   ECC_MAX_SHIFT of the frame is another map, not a correction, and is dropped (ECC can slide a
   squeezed look-alike onto a flat part of the frame, where everything agrees).

The score is the share of textured pixels outside the explained overlays that agree, and 0 when a
difference remains: a copy under any global edit scores ~1; a look-alike is refused by where it
differs, not by how much. `verify` is pure OpenCV and numpy on one core, see
tests/bench/bench_dedup_speed.py for its cost per pair. `prepared` images carry their features as
bytes (`Prepared.to_bytes`), so each image is prepared once however many pairs it is in.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from udfs.signatures import opencv, trim_uniform_border

WORK_SIDE = 640  # prepared images have this longest side (detail enough for the text of a page)
FEATURES = 500  # ORB keypoints per image view
FAST_THRESHOLD = 10  # ORB's corner threshold: low, so documents and charts get features too
RATIO = 0.85  # Lowe's ratio test
RANSAC_PIXELS = 6.0  # reprojection error of an inlier, at WORK_SIDE
RANSAC_SEED = 7
MIN_INLIERS = 8  # fewer: no geometry found, the pair scores 0 ...
CONFIDENT_INLIERS = 20  # ... and a map with fewer inliers than this needs MIN_INLIER_SHARE of the matches:
MIN_INLIER_SHARE = 0.12  # repeated structure (list rows, street grids) gives chance maps of a few inliers
SURE_INLIERS = 60  # a map of this many inliers that leaves differences: the mirrored view is not tried
MAX_SCALE = 6.0  # the map's singular values stay within [1/MAX_SCALE, MAX_SCALE] ...
MAX_ASPECT = 2.5  # ... and their ratio (aspect change plus shear) below this
MIN_COVER = 0.4  # the overlap must hold at least this share of one of the two images ...
MIN_SHARED = 0.2  # ... and this share of the other (a framed copy shows its original in a quarter of the frame)
COMPARE_SIDE = 480  # the common frame's longest side at most (640 cost twice as much and found the same differences)
WINDOW = 9  # pixels: the local correlation's window
TEXTURE = 8.0  # grey levels of local standard deviation: less is flat, no evidence either way
MATCH_CORRELATION = 0.6  # local correlation at least this: the pixel agrees
FLAT_RATIO = 0.25  # one side's contrast below this share of the other's: one is flat there, they differ
EDGE = 0.015  # of the frame's side along the overlap's edges is not compared
GROW = 0.01  # differing pixels within this share of the frame's side form one region
MIN_REGION = 0.0005  # a region with fewer differing pixels than this share of the frame is noise
OVERLAYS = 3  # compact regions explained as overlays (a caption, a logo, emoji) ...
OVERLAY_BOX = 0.15  # ... each within a box of at most this share of the frame
BLUR_SIGMAS = (0.7, 1.2, 2.0, 3.2)  # tried in turn to match the blurrier image's detail
ECC_ITERATIONS = 15
ECC_MAX_SHIFT = 0.05  # of the frame's side: the most ECC may move a corner of b


@functools.lru_cache(maxsize=1)
def _orb():
    return opencv().ORB_create(nfeatures=FEATURES, fastThreshold=FAST_THRESHOLD)


class Prepared:
    """One decoded image ready for checks: luminance, uniform borders trimmed, longest side WORK_SIDE;
    its features (and its mirror's) are computed on first use and kept. `to_bytes` carries it, with
    both views' features, from the task that prepared it to the tasks that check its pairs."""

    def __init__(self, pixels: np.ndarray, features: dict[bool, tuple[np.ndarray, np.ndarray | None]] | None = None):
        self.pixels = pixels
        self._features = features or {}

    def view(self, mirrored: bool) -> np.ndarray:
        return np.ascontiguousarray(self.pixels[:, ::-1]) if mirrored else self.pixels

    def features(self, mirrored: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """(keypoint coordinates (N, 2), ORB descriptors (N, 32) or None) of the image or its mirror."""
        if mirrored not in self._features:
            keypoints, descriptors = _orb().detectAndCompute(self.view(mirrored), None)
            self._features[mirrored] = (np.float32([k.pt for k in keypoints]).reshape(-1, 2), descriptors)
        return self._features[mirrored]

    def to_bytes(self) -> bytes:
        """Pixels as a PNG of fast compression (lossless: a JPEG changed 1 in 8 scores; ~2 ms to decode,
        a fifth of the raw size), then per view the keypoint count, coordinates and descriptors."""
        cv2 = opencv()
        encoded = cv2.imencode(".png", self.pixels, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()
        parts = [np.int32(len(encoded)).tobytes(), encoded]
        for mirrored in (False, True):
            points, descriptors = self.features(mirrored)
            count = 0 if descriptors is None else len(points)
            parts += [np.int32(count).tobytes(), points[:count].astype(np.float32).tobytes(),
                      (descriptors if count else np.zeros((0, 32), np.uint8)).tobytes()]
        return b"".join(parts)

    @staticmethod
    def from_bytes(data: bytes) -> Prepared:
        cv2 = opencv()
        size = int(np.frombuffer(data, np.int32, 1, 0)[0])
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8, size, 4), cv2.IMREAD_GRAYSCALE)
        offset, features = 4 + size, {}
        for mirrored in (False, True):
            count = int(np.frombuffer(data, np.int32, 1, offset)[0])
            points = np.frombuffer(data, np.float32, 2 * count, offset + 4).reshape(-1, 2)
            descriptors = np.frombuffer(data, np.uint8, 32 * count, offset + 4 + 8 * count).reshape(-1, 32)
            features[mirrored] = (points, descriptors if count else None)
            offset += 4 + 40 * count
        return Prepared(pixels, features)


def prepared(data: bytes) -> Prepared:
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (WORK_SIDE, WORK_SIDE))  # a JPEG decodes at the smallest scale still this large
        rgb = image.convert("RGB")
    if max(rgb.size) > 2 * WORK_SIDE:  # trimming needs no more detail than the check
        scale = 2 * WORK_SIDE / max(rgb.size)
        rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.Resampling.BOX)
    gray = trim_uniform_border(rgb).convert("L")
    if max(gray.size) != WORK_SIDE:  # small images are enlarged: copies at other scales then share their features' scale
        scale = WORK_SIDE / max(gray.size)
        resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BICUBIC
        gray = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))), resample)
    return Prepared(np.asarray(gray))


@dataclass(frozen=True)
class Match:
    """The verdict on one pair: `score` (0..1, share of textured pixels that agree outside overlays;
    0 when differences remain or no geometry was found) and its evidence."""

    score: float
    transform: str  # "identity", or parts of "mirror+rotate<degrees>+scale"; "none": no geometry found
    inliers: int = 0
    inlier_share: float = 0.0  # RANSAC inliers / ratio-test matches
    covered: tuple[float, float] = (0.0, 0.0)  # share of each image inside the overlap
    overlays: int = 0  # differing regions explained as overlays
    differences: int = 0  # differing regions no overlay explains

    @property
    def evidence(self) -> str:
        return (f"transform={self.transform} inliers={self.inliers} inlier_share={self.inlier_share:.2f} "
                f"covered={self.covered[0]:.2f}/{self.covered[1]:.2f} overlays={self.overlays} "
                f"differences={self.differences}")


NO_GEOMETRY = Match(0.0, "none")


def _affine(a: Prepared, b: Prepared, mirrored: bool) -> tuple[np.ndarray, int, float] | None:
    """(2x3 map from b (mirrored) to a, inliers, inlier share) by ratio-test ORB matches and RANSAC."""
    cv2 = opencv()
    (points_a, descriptors_a), (points_b, descriptors_b) = a.features(False), b.features(mirrored)
    if descriptors_a is None or descriptors_b is None or min(len(points_a), len(points_b)) < MIN_INLIERS:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(descriptors_b, descriptors_a, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < RATIO * m[1].distance]
    if len(good) < MIN_INLIERS:
        return None
    source = points_b[[m.queryIdx for m in good]]
    target = points_a[[m.trainIdx for m in good]]
    cv2.setRNGSeed(RANSAC_SEED)  # RANSAC's samples: a pair gets one verdict, whichever process checks it
    matrix, inliers = cv2.estimateAffine2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PIXELS,
                                           maxIters=2000, confidence=0.995)
    if matrix is None or inliers is None:
        return None
    count = int(inliers.sum())
    linear = matrix[:, :2]
    scales = np.linalg.svd(linear, compute_uv=False)
    # a reflection is found by the mirrored view; strong shear or a collapse is a chance fit
    if count < MIN_INLIERS or (count < CONFIDENT_INLIERS and count < MIN_INLIER_SHARE * len(good)) \
            or np.linalg.det(linear) <= 0 or scales[-1] < 1 / MAX_SCALE or scales[0] > MAX_SCALE \
            or scales[0] / scales[-1] > MAX_ASPECT:
        return None
    return matrix, count, count / len(good)


def _transform_name(matrix: np.ndarray, mirrored: bool) -> str:
    linear = matrix[:, :2]
    angle = float(np.degrees(np.arctan2(linear[1, 0], linear[0, 0])))
    scale = float(np.sqrt(abs(np.linalg.det(linear))))
    parts = ["mirror"] if mirrored else []
    if abs(angle) > 1.5:
        parts.append(f"rotate{round(angle) % 360}")
    if abs(scale - 1) > 0.05:
        parts.append("scale")
    return "+".join(parts) or "identity"


@dataclass(frozen=True)
class _Comparison:
    agreement: float
    overlays: int
    differences: int


class _Frame:
    """The overlap of a and b (mapped by `matrix`) resampled to a common frame."""

    def __init__(self, a: Prepared, b: np.ndarray, matrix: np.ndarray):
        cv2 = opencv()
        height, width = a.pixels.shape
        corners = np.float32([[0, 0], [b.shape[1], 0], [b.shape[1], b.shape[0]], [0, b.shape[0]]])
        mapped = cv2.transform(corners[None], matrix)[0].astype(np.float32)
        area, polygon = cv2.intersectConvexConvex(mapped, np.float32([[0, 0], [width, 0], [width, height], [0, height]]))
        scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))  # a pixels per b pixel
        self.covered = (area / (width * height), area / (scale * scale * b.shape[0] * b.shape[1]))
        self.b = b
        if area <= 0:
            self.size = (0, 0)
            return
        polygon = polygon.reshape(-1, 2)
        left, top = np.floor(polygon.min(axis=0))
        right, bottom = np.ceil(polygon.max(axis=0))
        box_h, box_w = bottom - top, right - left
        zoom = min(1.0, 1.0 / scale, COMPARE_SIDE / max(box_h, box_w))  # neither image is magnified
        self.size = (max(1, round(box_w * zoom)), max(1, round(box_h * zoom)))
        to_frame = np.array([[zoom, 0, -left * zoom], [0, zoom, -top * zoom]])
        self.a = cv2.warpAffine(a.pixels, to_frame, self.size, flags=cv2.INTER_AREA).astype(np.float32)
        self.b_map = to_frame @ np.vstack([matrix, [0, 0, 1]])

    def warped_b(self, b_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cv2 = opencv()
        pixels = cv2.warpAffine(self.b, b_map, self.size, flags=cv2.INTER_AREA).astype(np.float32)
        valid = cv2.warpAffine(np.ones(self.b.shape, np.uint8), b_map, self.size, flags=cv2.INTER_NEAREST)
        return pixels, valid

    def refined(self, b_pixels: np.ndarray, valid: np.ndarray) -> np.ndarray | None:
        """b's map corrected by ECC (affine, at half resolution), or None when ECC does not converge."""
        cv2 = opencv()
        half = (max(8, self.size[0] // 2), max(8, self.size[1] // 2))
        a = cv2.resize(self.a, half, interpolation=cv2.INTER_AREA)
        b = cv2.resize(b_pixels, half, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(valid, half, interpolation=cv2.INTER_NEAREST)
        correction = np.eye(2, 3, dtype=np.float32)
        try:
            _, correction = cv2.findTransformECC(a, b, correction, cv2.MOTION_AFFINE, (
                cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_ITERATIONS, 1e-4), mask, 5)
        except cv2.error:
            return None
        scale_up = np.diag([self.size[0] / half[0], self.size[1] / half[1], 1.0])
        frame_to_b = scale_up @ np.vstack([correction, [0, 0, 1]]) @ np.linalg.inv(scale_up)
        b_map = (np.linalg.inv(frame_to_b) @ np.vstack([self.b_map, [0, 0, 1]]))[:2]
        # a refinement moves a map by pixels; one that moves b's corners farther found another map
        # (on a flat part of the frame, where any map agrees), not a correction
        height, width = self.b.shape
        corners = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], float).T
        moved = np.abs(b_map @ corners - self.b_map @ corners).max()
        return b_map if moved <= ECC_MAX_SHIFT * max(self.size) else None


def _detail(pixels: np.ndarray, inside: np.ndarray) -> float:
    """Gradient energy over intensity variance (inside the uint8 mask): fine detail, whatever the contrast."""
    cv2 = opencv()
    gx, gy = cv2.Sobel(pixels, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(pixels, cv2.CV_32F, 0, 1, ksize=3)
    energy = cv2.mean(cv2.add(cv2.multiply(gx, gx), cv2.multiply(gy, gy)), inside)[0]
    _, std = cv2.meanStdDev(pixels, mask=inside)
    return energy / (float(std[0, 0]) ** 2 + 1e-6)


def _matched_detail(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) with the one carrying more fine detail (sharper, or noisier) blurred to the other's level."""
    cv2 = opencv()
    inside = np.zeros_like(valid)  # Sobel's 3x3 needs both neighbours: the outer pixels do not count
    inside[1:-1, 1:-1] = valid[1:-1, 1:-1]
    if cv2.countNonZero(inside) < 16:
        return a, b
    detail_a, detail_b = _detail(a, inside), _detail(b, inside)
    sharper, target, detail = (a, detail_b, detail_a) if detail_a > detail_b else (b, detail_a, detail_b)
    blurred = sharper
    for sigma in BLUR_SIGMAS:
        if detail <= 1.05 * target:
            break
        blurred = cv2.GaussianBlur(sharper, (0, 0), sigma)
        detail = _detail(blurred, inside)
    return (blurred, b) if sharper is a else (a, blurred)


def _local_correlation(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(correlation of a and b, a's local std, b's local std) per pixel, over WINDOW x WINDOW windows."""
    cv2 = opencv()

    def mean(x):
        return cv2.boxFilter(x, -1, (WINDOW, WINDOW), borderType=cv2.BORDER_REFLECT)

    mean_a, mean_b = mean(a), mean(b)
    std_a = np.sqrt(np.maximum(mean(a * a) - mean_a * mean_a, 0))
    std_b = np.sqrt(np.maximum(mean(b * b) - mean_b * mean_b, 0))
    correlation = (mean(a * b) - mean_a * mean_b) / np.maximum(std_a * std_b, 1e-3)
    return correlation, std_a, std_b


def _compare(a: np.ndarray, b: np.ndarray, valid: np.ndarray, overlays_allowed: int) -> _Comparison:
    cv2 = opencv()
    a, b = _matched_detail(a, b, valid)
    a, b = cv2.GaussianBlur(a, (5, 5), 1.0), cv2.GaussianBlur(b, (5, 5), 1.0)
    correlation, std_a, std_b = _local_correlation(a, b)
    # the overlap's own edges carry no evidence: a copy trimmed a pixel differently keeps or loses an outer line
    margin = 2 * max(WINDOW // 2, round(EDGE * max(a.shape))) + 1
    inner = cv2.erode(valid, np.ones((margin, margin), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    textured = inner & (np.maximum(std_a, std_b) >= TEXTURE)
    differs = textured & ((correlation < MATCH_CORRELATION) | (np.minimum(std_a, std_b) < FLAT_RATIO * np.maximum(std_a, std_b)))
    differs = cv2.morphologyEx(differs.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    if not differs.any():  # every textured pixel agrees
        return _Comparison(1.0, 0, 0)
    radius = max(1, round(GROW * max(a.shape)))
    grown = cv2.dilate(differs, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    pixels = np.bincount(labels[differs > 0], minlength=count)[1:]  # differing pixels per region
    boxes = stats[1:, cv2.CC_STAT_WIDTH] * stats[1:, cv2.CC_STAT_HEIGHT]
    frame = a.shape[0] * a.shape[1]
    regions = np.flatnonzero(pixels >= MIN_REGION * frame)
    largest = regions[np.argsort(-pixels[regions])][:overlays_allowed]
    overlays = largest[boxes[largest] <= OVERLAY_BOX * frame]
    is_overlay = np.zeros(count, bool)
    is_overlay[overlays + 1] = True
    explained = is_overlay[labels]
    counted = textured & ~explained
    agreeing = counted & (differs == 0)
    agreement = float(agreeing.sum()) / max(int(counted.sum()), 1) if counted.any() else 1.0
    return _Comparison(agreement, len(overlays), len(regions) - len(overlays))


def verify(a: Prepared, b: Prepared) -> Match:
    """b as it is, then (when its map leaves differences or there is none) mirrored: the first view
    whose map leaves no difference, else the evidence of the map with the most inliers."""
    best = NO_GEOMETRY
    for mirrored in (False, True):
        fitted = _affine(a, b, mirrored)
        if fitted is None:
            continue
        match = _checked(a, b, mirrored, *fitted)
        if match.score > 0:
            return match
        best = max(best, match, key=lambda m: m.inliers)
        if match.inliers >= SURE_INLIERS:  # a map this clear that leaves differences: not a mirror waiting to be tried
            break
    return best


def _checked(a: Prepared, b: Prepared, mirrored: bool, matrix: np.ndarray, inliers: int, share: float) -> Match:
    """What differs between a and b (mirrored) mapped onto a by `matrix`."""
    frame = _Frame(a, b.view(mirrored), matrix)
    evidence = dict(transform=_transform_name(matrix, mirrored), inliers=inliers, inlier_share=share, covered=frame.covered)
    if max(frame.covered) < MIN_COVER or min(frame.covered) < MIN_SHARED or min(frame.size) < 2 * WINDOW:
        return Match(0.0, **evidence)
    # a map of few inliers may be chance (street grids, rows of boxes): only a whole overlap that agrees confirms it
    overlays_allowed = OVERLAYS if inliers >= CONFIDENT_INLIERS else 0
    b_pixels, valid = frame.warped_b(frame.b_map)
    comparison = _compare(frame.a, b_pixels, valid, overlays_allowed)
    if comparison.differences:
        refined = frame.refined(b_pixels, valid)
        if refined is not None:
            again = _compare(frame.a, *frame.warped_b(refined), overlays_allowed)
            if again.differences < comparison.differences:
                comparison = again
    score = comparison.agreement if not comparison.differences else 0.0
    return Match(score, overlays=comparison.overlays, differences=comparison.differences, **evidence)


def verify_bytes(a: bytes, b: bytes) -> Match:
    return verify(prepared(a), prepared(b))
