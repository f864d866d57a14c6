"""The abdominal phantom: an upper-abdomen slab from the liver dome to the lower kidney poles.

:func:`build_abdominal` paints the liver, both kidneys and the spleen
(:data:`~glua_lib.phantoms.tissues.ABDOMINAL_TISSUES`) among bowel, stomach, pancreas, vessels,
fat, muscle and bone.
"""
from __future__ import annotations

import numpy as np

from glua_lib.phantoms.body import body_layers, ribs, spine
from glua_lib.phantoms.geometry import Painter, ellipsoid_fn, frame, rot_z
from glua_lib.phantoms.tissues import tissue_ids


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
    body_layers(p, ids, ax, ay, taper, 80.0, tf, tm, vfat)
    cav = (ax - tf - tm, ay - tf - tm)
    # diaphragm: lung bases above a dome that falls away posteriorly and laterally
    z_apex = -88.0 + rng.normal(0, 6)
    curv = u(80.0, 110.0)

    def dome(X, Y):
        return ((X * X * np.float32(0.35) + (Y + 30.0) ** 2) * np.float32(0.5 / curv)
                + np.float32(z_apex))
    p.paint(lung, lambda X, Y, Z: Z < dome(X, Y), (-200, -200, -1e3), (200, 200, 0.0),
            allowed=(vfat,))
    below = lambda X, Y, Z: Z >= dome(X, Y)  # noqa: E731
    soft = (vfat,)
    sp = spine(p, rng, ids, ay, tf, 20.0 * u(0.92, 1.08),
                soft=(vfat, lung, muscle, ids["subcutaneous fat"]))
    yv, r_vb = sp["yv"], sp["r_vb"]
    # psoas muscles, growing inferiorly
    for s in (-1, 1):
        p.tube(muscle, [(s * (r_vb + 12.0), yv + 2.0, -40.0), (s * (r_vb + 16.0), yv - 2.0, 90.0)],
               [4.0, 20.0], allowed=soft)
    z_costal = u(-10.0, 20.0)
    ribs(p, ids, taper, 80.0, cav, rng, allowed=(muscle, lung, vfat),
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
        p.ellipsoid(ids["renal sinus fat"], c + 0.5 * a[1] * h_,
                    (a[0] * 0.5, a[1] * 0.45, a[2] * 0.45),
                    krot, allowed=(cortex, medulla, vfat))
        p.ellipsoid(ids["renal pelvis"], c + 0.62 * a[1] * h_,
                    (a[0] * 0.25, a[1] * 0.28, a[2] * 0.28),
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
    pan_pts = [conf + (-14.0, 6.0, 12.0), conf + (6.0, -10.0, -4.0), conf + (36.0, 2.0, -12.0),
               tail]
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
    return {"body_mm": [round(2 * ax, 1), round(2 * ay, 1)],
            "liver_centre_mm": rl_c.round(1).tolist(),
            "spleen_centre_mm": sp_c.round(1).tolist(),
            "kidney_centres_mm": {k: v[0].round(1).tolist() for k, v in kid.items()}}
