"""Body parts both phantom tasks share: the body wall, the spine and the ribs.

Each function paints into a :class:`~glua_lib.phantoms.geometry.Painter`, drawing its random
numbers from the subject's anatomy stream in a fixed order (:mod:`glua_lib.phantoms.geometry`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from glua_lib.phantoms.geometry import Painter


def body_layers(p: Painter, ids: dict[str, int], ax: float, ay: float, taper: float,
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


def spine(p: Painter, rng: np.random.Generator, ids: dict[str, int], ay: float, tf: float,
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


def ribs(p: Painter, ids: dict[str, int], taper: float, zref: float, cav: tuple[float, float],
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
