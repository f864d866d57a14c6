"""The cardiac phantom: a chest slab from the great vessels to the apex of the heart.

:func:`build_cardiac` paints MYO, LAC, LVC and AA
(:data:`~glua_lib.phantoms.tissues.CARDIAC_TISSUES`) among their unlabelled neighbours: lungs,
fat, muscle, spine, ribs, the other heart chambers and the vessels.
"""
from __future__ import annotations

import numpy as np

from glua_lib.phantoms.body import body_layers, ribs, spine
from glua_lib.phantoms.geometry import Painter, frame, rot_z
from glua_lib.phantoms.tissues import tissue_ids


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
    body_layers(p, ids, ax, ay, taper, 64.0, tf, tm, lung)
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
    sp = spine(p, rng, ids, ay, tf, 17.0 * u(0.92, 1.08), soft=soft_all + (muscle, fat))
    yv, r_vb = sp["yv"], sp["r_vb"]
    ys = -(ay - tf - tm * 0.45)
    p.cylinder(ids["cortical bone"], 0.0, ys, 15.0, 7.5, allowed=(muscle, lung, fat))
    p.cylinder(ids["bone marrow"], 0.0, ys, 12.0, 4.5, allowed=(ids["cortical bone"],))
    ribs(p, ids, taper, 64.0, cav, rng, allowed=(muscle, lung))
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
    da = [(26.0, yv - r_vb - 6.0, -90.0), (24.0, yv - r_vb - 7.0, 0.0),
          (14.0, yv - r_vb - 16.0, 90.0)]
    p.tube(ids["descending aorta blood"], da, 11.0 * u(0.9, 1.1), allowed=soft)
    eso = [(2.0, yv - r_vb - 12.0, -90.0), (0.0, yv - r_vb - 12.0, 30.0),
           (14.0, yv - r_vb - 26.0, 90.0)]
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
