"""BraTS 2021 (RSNA-ASNR-MICCAI Brain Tumor Segmentation): steps, then check.

    python data_scripts/brats.py [--data-root DIR] [--verify-only] [--deep]

Registration-only: the data need a Synapse account and acceptance of the data-use terms, so this
script prints the steps and, once the files are in place, checks them with
``cmrlab.data.brats.check_dataset``.
"""
from __future__ import annotations

import _common

INSTRUCTIONS = """
BraTS 2021: 1251 training cases of pre-operative glioma MRI, each with T1, T1ce (contrast), T2
and FLAIR volumes (240x240x155 at 1 mm, skull-stripped, co-registered) and a tumour label map
(0 background, 1 necrotic core, 2 oedema, 4 enhancing tumour). Terms: the data-use terms shown
on Synapse (and TCIA); cite the BraTS 2021 summary paper (Baid et al. 2021, arXiv:2107.02314),
Menze et al. 2015 and Bakas et al. 2017.

1. Create a free account at https://www.synapse.org and sign in.
2. Open the BraTS 2021 project (Synapse ids syn25829067 and syn27046444, "Files" tab), accept
   the data-use terms, and download the training-data archive (a .tar of about 1,251
   BraTS2021_XXXXX folders). The same data are on TCIA ("RSNA-ASNR-MICCAI-BraTS-2021").
3. Unpack it so that every case folder sits directly in {folder}:
       {folder}/BraTS2021_00000/BraTS2021_00000_t1.nii.gz
       {folder}/BraTS2021_00000/BraTS2021_00000_t1ce.nii.gz
       {folder}/BraTS2021_00000/BraTS2021_00000_t2.nii.gz
       {folder}/BraTS2021_00000/BraTS2021_00000_flair.nii.gz
       {folder}/BraTS2021_00000/BraTS2021_00000_seg.nii.gz
       ...
   (BraTS 2023 and later use other names and label 3 for the enhancing tumour: use 2021.)
4. Check it:
       python data_scripts/brats.py --data-root {root}
"""


main = _common.registration_main(__doc__, "BraTS 2021", "BraTS2021", "brats", INSTRUCTIONS)

if __name__ == "__main__":
    _common.run(main)
