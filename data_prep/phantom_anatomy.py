"""Geometry of the synthetic phantoms: the voxel grid, the random deformation, the tissue maps.

Every subject is a stack of axial slices through a torso, ``D×H×W`` with slice 0 the most superior,
row 0 anterior and column 0 the patient's right (the usual radiological display). Anatomy is built
in a *model* frame in millimetres (x to the patient's left, y posterior, z inferior, origin at the
centre of the field of view) by painting simple solids (ellipsoids, capsules, elliptic cylinders)
in order, later ones over earlier ones, each allowed to cover only given tissues. Each voxel's model
coordinate is its world coordinate pushed through the subject's random smooth deformation (a cubic
B-spline free-form field) and a small random affine (scale, in-plane rotation, shift), so no two
subjects have the same shapes. Every random number is drawn in a fixed order from the subject's
anatomy stream and in millimetre units, so one seed gives the same anatomy at any grid size.

The result is a *tissue map* (uint8 ids into :data:`TISSUES`); each tissue has an appearance (how
the modalities render it, see :mod:`data_prep.phantom_render`) and a label (its class, 0 for the
unlabelled distractors), so labels are a lookup on the tissue map.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

FOV_MM = 300.0  # in-plane field of view (H = W), so the in-plane spacing is FOV_MM / size
SLAB_MM = {"cardiac": 128.0, "abdominal": 160.0}  # slab thickness, so dz = SLAB_MM / n_slices


@dataclass(frozen=True)
class TissueDef:
    """One tissue of a task: its name, the appearance it is rendered with, and its class label."""

    name: str
    appearance: str  # key into data_prep.phantom_render.APPEARANCE[task][modality]
    label: int  # class index of the task (0 = background / unlabelled distractor)


_COMMON = (
    TissueDef("air", "air", 0),
    TissueDef("lung", "lung", 0),
    TissueDef("subcutaneous fat", "fat", 0),
    TissueDef("skeletal muscle", "muscle", 0),
    TissueDef("cortical bone", "bone", 0),
    TissueDef("bone marrow", "marrow", 0),
    TissueDef("cerebrospinal fluid", "fluid", 0),
    TissueDef("spinal cord", "cord", 0),
    TissueDef("intervertebral disc", "disc", 0),
)

CARDIAC_TISSUES: tuple[TissueDef, ...] = _COMMON + (
    TissueDef("mediastinal/epicardial fat", "fat", 0),
    TissueDef("LV myocardium", "myocardium", 1),
    TissueDef("LA blood", "arterial_blood", 2),
    TissueDef("LV blood", "arterial_blood", 3),
    TissueDef("papillary muscle", "myocardium", 3),
    TissueDef("ascending aorta blood", "arterial_blood", 4),
    TissueDef("descending aorta blood", "arterial_blood", 0),
    TissueDef("pulmonary vein blood", "arterial_blood", 0),
    TissueDef("RA blood", "right_blood", 0),
    TissueDef("RV blood", "right_blood", 0),
    TissueDef("RV wall", "myocardium", 0),
    TissueDef("pulmonary artery blood", "right_blood", 0),
    TissueDef("SVC blood", "svc_blood", 0),
    TissueDef("IVC blood", "unenhanced_blood", 0),
    TissueDef("esophagus", "muscle", 0),
    TissueDef("liver", "liver", 0),
    TissueDef("spleen", "spleen", 0),
    TissueDef("stomach wall", "bowel_wall", 0),
    TissueDef("stomach fluid", "fluid", 0),
    TissueDef("gas", "gas", 0),
)

ABDOMINAL_TISSUES: tuple[TissueDef, ...] = _COMMON + (
    TissueDef("visceral fat", "fat", 0),
    TissueDef("liver", "liver", 1),
    TissueDef("intrahepatic vessels", "venous_blood", 1),
    TissueDef("right kidney cortex", "kidney_cortex", 2),
    TissueDef("right kidney medulla", "kidney_medulla", 2),
    TissueDef("left kidney cortex", "kidney_cortex", 3),
    TissueDef("left kidney medulla", "kidney_medulla", 3),
    TissueDef("spleen", "spleen", 4),
    TissueDef("renal sinus fat", "fat", 0),
    TissueDef("renal pelvis", "fluid", 0),
    TissueDef("aorta blood", "arterial_blood", 0),
    TissueDef("IVC blood", "venous_blood", 0),
    TissueDef("portal/splenic/renal vein blood", "venous_blood", 0),
    TissueDef("pancreas", "pancreas", 0),
    TissueDef("gallbladder", "fluid", 0),
    TissueDef("stomach wall", "bowel_wall", 0),
    TissueDef("stomach fluid", "fluid", 0),
    TissueDef("bowel wall", "bowel_wall", 0),
    TissueDef("small bowel fluid", "fluid", 0),
    TissueDef("colon content", "feces", 0),
    TissueDef("gas", "gas", 0),
)

TISSUES: dict[str, tuple[TissueDef, ...]] = {
    "cardiac": CARDIAC_TISSUES, "abdominal": ABDOMINAL_TISSUES}


def tissue_ids(task: str) -> dict[str, int]:
    """Tissue name -> id (the value stored in the tissue map) for ``task``."""
    return {t.name: i for i, t in enumerate(_tissues(task))}


def label_lut(task: str) -> np.ndarray:
    """uint8 lookup table: ``label = label_lut(task)[tissue]``."""
    lut = np.zeros(256, np.uint8)
    for i, t in enumerate(_tissues(task)):
        lut[i] = t.label
    return lut


def _tissues(task: str) -> tuple[TissueDef, ...]:
    try:
        return TISSUES[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(TISSUES)}") from None


# ----------------------------------------------------------------------------------------------
# grid and smooth random fields


@dataclass(frozen=True)
class Grid:
    """Voxel centres in world millimetres along (z, y, x); the volume is centred on the origin."""

    z: np.ndarray
    y: np.ndarray
    x: np.ndarray
    spacing: tuple[float, float, float]  # mm along (z, y, x)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.z), len(self.y), len(self.x))

    @property
    def half_extent(self) -> tuple[float, float, float]:
        """Half the covered length (mm) along (z, y, x)."""
        return tuple(n * d / 2 for n, d in zip(self.shape, self.spacing))


def make_grid(task: str, size: int, n_slices: int) -> Grid:
    """The voxel grid of a ``n_slices×size×size`` subject of ``task``."""
    dz = SLAB_MM[task] / n_slices
    dxy = FOV_MM / size
    z = (np.arange(n_slices) + 0.5 - n_slices / 2) * dz
    xy = (np.arange(size) + 0.5 - size / 2) * dxy
    return Grid(z=z, y=xy.copy(), x=xy.copy(), spacing=(float(dz), float(dxy), float(dxy)))


def bspline_matrix(coords: np.ndarray, half_extent: float, step: float,
                   unit_variance: bool = False) -> np.ndarray:
    """Cubic B-spline weights of control points every ``step`` mm covering ±``half_extent``.

    Returns ``(len(coords), n_ctrl)``; ``n_ctrl`` depends on the extent and step only (not on the
    number of voxels), so coefficients drawn for it give the same field at any grid size. With
    ``unit_variance`` each row is scaled to unit norm, so i.i.d. N(0, 1) coefficients give a field
    of unit variance everywhere.
    """
    n = int(np.ceil(2 * half_extent / step)) + 4
    start = -half_extent - 1.5 * step
    t = (np.asarray(coords, np.float64) - start) / step
    i0 = np.floor(t).astype(np.int64)
    f = t - i0
    weights = ((1 - f) ** 3 / 6, (3 * f ** 3 - 6 * f ** 2 + 4) / 6,
               (-3 * f ** 3 + 3 * f ** 2 + 3 * f + 1) / 6, f ** 3 / 6)
    out = np.zeros((len(t), n))
    rows = np.arange(len(t))
    for k, w in enumerate(weights):
        out[rows, np.clip(i0 - 1 + k, 0, n - 1)] += w
    if unit_variance:
        out /= np.sqrt((out ** 2).sum(axis=1, keepdims=True))
    return out


def separable_field(coef: np.ndarray, bz: np.ndarray, by: np.ndarray, bx: np.ndarray,
                    ) -> np.ndarray:
    """``sum_abc coef[a,b,c] bz[z,a] by[y,b] bx[x,c]`` as float32 ``D×H×W`` (three matmuls)."""
    t = coef @ bx.T  # (na, nb, W)
    t = np.matmul(by, t)  # (na, H, W)
    na, h, w = t.shape
    return (bz @ t.reshape(na, h * w)).reshape(bz.shape[0], h, w).astype(np.float32)


def smooth_noise(grid: Grid, rng: np.random.Generator, step_xy: float, step_z: float,
                 ) -> np.ndarray:
    """A smooth Gaussian random field of unit variance (correlation length ≈ the steps, in mm)."""
    half_z, half_xy, _ = grid.half_extent
    bz = bspline_matrix(grid.z, half_z, step_z, unit_variance=True)
    by = bspline_matrix(grid.y, half_xy, step_xy, unit_variance=True)
    bx = bspline_matrix(grid.x, half_xy, step_xy, unit_variance=True)
    coef = rng.standard_normal((bz.shape[1], by.shape[1], bx.shape[1]))
    return separable_field(coef, bz, by, bx)


# ----------------------------------------------------------------------------------------------
# the painter: model coordinates, bounding boxes, solids

Fn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


class Painter:
    """Holds each voxel's model coordinates and the tissue map being painted.

    ``paint(tid, fn, lo, hi, allowed)`` evaluates the boolean solid ``fn(X, Y, Z)`` only on the
    voxels whose model coordinates can fall inside the model-space box ``[lo, hi]`` (x, y, z in mm)
    and sets them to ``tid`` where the current tissue is one of ``allowed`` (any if None).
    """

    def __init__(self, grid: Grid, slab_mm: float, rng: np.random.Generator):
        self.grid = grid
        d, h, w = grid.shape
        # smooth deformation: cubic B-spline free-form field, control points every 50 mm (45 in z)
        half_xy, half_z = FOV_MM / 2, slab_mm / 2
        bz = bspline_matrix(grid.z, half_z, 45.0)
        by = bspline_matrix(grid.y, half_xy, 50.0)
        bx = bspline_matrix(grid.x, half_xy, 50.0)
        shape = (bz.shape[1], by.shape[1], bx.shape[1])
        amp = (9.0, 9.0, 6.0)  # coefficient std (mm) for x, y, z displacements
        ux = separable_field(rng.normal(0, amp[0], shape), bz, by, bx)
        uy = separable_field(rng.normal(0, amp[1], shape), bz, by, bx)
        uz = separable_field(rng.normal(0, amp[2], shape), bz, by, bx)
        # small affine: in-plane rotation, anisotropic scale, shift
        theta = float(np.deg2rad(np.clip(rng.normal(0, 3.0), -7, 7)))
        self.scale = tuple(float(s) for s in rng.uniform(0.96, 1.04, 3))  # sx, sy, sz
        self.shift = tuple(float(s) for s in rng.normal(0, (4.0, 4.0, 5.0)))  # tx, ty, tz
        self.cos, self.sin = float(np.cos(theta)), float(np.sin(theta))
        self.umax = tuple(float(np.abs(u).max()) + 1e-3 for u in (ux, uy, uz))
        sx, sy, sz = self.scale
        tx, ty, tz = self.shift
        px = ux + np.float32(-tx)
        px += grid.x.astype(np.float32)[None, None, :]
        py = uy + np.float32(-ty)
        py += grid.y.astype(np.float32)[None, :, None]
        self.X = (px * np.float32(self.cos / sx) + py * np.float32(self.sin / sx))
        self.Y = (px * np.float32(-self.sin / sy) + py * np.float32(self.cos / sy))
        del px, py
        self.Z = uz + np.float32(-tz)
        self.Z += grid.z.astype(np.float32)[:, None, None]
        self.Z *= np.float32(1 / sz)
        self.tissue = np.zeros((d, h, w), np.uint8)
        self._luts: dict[tuple, np.ndarray] = {}

    # -- bounding boxes
    def block(self, lo: Sequence[float] | None, hi: Sequence[float] | None):
        """Index slices of the voxels that may map into the model box, or None if empty."""
        if lo is None:
            return (slice(None),) * 3
        sx, sy, sz = self.scale
        tx, ty, tz = self.shift
        cx = np.array([lo[0], hi[0], lo[0], hi[0]]) * sx
        cy = np.array([lo[1], lo[1], hi[1], hi[1]]) * sy
        wx = self.cos * cx - self.sin * cy + tx
        wy = self.sin * cx + self.cos * cy + ty
        ranges = (
            (sz * lo[2] + tz - self.umax[2], sz * hi[2] + tz + self.umax[2], self.grid.z),
            (wy.min() - self.umax[1], wy.max() + self.umax[1], self.grid.y),
            (wx.min() - self.umax[0], wx.max() + self.umax[0], self.grid.x),
        )
        out = []
        for (a, b, axis), step in zip(ranges, self.grid.spacing):
            i = max(0, int(np.floor((a - axis[0]) / step)))
            j = min(len(axis), int(np.ceil((b - axis[0]) / step)) + 1)
            if j <= i:
                return None
            out.append(slice(i, j))
        return tuple(out)

    def _lut(self, allowed: tuple[int, ...]) -> np.ndarray:
        lut = self._luts.get(allowed)
        if lut is None:
            lut = np.zeros(256, bool)
            lut[list(allowed)] = True
            self._luts[allowed] = lut
        return lut

    def paint(self, tid: int, fn: Fn, lo=None, hi=None, allowed: Sequence[int] | None = None,
              ) -> None:
        sl = self.block(lo, hi)
        if sl is None:
            return
        mask = fn(self.X[sl], self.Y[sl], self.Z[sl])
        view = self.tissue[sl]
        if allowed is not None:
            mask &= self._lut(tuple(sorted(allowed)))[view]
        view[mask] = tid

    # -- solids
    def ellipsoid(self, tid: int, c, a, rot: np.ndarray | None = None, allowed=None,
                  keep: Fn | None = None) -> None:
        """Ellipsoid of centre ``c`` (x, y, z), semi-axes ``a`` along the rows of ``rot``."""
        fn, lo, hi = ellipsoid_fn(c, a, rot)
        if keep is not None:
            inner = fn
            fn = lambda X, Y, Z: inner(X, Y, Z) & keep(X, Y, Z)  # noqa: E731
        self.paint(tid, fn, lo, hi, allowed)

    def tube(self, tid: int, points, radii, allowed=None) -> None:
        """A tube along a polyline: one capsule per segment, radius interpolated linearly."""
        pts = np.asarray(points, np.float64)
        r = np.broadcast_to(np.asarray(radii, np.float64), (len(pts),))
        for k in range(len(pts) - 1):
            fn, lo, hi = capsule_fn(pts[k], pts[k + 1], r[k], r[k + 1])
            self.paint(tid, fn, lo, hi, allowed)

    def cylinder(self, tid: int, cx: float, cy: float, ax: float, ay: float, z0=-1e3, z1=1e3,
                 allowed=None) -> None:
        """Elliptic cylinder along z (between z0 and z1 in model mm)."""
        cx, cy, ax, ay = float(cx), float(cy), float(ax), float(ay)

        def fn(X, Y, Z):
            m = ((X - cx) / ax) ** 2 + ((Y - cy) / ay) ** 2 <= 1
            if z0 > -1e3 or z1 < 1e3:
                m &= (Z >= z0) & (Z <= z1)
            return m
        self.paint(tid, fn, (cx - ax, cy - ay, z0), (cx + ax, cy + ay, z1), allowed)


def ellipsoid_fn(c, a, rot=None):
    """(fn, lo, hi) of a solid ellipsoid; ``rot`` rows are the local axes in model coordinates."""
    c = [float(v) for v in c]
    a = [float(v) for v in a]
    if rot is None:
        def fn(X, Y, Z):
            return (((X - c[0]) / a[0]) ** 2 + ((Y - c[1]) / a[1]) ** 2
                    + ((Z - c[2]) / a[2]) ** 2) <= 1
        ext = a
    else:
        r = np.asarray(rot, np.float64)
        rr = [[float(r[i, j]) / a[i] for j in range(3)] for i in range(3)]

        def fn(X, Y, Z):
            dx, dy, dz = X - c[0], Y - c[1], Z - c[2]
            q = None
            for i in range(3):
                li = dx * rr[i][0] + dy * rr[i][1] + dz * rr[i][2]
                q = li * li if q is None else q + li * li
            return q <= 1
        ext = [float(np.sqrt(sum((r[j, i] * a[j]) ** 2 for j in range(3)))) for i in range(3)]
    lo = [c[i] - ext[i] for i in range(3)]
    hi = [c[i] + ext[i] for i in range(3)]
    return fn, lo, hi


def capsule_fn(p0, p1, r0, r1):
    """(fn, lo, hi) of a capsule (segment ``p0``-``p1``, radius from ``r0`` to ``r1``)."""
    p0 = [float(v) for v in p0]
    v = [float(p1[i]) - p0[i] for i in range(3)]
    l2 = max(sum(c * c for c in v), 1e-9)
    r0, r1 = float(r0), float(r1)

    def fn(X, Y, Z):
        dx, dy, dz = X - p0[0], Y - p0[1], Z - p0[2]
        t = (dx * (v[0] / l2) + dy * (v[1] / l2) + dz * (v[2] / l2))
        np.clip(t, 0, 1, out=t)
        ex, ey, ez = dx - t * v[0], dy - t * v[1], dz - t * v[2]
        rad = t * (r1 - r0) + r0
        return ex * ex + ey * ey + ez * ez <= rad * rad
    rmax = max(r0, r1)
    lo = [min(p0[i], p0[i] + v[i]) - rmax for i in range(3)]
    hi = [max(p0[i], p0[i] + v[i]) + rmax for i in range(3)]
    return fn, lo, hi


def frame(u, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Rotation whose first row is ``u`` (normalised); rows 2-3 complete a right-handed frame."""
    u = np.asarray(u, np.float64)
    u = u / np.linalg.norm(u)
    v = np.cross(u, up)
    if np.linalg.norm(v) < 1e-6:
        v = np.cross(u, (1.0, 0.0, 0.0))
    v /= np.linalg.norm(v)
    w = np.cross(u, v)
    return np.stack([u, v, w])


def rot_z(deg: float) -> np.ndarray:
    """Rows = local axes of a frame rotated by ``deg`` about z (in the axial plane)."""
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


# ----------------------------------------------------------------------------------------------
# shared body parts


def _body_layers(p: Painter, ids: dict[str, int], ax: float, ay: float, taper: float,
                 zref: float, tf: float, tm: float, inner: int) -> None:
    """Skin-bounded fat, then the body-wall muscle, then the cavity filled with ``inner``."""
    def layer(off):
        def fn(X, Y, Z):
            k = Z * np.float32(taper / zref) + np.float32(1.0)
            xx = X / (k * np.float32(ax - off))
            yy = Y * np.float32(1.0 / (ay - off))
            return xx * xx + yy * yy <= 1
        return fn
    p.paint(ids["subcutaneous fat"], layer(0.0))
    p.paint(ids["skeletal muscle"], layer(tf))
    p.paint(inner, layer(tf + tm))


def _spine(p: Painter, rng: np.random.Generator, ids: dict[str, int], ay: float, tf: float,
           r_vb: float, soft: tuple[int, ...]) -> dict[str, float]:
    """Vertebral bodies (cortex, marrow, discs), canal, cord, posterior elements, back muscles."""
    bone, marrow = ids["cortical bone"], ids["bone marrow"]
    y_tip = ay - tf - 6.0  # spinous process tip just under the subcutaneous fat
    yc = y_tip - 30.0  # spinal canal centre
    yv = yc - 9.0 - r_vb  # vertebral body centre
    period = rng.uniform(27.0, 33.0)
    phase = rng.uniform(0, period)
    disc_h = rng.uniform(5.0, 8.0)
    # paraspinal muscles
    for s in (-1, 1):
        p.cylinder(ids["skeletal muscle"], s * 27.0, yc + 10.0, 23.0, 17.0, allowed=soft)
    p.cylinder(bone, 0.0, yv, r_vb, r_vb * 0.92, allowed=soft)
    p.cylinder(marrow, 0.0, yv, r_vb - 2.5, r_vb * 0.92 - 2.5, allowed=(bone,))

    def disc(X, Y, Z):
        m = ((X / r_vb) ** 2 + ((Y - yv) / (r_vb * 0.92)) ** 2) <= 1
        return m & (np.mod(Z - phase, period) < disc_h)
    p.paint(ids["intervertebral disc"], disc, (-r_vb, yv - r_vb, -1e3), (r_vb, yv + r_vb, 1e3),
            allowed=(bone, marrow))
    # posterior arch: ring around the canal, spinous and transverse processes
    p.cylinder(bone, 0.0, yc, 13.0, 12.0, allowed=soft)
    p.cylinder(bone, 0.0, yc + 18.0, 5.0, 13.0, allowed=soft)
    for s in (-1, 1):
        p.cylinder(bone, s * 21.0, yc - 3.0, 11.0, 5.0, allowed=soft)
    p.cylinder(ids["cerebrospinal fluid"], 0.0, yc, 8.0, 7.5)
    p.cylinder(ids["spinal cord"], 0.0, yc, 4.5, 4.0)
    return {"yv": yv, "yc": yc, "r_vb": r_vb}


def _ribs(p: Painter, ids: dict[str, int], taper: float, zref: float, cav: tuple[float, float],
          rng: np.random.Generator, allowed: tuple[int, ...],
          z_end: Callable | None = None) -> None:
    """Rib cross-sections: bony ovals (cortex around marrow) in the inner chest wall.

    A rib runs around the body from the spine to the front, descending as it goes, so in an axial
    slice it shows where ``z - slope * arc`` falls in its band; ``arc`` is the distance around the
    wall from the spine. Evaluated only on the voxels of the wall band.
    """
    period = rng.uniform(27.0, 33.0)
    phase = rng.uniform(0, period)
    slope = rng.uniform(0.45, 0.6)  # mm down per mm around the wall
    height = rng.uniform(9.0, 12.0)
    rx, ry = cav
    k = p.Z * np.float32(taper / zref) + np.float32(1.0)
    xo, yo = p.X / (k * np.float32(rx + 7.0)), p.Y * np.float32(1 / (ry + 7.0))
    band = xo * xo + yo * yo <= 1
    xi, yi = p.X / (k * np.float32(rx - 4.0)), p.Y * np.float32(1 / (ry - 4.0))
    band &= xi * xi + yi * yi > 1
    del xo, yo, xi, yi, k
    band &= p._lut(tuple(sorted(allowed)))[p.tissue]
    idx = np.nonzero(band)
    del band
    X, Y, Z = p.X[idx], p.Y[idx], p.Z[idx]
    theta = np.arctan2(X, Y)  # 0 at the spine (posterior), ±pi at the front
    arc = np.abs(theta) * np.float32(0.5 * (rx + ry))
    ph = np.abs(np.mod(Z - np.float32(slope) * arc - np.float32(phase), np.float32(period))
                - np.float32(period / 2))
    kz = Z * np.float32(taper / zref) + np.float32(1.0)
    xm, ym = X / (kz * np.float32(rx + 1.5)), Y * np.float32(1 / (ry + 1.5))
    radial = (np.sqrt(xm * xm + ym * ym) - np.float32(1.0)) * np.float32(0.5 * (rx + ry))
    # oval cross-section: 11 mm radially, ``height`` along the rib's descent
    ell = (ph * np.float32(2 / height)) ** 2 + (radial * np.float32(1 / 5.5)) ** 2
    keep = ell <= 1
    keep &= ~((np.abs(X) < 26.0) & (Y < 0))  # costal cartilage / sternum
    keep &= ~((np.abs(X) < 38.0) & (Y > 0))  # spine
    if z_end is not None:
        keep &= Z < z_end(X, Y)
    marrow = keep & ((ph * np.float32(2 / (height - 5.0))) ** 2
                     + (radial * np.float32(1 / 3.0)) ** 2 <= 1)
    p.tissue[tuple(i[keep] for i in idx)] = ids["cortical bone"]
    p.tissue[tuple(i[marrow] for i in idx)] = ids["bone marrow"]


# ----------------------------------------------------------------------------------------------
# cardiac


def build_cardiac(p: Painter, rng: np.random.Generator) -> dict:
    """Paint a chest slab (great vessels to the apex): the four labelled cardiac structures and
    their unlabelled neighbours. Returns the drawn parameters (for the record)."""
    ids = tissue_ids("cardiac")
    u = rng.uniform
    ax, ay = 132.0 * u(0.94, 1.05), 100.0 * u(0.92, 1.06)
    taper = u(0.0, 0.06)
    tf, tm = u(6.0, 16.0), u(9.0, 14.0)
    lung, fat, med = ids["lung"], ids["subcutaneous fat"], ids["mediastinal/epicardial fat"]
    muscle, liver = ids["skeletal muscle"], ids["liver"]
    _body_layers(p, ids, ax, ay, taper, 64.0, tf, tm, lung)
    cav = (ax - tf - tm, ay - tf - tm)
    soft_all = tuple(i for n, i in ids.items() if n not in (
        "air", "cortical bone", "bone marrow", "cerebrospinal fluid", "spinal cord",
        "intervertebral disc", "skeletal muscle", "subcutaneous fat"))
    # diaphragm domes: below them the liver (right) and stomach / spleen in fat (left)
    zr, zl = 28.0 + rng.normal(0, 6), 42.0 + rng.normal(0, 6)
    curv = u(90.0, 130.0)

    def below_dome(side):
        def fn(X, Y, Z):
            if side < 0:
                zd = ((X + 50.0) ** 2 + (Y - 5.0) ** 2) * np.float32(0.5 / curv) + np.float32(zr)
                return (Z > zd) & (X < 12.0)
            zd = ((X - 55.0) ** 2 + (Y - 5.0) ** 2) * np.float32(0.5 / curv) + np.float32(zl)
            return (Z > zd) & (X >= 12.0)
        return fn
    p.paint(liver, below_dome(-1), (-200, -200, zr - 5), (200, 200, 1e3), allowed=(lung,))
    p.paint(med, below_dome(1), (-200, -200, zl - 5), (200, 200, 1e3), allowed=(lung,))
    st_c = (55.0 + rng.normal(0, 6), -30.0 + rng.normal(0, 6), zl + 38.0)
    st_a = (u(35, 48), u(28, 40), u(35, 45))
    p.ellipsoid(ids["stomach wall"], st_c, st_a, allowed=(med,))
    p.ellipsoid(ids["stomach fluid"], st_c, (st_a[0] - 5, st_a[1] - 5, st_a[2] - 5),
                allowed=(ids["stomach wall"],))
    gas_y = st_c[1] - u(0.0, 0.5) * st_a[1]
    p.ellipsoid(ids["gas"], st_c, (st_a[0] - 5, st_a[1] - 5, st_a[2] - 5),
                allowed=(ids["stomach fluid"],), keep=lambda X, Y, Z: Y < gas_y)
    p.ellipsoid(ids["spleen"], (88.0, 42.0, zl + 45.0), (26.0, 42.0, 40.0), rot_z(-35),
                allowed=(med,))
    # spine, sternum, ribs
    sp = _spine(p, rng, ids, ay, tf, 17.0 * u(0.92, 1.08), soft=soft_all + (muscle, fat))
    yv, r_vb = sp["yv"], sp["r_vb"]
    ys = -(ay - tf - tm * 0.45)
    p.cylinder(ids["cortical bone"], 0.0, ys, 15.0, 7.5, allowed=(muscle, lung, fat))
    p.cylinder(ids["bone marrow"], 0.0, ys, 12.0, 4.5, allowed=(ids["cortical bone"],))
    _ribs(p, ids, taper, 64.0, cav, rng, allowed=(muscle, lung))
    # mediastinal fat: posterior (around aorta and esophagus); around the heart and great vessels
    # it comes as shells painted before each structure below
    p.cylinder(med, 8.0, yv - r_vb - 12.0, 34.0, 20.0, allowed=(lung,))
    # heart frame: LV long axis points anterior, left and inferior
    c_lv = np.array([32.0, -36.0, -4.0]) + rng.normal(0, (5.0, 4.0, 6.0))
    phi, eps = np.deg2rad(40.0 + rng.normal(0, 7)), np.deg2rad(38.0 + rng.normal(0, 6))
    ua = np.array([np.cos(eps) * np.cos(phi), -np.cos(eps) * np.sin(phi), np.sin(eps)])
    rot = frame(ua)
    va = rot[1]  # horizontal, towards the patient's right and anterior (septum / RV side)
    a_l, a_s = 46.0 * u(0.9, 1.1), 24.0 * u(0.9, 1.1)
    th = 13.0 * u(0.9, 1.1)  # myocardial wall thickness (mm)
    base_t = -0.45 * a_l
    base = c_lv + base_t * ua
    la_c = base - 22.0 * ua + np.array([-8.0, 10.0, -6.0]) + rng.normal(0, 3.0, 3)
    la_c[1] = min(la_c[1], yv - r_vb - 38.0)
    la_a = np.array([32.0, 19.0, 25.0]) * u(0.9, 1.12, 3)
    la_rot = rot_z(rng.normal(0, 8))
    ra_c = la_c + np.array([-38.0, -10.0, 14.0]) + rng.normal(0, 3.0, 3)
    ra_a = np.array([25.0, 23.0, 28.0]) * u(0.9, 1.12, 3)
    rv_c = c_lv - 0.05 * a_l * ua + 0.85 * (a_s + th) * va
    rv_rot = rot
    rv_a = np.array([0.78 * a_l, 20.0 * u(0.9, 1.15), a_s + th + 8.0])
    aa_r = 14.0 * u(0.9, 1.12)
    aa_root = base + 0.4 * a_s * va + np.array([-2.0, 0.0, -4.0])
    aa_pts = [aa_root, aa_root + (-7.0, -2.0, -32.0), aa_root + (-11.0, 3.0, -90.0)]
    pa_root = aa_root + np.array([17.0, -14.0, -6.0])
    pa_bif = pa_root + np.array([-2.0, 22.0, -42.0])
    pa_pts = [pa_root, pa_root + (3.0, 2.0, -26.0), pa_bif]
    lpa = [pa_bif, pa_bif + (42.0, 22.0, -2.0)]
    rpa = [pa_bif, pa_bif + (-70.0, 16.0, -4.0)]
    fat_t = u(3.0, 8.0)  # epicardial fat thickness
    soft = soft_all
    # epicardial / mediastinal fat shells
    p.ellipsoid(med, la_c, la_a + fat_t, la_rot, allowed=(lung, liver))
    p.ellipsoid(med, ra_c, ra_a + fat_t, allowed=(lung, liver))
    p.ellipsoid(med, rv_c, rv_a + fat_t + 4.0, rv_rot, allowed=(lung, liver))
    cx, cy, cz = (float(v) for v in c_lv)
    ux, uy, uz = (float(v) for v in ua)

    def lv_keep(off):
        # the LV is open at its base plane (towards the atria and the aortic root)
        return lambda X, Y, Z: ((X - cx) * ux + (Y - cy) * uy + (Z - cz) * uz) >= base_t - off
    p.ellipsoid(med, c_lv, (a_l + 0.6 * th + fat_t, a_s + th + fat_t, a_s + th + fat_t), rot,
                allowed=(lung, liver), keep=lv_keep(fat_t))
    p.tube(med, aa_pts, aa_r + 7.0, allowed=(lung,))
    p.tube(med, pa_pts, 19.0, allowed=(lung,))
    p.tube(med, [aa_root + (-14.0, 6.0, -20.0), aa_root + (-16.0, 4.0, -90.0)], 14.0,
           allowed=(lung,))
    # vessels behind the heart
    da = [(26.0, yv - r_vb - 6.0, -90.0), (24.0, yv - r_vb - 7.0, 0.0), (14.0, yv - r_vb - 16.0, 90.0)]
    p.tube(ids["descending aorta blood"], da, 11.0 * u(0.9, 1.1), allowed=soft)
    eso = [(2.0, yv - r_vb - 12.0, -90.0), (0.0, yv - r_vb - 12.0, 30.0), (14.0, yv - r_vb - 26.0, 90.0)]
    p.tube(ids["esophagus"], eso, 7.0, allowed=soft)
    if rng.uniform() < 0.5:
        p.tube(ids["gas"], eso, 2.0, allowed=(ids["esophagus"],))
    p.tube(ids["IVC blood"], [(-20.0, 0.0, 90.0), (-20.0, -2.0, 40.0), ra_c], 12.0, allowed=soft)
    for s in (-1, 1):
        for dz in (-9.0, 9.0):
            p.tube(ids["pulmonary vein blood"],
                   [la_c + (s * 0.7 * la_a[0], 4.0, dz * 0.6), la_c + (s * 62.0, 14.0, dz)],
                   6.0, allowed=(lung, med))
    # chambers (painter's order makes the RV a crescent around the septum)
    p.tube(ids["SVC blood"], [aa_root + (-28.0, 8.0, -90.0), ra_c + (2.0, 0.0, -10.0)],
           10.0 * u(0.9, 1.1), allowed=soft)
    p.ellipsoid(ids["RA blood"], ra_c, ra_a, allowed=soft)
    p.ellipsoid(ids["RV wall"], rv_c, rv_a + 4.0, rv_rot, allowed=soft)
    p.ellipsoid(ids["RV blood"], rv_c, rv_a, rv_rot, allowed=(ids["RV wall"],))
    p.ellipsoid(ids["LA blood"], la_c, la_a, la_rot, allowed=soft)
    p.tube(ids["pulmonary artery blood"], pa_pts, 13.0 * u(0.9, 1.1), allowed=soft)
    p.tube(ids["pulmonary artery blood"], lpa, 9.0, allowed=soft)
    p.tube(ids["pulmonary artery blood"], rpa, 9.0, allowed=soft)
    p.ellipsoid(ids["LV myocardium"], c_lv, (a_l + 0.6 * th, a_s + th, a_s + th), rot,
                allowed=soft, keep=lv_keep(0.0))
    p.ellipsoid(ids["LV blood"], c_lv, (a_l, a_s, a_s), rot, allowed=(ids["LV myocardium"],),
                keep=lv_keep(-0.5))
    psi = rng.uniform(0, 2 * np.pi)
    for dpsi in (0.0, 1.9):
        d = np.cos(psi + dpsi) * rot[1] + np.sin(psi + dpsi) * rot[2]
        p.ellipsoid(ids["papillary muscle"], c_lv + 0.2 * a_l * ua + 0.62 * a_s * d,
                    (12.0, 5.5, 5.5), rot, allowed=(ids["LV blood"],))
    p.tube(ids["ascending aorta blood"], aa_pts, aa_r, allowed=soft)
    return {"body_mm": [round(2 * ax, 1), round(2 * ay, 1)], "lv_centre_mm": c_lv.round(1).tolist(),
            "lv_axis": ua.round(3).tolist(), "myocardium_mm": round(th, 1),
            "aorta_radius_mm": round(aa_r, 1)}


# ----------------------------------------------------------------------------------------------
# abdominal


def build_abdominal(p: Painter, rng: np.random.Generator) -> dict:
    """Paint an upper-abdomen slab (liver dome to the lower kidney poles): liver, kidneys and
    spleen among bowel, stomach, pancreas, vessels, fat, muscle and bone."""
    ids = tissue_ids("abdominal")
    u = rng.uniform
    ax, ay = 138.0 * u(0.95, 1.04), 106.0 * u(0.92, 1.06)
    taper = u(-0.04, 0.04)
    tf, tm = u(10.0, 26.0), u(8.0, 12.0)
    vfat, lung, muscle = ids["visceral fat"], ids["lung"], ids["skeletal muscle"]
    liver, spleen = ids["liver"], ids["spleen"]
    _body_layers(p, ids, ax, ay, taper, 80.0, tf, tm, vfat)
    cav = (ax - tf - tm, ay - tf - tm)
    # diaphragm: lung bases above a dome that falls away posteriorly and laterally
    z_apex = -88.0 + rng.normal(0, 6)
    curv = u(80.0, 110.0)

    def dome(X, Y):
        return (X * X * np.float32(0.35) + (Y + 30.0) ** 2) * np.float32(0.5 / curv) + np.float32(z_apex)
    p.paint(lung, lambda X, Y, Z: Z < dome(X, Y), (-200, -200, -1e3), (200, 200, 0.0),
            allowed=(vfat,))
    below = lambda X, Y, Z: Z >= dome(X, Y)  # noqa: E731
    soft = (vfat,)
    sp = _spine(p, rng, ids, ay, tf, 20.0 * u(0.92, 1.08),
                soft=(vfat, lung, muscle, ids["subcutaneous fat"]))
    yv, r_vb = sp["yv"], sp["r_vb"]
    # psoas muscles, growing inferiorly
    for s in (-1, 1):
        p.tube(muscle, [(s * (r_vb + 12.0), yv + 2.0, -40.0), (s * (r_vb + 16.0), yv - 2.0, 90.0)],
               [4.0, 20.0], allowed=soft)
    z_costal = u(-10.0, 20.0)
    _ribs(p, ids, taper, 80.0, cav, rng, allowed=(muscle, lung, vfat),
          z_end=lambda X, Y: z_costal + 0.35 * np.abs(X) + 0.25 * Y)
    # liver: right lobe + left lobe, under the dome; hepatic veins; gallbladder
    rl_c = np.array([-58.0, -2.0, -28.0]) + rng.normal(0, (6.0, 5.0, 8.0))
    rl_a = np.array([68.0, 80.0, 78.0]) * u(0.9, 1.1, 3)
    ll_c = np.array([8.0, -48.0, -42.0]) + rng.normal(0, (8.0, 5.0, 6.0))
    ll_a = np.array([58.0, 32.0, 40.0]) * u(0.85, 1.15, 3)
    p.ellipsoid(liver, rl_c, rl_a, rot_z(rng.normal(0, 8)), allowed=soft, keep=below)
    p.ellipsoid(liver, ll_c, ll_a, rot_z(rng.normal(-10, 8)), allowed=soft, keep=below)
    ivc_x, ivc_y = -22.0, yv - r_vb - 8.0
    hv_top = (ivc_x, ivc_y - 4.0, -75.0)
    for end in ((-95.0, -20.0, -45.0), (-45.0, -55.0, -55.0), (10.0, -45.0, -60.0)):
        p.tube(ids["intrahepatic vessels"], [hv_top, np.add(end, rng.normal(0, 6, 3))],
               [6.0, 3.0], allowed=(liver,))
    pv_hilum = np.array([-30.0, -8.0, -12.0]) + rng.normal(0, 4, 3)
    for end in ((-85.0, 10.0, -20.0), (-60.0, -40.0, -35.0), (-5.0, -45.0, -40.0)):
        p.tube(ids["intrahepatic vessels"], [pv_hilum, np.add(end, rng.normal(0, 6, 3))],
               [6.0, 3.0], allowed=(liver,))
    gb_c = rl_c + np.array([22.0, -35.0, 48.0]) + rng.normal(0, 4, 3)
    p.ellipsoid(ids["gallbladder"], gb_c, np.array([14.0, 15.0, 28.0]) * u(0.8, 1.2),
                frame((0.3, -0.3, 1.0)), allowed=(liver, vfat))
    # spleen: posterolateral left, crescent (medial bite)
    sp_c = np.array([66.0, 30.0, -20.0]) + rng.normal(0, (5.0, 5.0, 8.0))
    sp_a = np.array([28.0, 56.0, 52.0]) * u(0.88, 1.12, 3)
    sp_rot = rot_z(-40.0 + rng.normal(0, 8))
    bite_fn, _, _ = ellipsoid_fn(sp_c + np.array([-45.0, -16.0, 0.0]), (20.0, 24.0, 38.0))
    p.ellipsoid(spleen, sp_c, sp_a, sp_rot, allowed=soft + (lung,),
                keep=lambda X, Y, Z: below(X, Y, Z) & ~bite_fn(X, Y, Z))
    # stomach: wall, fluid, gas anteriorly (supine)
    st_c = np.array([40.0, -36.0, -36.0]) + rng.normal(0, (6.0, 5.0, 8.0))
    st_a = np.array([46.0, 30.0, 40.0]) * u(0.85, 1.15, 3)
    st_rot = rot_z(rng.normal(20, 10))
    p.ellipsoid(ids["stomach wall"], st_c, st_a, st_rot, allowed=soft, keep=below)
    p.ellipsoid(ids["stomach fluid"], st_c, st_a - 5.0, st_rot, allowed=(ids["stomach wall"],))
    gas_y = float(st_c[1] - u(0.1, 0.6) * st_a[1])
    p.ellipsoid(ids["gas"], st_c, st_a - 5.0, st_rot, allowed=(ids["stomach fluid"],),
                keep=lambda X, Y, Z: Y < gas_y)
    # kidneys: perirenal fat, cortex, medulla, sinus fat, pelvis
    kid = {}
    for side, name, zc in ((-1, "right", 28.0), (1, "left", 14.0)):
        c = np.array([side * 60.0, yv + 6.0, zc]) + rng.normal(0, (4.0, 4.0, 6.0))
        a = np.array([52.0, 25.0, 29.0]) * u(0.88, 1.12, 3)  # long, hilum axis, AP
        long_ax = np.array([0.28 * side * -1, -0.12, 1.0])
        ang = np.deg2rad(rng.normal(40, 8))
        hil = np.array([-side * np.cos(ang), -np.sin(ang), 0.0])
        u_ = long_ax / np.linalg.norm(long_ax)
        h_ = hil - hil.dot(u_) * u_
        h_ /= np.linalg.norm(h_)
        krot = np.stack([u_, h_, np.cross(u_, h_)])
        cortex, medulla = ids[f"{name} kidney cortex"], ids[f"{name} kidney medulla"]
        p.ellipsoid(ids["visceral fat"], c, a + 10.0, krot, allowed=(vfat, liver, spleen))
        p.ellipsoid(cortex, c, a, krot, allowed=(vfat, liver, spleen))
        p.ellipsoid(medulla, c, a * 0.72, krot, allowed=(cortex,))
        p.ellipsoid(ids["renal sinus fat"], c + 0.5 * a[1] * h_, (a[0] * 0.5, a[1] * 0.45, a[2] * 0.45),
                    krot, allowed=(cortex, medulla, vfat))
        p.ellipsoid(ids["renal pelvis"], c + 0.62 * a[1] * h_, (a[0] * 0.25, a[1] * 0.28, a[2] * 0.28),
                    krot, allowed=(ids["renal sinus fat"], cortex, medulla, vfat))
        kid[name] = (c, c + 1.0 * a[1] * h_)
    # great vessels, portal system, pancreas
    ao = (14.0, yv - r_vb - 10.0)
    p.tube(ids["aorta blood"], [(ao[0], ao[1], -100.0), (ao[0] - 2.0, ao[1] - 2.0, 100.0)],
           11.0 * u(0.85, 1.1), allowed=soft + (muscle, lung))
    p.tube(ids["IVC blood"], [(ivc_x, ivc_y, -100.0), (ivc_x, ivc_y, 100.0)], 12.0 * u(0.85, 1.1),
           allowed=soft + (liver,))
    vein = ids["portal/splenic/renal vein blood"]
    conf = np.array([-4.0, ao[1] - 28.0, 20.0]) + rng.normal(0, 3, 3)
    pancreas = ids["pancreas"]
    tail = np.array([sp_c[0] - 22.0, sp_c[1] - 10.0, sp_c[2] + 20.0])
    pan_pts = [conf + (-14.0, 6.0, 12.0), conf + (6.0, -10.0, -4.0), conf + (36.0, 2.0, -12.0), tail]
    p.tube(pancreas, pan_pts, [17.0, 12.0, 12.0, 10.0], allowed=soft)
    p.tube(vein, [conf + (6.0, -8.0, 90.0), conf, pv_hilum], 7.5, allowed=soft + (pancreas, liver))
    p.tube(vein, [conf, conf + (36.0, 12.0, -12.0), tail + (4.0, 12.0, 0.0)], 5.5,
           allowed=soft + (pancreas,))
    for name in ("left", "right"):
        p.tube(vein, [kid[name][1], (ivc_x, ivc_y, kid[name][0][2] - 10.0)], 5.5,
               allowed=(vfat, ids["renal sinus fat"]))
    # colon (gas or content) and small-bowel loops (fluid) in the remaining fat
    wall = ids["bowel wall"]
    colon = [(-92.0, 12.0, 100.0), (-92.0, 8.0, 30.0), (-78.0, -40.0, 18.0), (0.0, -62.0, 40.0),
             (78.0, -45.0, 5.0), (95.0, 15.0, -5.0), (98.0, 22.0, 100.0)]
    colon = [np.add(q, rng.normal(0, (6.0, 6.0, 8.0))) for q in colon]
    r_col = 19.0 * u(0.85, 1.15)
    p.tube(wall, colon, r_col, allowed=soft)
    for k in range(len(colon) - 1):
        content = ids["gas"] if rng.uniform() < 0.35 else ids["colon content"]
        p.tube(content, colon[k:k + 2], r_col - 3.5, allowed=(wall,))
    for _ in range(int(rng.integers(6, 10))):
        q = np.array([u(-70, 70), u(-75, 0), u(20, 90)])
        pts = [q.copy()]
        for _ in range(5):
            d = rng.normal(0, 1, 3)
            q = q + 22.0 * d / np.linalg.norm(d)
            pts.append(q.copy())
        r = u(9.0, 13.0)
        p.tube(wall, pts, r, allowed=soft)
        p.tube(ids["small bowel fluid"], pts, r - 3.0, allowed=(wall,))
    return {"body_mm": [round(2 * ax, 1), round(2 * ay, 1)], "liver_centre_mm": rl_c.round(1).tolist(),
            "spleen_centre_mm": sp_c.round(1).tolist(),
            "kidney_centres_mm": {k: v[0].round(1).tolist() for k, v in kid.items()}}


BUILDERS = {"cardiac": build_cardiac, "abdominal": build_abdominal}


def build_tissue_map(task: str, size: int, n_slices: int, rng: np.random.Generator,
                     ) -> tuple[np.ndarray, Grid, dict]:
    """The tissue map (uint8 ``D×H×W``), its grid, and the drawn anatomy parameters."""
    _tissues(task)
    grid = make_grid(task, size, n_slices)
    painter = Painter(grid, SLAB_MM[task], rng)
    params = BUILDERS[task](painter, rng)
    params.update(scale=[round(s, 3) for s in painter.scale],
                  shift_mm=[round(s, 1) for s in painter.shift])
    return painter.tissue, grid, params
