"""The synthetic-data cache is keyed by ``synthetic.GENERATOR_VERSION``: a guard that it is bumped.

``get_dataset`` reuses ``<data root>/synthetic/<dataset>/…-v<version>/`` when it exists. If a
phantom changes its output and the version stays, every user (and every later test run on the same
machine) silently keeps the old data. This test records a few summary numbers of one synthetic
ACDC patient and one BraTS case per version; when the generators' output changes, it fails until
the version is bumped and the new numbers are recorded here. The tolerances absorb float rounding
across CPUs (a voxel or two of a label, 1e-4 of a mean), not a change of the phantom.
"""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from cmrlab.data import synthetic

#: Summary numbers of ``write_acdc(n_cases=1, seed=0)`` (patient001: 4-D image, first ``_gt``
#: label map) and ``write_brats(n_cases=1, seed=0)`` (T1 and the segmentation), per version.
FINGERPRINTS = {
    3: {"acdc": {"shape": [128, 128, 8, 16], "mean": 192.01571941375732, "std": 264.24641445779986,
                 "labels": [119623, 5352, 2479, 3618]},
        "brats": {"shape": [99, 117, 95], "mean": 0.012220505893862282, "std": 0.016465466801570957,
                  "labels": [1096114, 279, 2859, 1133]}},
}


def _fingerprint(root):
    acdc = synthetic.write_acdc(root / "ACDC", n_cases=1, seed=0, progress=False)
    case = acdc / "database" / "training" / "patient001"
    img = np.asarray(nib.load(next(case.glob("*_4d.nii.gz"))).dataobj, dtype=np.float64)
    lab = np.asarray(nib.load(sorted(case.glob("*_gt.nii.gz"))[0]).dataobj)
    out = {"acdc": {"shape": list(img.shape), "mean": img.mean(), "std": img.std(),
                    "labels": [int((lab == k).sum()) for k in range(4)]}}
    brats = synthetic.write_brats(root / "BraTS", n_cases=1, seed=0, progress=False)
    case = next(p for p in sorted(brats.iterdir()) if p.is_dir())
    t1 = np.asarray(nib.load(next(case.glob("*_t1.nii.gz"))).dataobj, dtype=np.float64)
    seg = np.asarray(nib.load(next(case.glob("*_seg.nii.gz"))).dataobj)
    out["brats"] = {"shape": list(t1.shape), "mean": t1.mean(), "std": t1.std(),
                    "labels": [int((seg == k).sum()) for k in (0, 1, 2, 4)]}
    return out


def test_generator_output_matches_its_version(tmp_path):
    version = synthetic.GENERATOR_VERSION
    assert version in FINGERPRINTS, (
        f"GENERATOR_VERSION {version} has no recorded fingerprint: record _fingerprint()'s numbers here")
    got = _fingerprint(tmp_path)
    hint = (f"the synthetic generators' output changed without a version bump: raise "
            f"cmrlab.data.synthetic.GENERATOR_VERSION (now {version}) and record the new numbers here, "
            "so that cached copies are regenerated")
    for dataset, expected in FINGERPRINTS[version].items():
        ours = got[dataset]
        assert ours["shape"] == expected["shape"], (dataset, hint)
        assert ours["mean"] == pytest.approx(expected["mean"], rel=1e-4), (dataset, "mean", hint)
        assert ours["std"] == pytest.approx(expected["std"], rel=1e-4), (dataset, "std", hint)
        for k, (a, b) in enumerate(zip(ours["labels"], expected["labels"])):
            assert abs(a - b) <= max(3, 0.002 * b), (dataset, f"label {k}: {a} voxels, recorded {b}", hint)
