"""Rendering the phantoms' tissue maps as MR-like and CT-like images, and the local gap map.

Appearance follows the tissue table of ``shared/method.md`` §4 (values marked there as relative
for MR, Hounsfield units for CT). Cardiac MR is a bSSFP sequence (fat and blood bright, myocardium
dark), cardiac CT an arterial-phase CTA (blood very bright); abdominal MR is a fat-suppressed
T2-SPIR sequence (fat dark, fluid brightest, kidneys bright, liver the darkest organ, flowing blood
a dark flow void), abdominal CT a portal-venous scan. Hence the contrast inversions between the
modalities: fat bright in bSSFP / dark in CT; bone dark in MR / bright in CT; vessels dark in
T2-SPIR / bright in CT; the kidney medulla brighter than the cortex in T2 but darker in CT.
Deviations from that table: bSSFP myocardium 0.26 and liver 0.42 instead of ≈0.6 and ≈0.74
(bSSFP blood-to-myocardium contrast is about 3–4 : 1), and the enhanced CTA myocardium at 150 HU.

Rendering of one subject (``render``):

1. per-tissue mean and within-tissue texture (a smooth unit-variance random field, correlation
   ≈5 mm, times a per-tissue amplitude), with small per-subject jitter of the tissue means
   (MR ×exp(N(0, 0.05)), CT +N(0, 6) HU, CT contrast enhancement ×U(0.85, 1.15));
2. blur with a Gaussian point-spread function (MR σ = 1.6 mm in-plane / 2.0 mm through-plane, at
   least 0.6 voxel; CT σ = 0.7 / 0.9 mm, at least 0.4 voxel), so MR is the blurrier modality;
3. MR: a smooth multiplicative bias field ``exp(P)`` with ``P`` a random polynomial of total
   degree ≤ 2 in (z, y, x), then Rician noise (magnitude of the signal plus complex Gaussian noise,
   σ = 1.5–3 % of the blood/fluid signal); CT: Gaussian noise of 12–25 HU;
4. normalisation to [-1, 1]: CT is clipped to a fixed HU window and scaled linearly (cardiac
   [-200, 350] HU, abdominal [-350, 350] HU); MR is clipped at its volume's 2nd and 98th
   percentiles and scaled linearly so that those map to -1 and 1 (a percentile window, the MR
   counterpart of the CT window; both modalities share the tanh range of the image generators).
   The cardiac window is narrower than the MM-WHS converter's [-200, 600] HU
   (``data_prep.common.CT_WINDOWS``) and is kept that way: it clips the contrast-filled blood
   pool, which then looks alike in MR and CT after normalisation, so the gap is largest in the
   myocardium and LV cavity, the order of the literature's no-adaptation Dice (AA and LAC
   easiest, MYO and LVC hardest). With [-200, 600] HU that order inverts (the blood classes
   get the largest gaps); ``benchmarks/RESULTS.md`` measures both.

The local gap (``gap_map``) is defined from the rendering parameters, not from noisy images:
``m_MR(t)`` and ``m_CT(t)`` are the normalised noise-, texture- and bias-free intensities of tissue
``t`` (MR normalised with the 2nd/98th percentiles of the noise-free MR render of the same tissue
map), ``d(x) = m_MR(t(x)) - m_CT(t(x))``, and

    gap(x) = ½·|d(x)| + ½·|d(x) − (G_σ * d)(x)|,   σ = 8 mm,

the mean of an *appearance* term (how differently the tissue itself looks after normalisation)
and a *context* term (how differently it stands out from its neighbourhood: ``d − G*d`` is the
difference between the two modalities' local contrasts ``m − G*m``). It lies in [0, 3] (in practice
below about 2.2: the appearance term is at most 2, bone and fat reach 0.9–1.9).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from glua_lib.phantoms.geometry import Grid, smooth_noise
from glua_lib.phantoms.tissues import TISSUES

# appearance -> (mean, texture); MR mean relative (blood / fluid ≈ 1), texture a fraction of
# the mean; CT mean and texture in HU
APPEARANCE: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    "cardiac": {  # MR: 3D bSSFP; CT: arterial-phase CT angiography
        "mr": {
            "air": (0.0, 0.0), "lung": (0.04, 0.5), "fat": (0.75, 0.04),
            "muscle": (0.26, 0.06), "myocardium": (0.26, 0.05),
            "arterial_blood": (1.0, 0.03), "right_blood": (0.95, 0.03),
            "svc_blood": (0.92, 0.05), "unenhanced_blood": (0.9, 0.03),
            "bone": (0.06, 0.3), "marrow": (0.55, 0.08), "fluid": (0.9, 0.03),
            "cord": (0.3, 0.04), "disc": (0.5, 0.05), "liver": (0.42, 0.05),
            "spleen": (0.5, 0.05), "bowel_wall": (0.35, 0.06), "gas": (0.02, 0.3),
        },
        "ct": {
            "air": (-1000.0, 0.0), "lung": (-830.0, 50.0), "fat": (-100.0, 10.0),
            "muscle": (50.0, 10.0), "myocardium": (150.0, 12.0),
            "arterial_blood": (400.0, 15.0), "right_blood": (280.0, 25.0),
            "svc_blood": (800.0, 150.0), "unenhanced_blood": (45.0, 8.0),
            "bone": (1100.0, 120.0), "marrow": (230.0, 40.0), "fluid": (8.0, 6.0),
            "cord": (35.0, 6.0), "disc": (85.0, 10.0), "liver": (85.0, 10.0),
            "spleen": (120.0, 15.0), "bowel_wall": (60.0, 10.0), "gas": (-980.0, 20.0),
        },
    },
    "abdominal": {  # MR: T2-SPIR (fat-suppressed); CT: portal-venous phase
        "mr": {
            "air": (0.0, 0.0), "lung": (0.03, 0.5), "fat": (0.12, 0.08),
            "muscle": (0.18, 0.06), "bone": (0.05, 0.3), "marrow": (0.22, 0.08),
            "fluid": (1.0, 0.03), "cord": (0.45, 0.04), "disc": (0.7, 0.05),
            "liver": (0.19, 0.05), "venous_blood": (0.08, 0.3), "arterial_blood": (0.06, 0.3),
            "kidney_cortex": (0.62, 0.05), "kidney_medulla": (0.82, 0.05),
            "spleen": (0.40, 0.05), "pancreas": (0.38, 0.06), "bowel_wall": (0.32, 0.08),
            "gas": (0.02, 0.3), "feces": (0.3, 0.4),
        },
        "ct": {
            "air": (-1000.0, 0.0), "lung": (-850.0, 50.0), "fat": (-100.0, 10.0),
            "muscle": (55.0, 10.0), "bone": (900.0, 120.0), "marrow": (220.0, 40.0),
            "fluid": (8.0, 6.0), "cord": (35.0, 6.0), "disc": (85.0, 10.0),
            "liver": (105.0, 10.0), "venous_blood": (165.0, 12.0),
            "arterial_blood": (175.0, 12.0), "kidney_cortex": (170.0, 12.0),
            "kidney_medulla": (110.0, 12.0), "spleen": (118.0, 10.0),
            "pancreas": (95.0, 12.0), "bowel_wall": (75.0, 12.0), "gas": (-980.0, 20.0),
            "feces": (-60.0, 120.0),
        },
    },
}
# appearances whose CT value is contrast enhancement (scaled together per subject)
ENHANCED = ("myocardium", "arterial_blood", "right_blood", "svc_blood", "venous_blood",
            "kidney_cortex", "kidney_medulla", "spleen", "liver")
MR_SEQUENCE = {"cardiac": "bSSFP", "abdominal": "T2-SPIR"}
CT_PHASE = {"cardiac": "arterial-phase CTA", "abdominal": "portal-venous"}
CT_WINDOW = {"cardiac": (-200.0, 350.0), "abdominal": (-350.0, 350.0)}
MR_PERCENTILES = (2.0, 98.0)
PSF_SIGMA_MM = {"mr": (2.0, 1.6, 1.6), "ct": (0.9, 0.7, 0.7)}  # (z, y, x)
PSF_MIN_VOXELS = {"mr": 0.6, "ct": 0.4}
GAP_SIGMA_MM = 8.0


def normalisation_info(task: str, modality: str) -> dict:
    """What the normalisation does, for the manifest."""
    if modality == "ct":
        lo, hi = CT_WINDOW[task]
        return {"method": "hu_window", "window_hu": [lo, hi], "range": [-1.0, 1.0],
                "formula": "clip(HU, lo, hi) scaled linearly so lo -> -1, hi -> 1"}
    return {"method": "percentile_window", "percentiles": list(MR_PERCENTILES),
            "range": [-1.0, 1.0],
            "formula": "clip(I, p2, p98) of the volume, scaled linearly so p2 -> -1, p98 -> 1"}


def _luts(task: str, modality: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-tissue-id mean and texture amplitude (absolute units), default parameters."""
    table = APPEARANCE[task][modality]
    tissues = TISSUES[task]
    mean = np.zeros(256, np.float64)
    tex = np.zeros(256, np.float64)
    for i, t in enumerate(tissues):
        m, s = table[t.appearance]
        mean[i] = m
        tex[i] = m * s if modality == "mr" else s
    return mean, tex


def normalise_ct(hu: np.ndarray, task: str) -> np.ndarray:
    lo, hi = CT_WINDOW[task]
    out = (np.clip(hu, lo, hi) - np.float32(lo)) * np.float32(2.0 / (hi - lo)) - np.float32(1.0)
    return out.astype(np.float32)


def normalise_mr(img: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    p_lo, p_hi = (float(v) for v in np.percentile(img, MR_PERCENTILES))
    scale = 2.0 / max(p_hi - p_lo, 1e-6)
    out = (np.clip(img, p_lo, p_hi) - np.float32(p_lo)) * np.float32(scale) - np.float32(1.0)
    return out.astype(np.float32), (p_lo, p_hi)


def _psf_sigma(modality: str, spacing) -> tuple[float, ...]:
    return tuple(max(s / d, PSF_MIN_VOXELS[modality])
                 for s, d in zip(PSF_SIGMA_MM[modality], spacing))


def _bias_field(grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """exp of a random polynomial of total degree ≤ 2 in normalised (z, y, x)."""
    half = [max(abs(a[0]), abs(a[-1])) or 1.0 for a in (grid.z, grid.y, grid.x)]
    bases = [np.stack([np.ones_like(a), a / h, 1.5 * (a / h) ** 2 - 0.5], axis=1)
             for a, h in zip((grid.z, grid.y, grid.x), half)]
    coef = np.zeros((3, 3, 3))
    for i in range(3):
        for j in range(3):
            for k in range(3):
                deg = i + j + k
                if 1 <= deg <= 2:
                    coef[i, j, k] = rng.normal(0, 0.22 if deg == 1 else 0.1) * (0.5 if i else 1.0)
    t = coef @ bases[2].T
    t = np.matmul(bases[1], t)
    na, h, w = t.shape
    poly = (bases[0] @ t.reshape(na, h * w)).reshape(len(grid.z), h, w)
    return np.exp(poly).astype(np.float32)


def render(task: str, modality: str, tissue: np.ndarray, grid: Grid,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
    """Render a tissue map: (normalised image, raw image, record of the drawn parameters).

    The raw image is in relative units (MR) or HU (CT); the normalised one is float32 in [-1, 1].
    """
    table = APPEARANCE[task][modality]
    keys = sorted(table)
    if modality == "mr":
        jit = dict(zip(keys, np.exp(rng.normal(0, 0.05, len(keys)))))
        enh = 1.0
    else:
        jit = dict(zip(keys, rng.normal(0, 6.0, len(keys))))
        enh = float(rng.uniform(0.85, 1.15))
    mean = np.zeros(256, np.float32)
    tex = np.zeros(256, np.float32)
    for i, t in enumerate(TISSUES[task]):
        m, s = table[t.appearance]
        if modality == "mr":
            mean[i] = m * jit[t.appearance]
            tex[i] = mean[i] * s
        else:
            base = m * enh if (t.appearance in ENHANCED and m > 0) else m
            mean[i] = base + jit[t.appearance] if t.appearance != "air" else m
            tex[i] = s
    noise_field = smooth_noise(grid, rng, 5.0, 6.0)
    img = tex[tissue]
    img *= noise_field
    img += mean[tissue]
    del noise_field
    img = ndimage.gaussian_filter(img, _psf_sigma(modality, grid.spacing), truncate=3.0,
                                  mode="nearest")
    if modality == "mr":
        img *= _bias_field(grid, rng)
        sigma = float(rng.uniform(0.015, 0.03))
        n1 = rng.standard_normal(img.shape, dtype=np.float32)
        n1 *= np.float32(sigma)
        img += n1
        np.square(img, out=img)
        n1 = rng.standard_normal(img.shape, dtype=np.float32)
        n1 *= np.float32(sigma)
        np.square(n1, out=n1)
        img += n1
        np.sqrt(img, out=img)
        del n1
        norm, (p_lo, p_hi) = normalise_mr(img)
        record = {"noise_sigma": round(sigma, 4), "p2": round(p_lo, 5), "p98": round(p_hi, 5)}
    else:
        sigma = float(rng.uniform(12.0, 25.0))
        n1 = rng.standard_normal(img.shape, dtype=np.float32)
        n1 *= np.float32(sigma)
        img += n1
        del n1
        norm = normalise_ct(img, task)
        record = {"noise_sigma_hu": round(sigma, 2), "enhancement": round(enh, 3)}
    return norm, img.astype(np.float32, copy=False), record


# ----------------------------------------------------------------------------------------------
# the gap


def _weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values, kind="stable")
    cw = np.cumsum(weights[order])
    k = int(np.searchsorted(cw, q / 100.0 * cw[-1], side="left"))
    return float(values[order][min(k, len(order) - 1)])


def expected_normalised(task: str, tissue: np.ndarray | None = None,
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(m_MR, m_CT): each tissue's normalised intensity without noise, texture, bias or blur.

    CT uses its fixed window. MR uses the 2nd/98th percentiles of the noise-free MR render of
    ``tissue`` (a volume's composition sets its MR normalisation); without a tissue map, the
    percentiles are taken as the darkest and brightest tissue means.
    """
    n = len(TISSUES[task])
    mr, _ = _luts(task, "mr")
    ct, _ = _luts(task, "ct")
    mr, ct = mr[:n], ct[:n]
    if tissue is None:
        p_lo, p_hi = float(mr.min()), float(mr.max())
    else:
        counts = np.bincount(np.asarray(tissue).ravel(), minlength=n)[:n].astype(np.float64)
        p_lo = _weighted_percentile(mr, counts, MR_PERCENTILES[0])
        p_hi = _weighted_percentile(mr, counts, MR_PERCENTILES[1])
    m_mr = np.clip(2 * (mr - p_lo) / max(p_hi - p_lo, 1e-6) - 1, -1, 1)
    lo, hi = CT_WINDOW[task]
    m_ct = np.clip(2 * (ct - lo) / (hi - lo) - 1, -1, 1)
    return m_mr, m_ct


def gap_map(task: str, tissue, spacing=None, sigma_mm: float = GAP_SIGMA_MM) -> np.ndarray:
    """Per-voxel local gap between the modalities (float32 ``D×H×W``, in [0, 3]).

    ``tissue`` is a tissue map or anything with ``.tissue`` and ``.spacing`` (a PhantomSubject);
    ``spacing`` (mm, D×H×W) sets the context scale. See the module docstring for the definition.
    """
    if hasattr(tissue, "tissue"):
        spacing = tissue.spacing if spacing is None else spacing
        tissue = tissue.tissue
    tissue = np.asarray(tissue)
    if spacing is None:
        spacing = (1.0, 1.0, 1.0)
    m_mr, m_ct = expected_normalised(task, tissue)
    d_lut = np.zeros(256, np.float32)
    d_lut[: len(m_mr)] = (m_mr - m_ct).astype(np.float32)
    d = d_lut[tissue]
    ctx = ndimage.gaussian_filter(d, [sigma_mm / s for s in spacing], truncate=3.0,
                                  mode="nearest")
    np.subtract(d, ctx, out=ctx)
    np.abs(ctx, out=ctx)
    np.abs(d, out=d)
    d += ctx
    d *= np.float32(0.5)
    return d


def tissue_gap_table(task: str, tissue: np.ndarray | None = None) -> list[dict]:
    """Per tissue: name, appearance, label, m_MR, m_CT and the appearance gap |m_MR - m_CT|."""
    m_mr, m_ct = expected_normalised(task, tissue)
    return [{"tissue": t.name, "appearance": t.appearance, "label": t.label,
             "mr": round(float(a), 3), "ct": round(float(b), 3), "gap": round(abs(float(a - b)), 3)}
            for t, a, b in zip(TISSUES[task], m_mr, m_ct)]
