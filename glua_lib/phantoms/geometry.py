"""Geometry of the synthetic phantoms: the voxel grid, the random deformation, the painter.

Every subject is a stack of axial slices through a torso, ``D×H×W`` with slice 0 the most superior,
row 0 anterior and column 0 the patient's right (the usual radiological display). Anatomy is built
in a *model* frame in millimetres (x to the patient's left, y posterior, z inferior, origin at the
centre of the field of view) by painting simple solids (ellipsoids, capsules, elliptic cylinders)
in order, later ones over earlier ones, each allowed to cover only given tissues. Each voxel's model
coordinate is its world coordinate pushed through the subject's random smooth deformation (a cubic
B-spline free-form field) and a small random affine (scale, in-plane rotation, shift), so no two
subjects have the same shapes. Every random number is drawn in a fixed order from the subject's
anatomy stream and in millimetre units, so one seed gives the same anatomy at any grid size.

The result is a *tissue map* (uint8 ids into :data:`glua_lib.phantoms.tissues.TISSUES`). The
task builders that paint it are :mod:`glua_lib.phantoms.cardiac` and
:mod:`glua_lib.phantoms.abdominal`, from the body parts both share
(:mod:`glua_lib.phantoms.body`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

FOV_MM = 300.0  # in-plane field of view (H = W), so the in-plane spacing is FOV_MM / size
SLAB_MM = {"cardiac": 128.0, "abdominal": 160.0}  # slab thickness, so dz = SLAB_MM / n_slices


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
