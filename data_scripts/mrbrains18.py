"""MRBrainS18 (Grand Challenge on MR Brain Segmentation at MICCAI 2018): steps, then check.

    python data_scripts/mrbrains18.py [--data-root DIR] [--verify-only] [--deep]

Registration-only: the challenge hands out the data after a registration, so this script prints
the steps and, once the files are in place, checks them with
``cmrlab.data.mrbrains.check_dataset``.
"""
from __future__ import annotations

import _common

INSTRUCTIONS = """
MRBrainS18: 7 training subjects scanned at 3 T with T1, T1-IR and T2-FLAIR (registered to the
FLAIR, 240x240x48), labelled with 10 classes (grey matter, basal ganglia, white matter, white
matter lesions, CSF, ventricles, cerebellum, brain stem, infarction, other); cmrlab maps them to
background/CSF/GM/WM. Terms: those of the challenge (registration).

1. Open https://mrbrains18.isi.uu.nl, register, and download the training data.
2. Unpack it so that each subject's folder sits in {folder}/training:
       {folder}/training/<id>/pre/FLAIR.nii.gz
       {folder}/training/<id>/pre/reg_IR.nii.gz
       {folder}/training/<id>/pre/reg_T1.nii.gz
       {folder}/training/<id>/pre/T1.nii.gz
       {folder}/training/<id>/segm.nii.gz
3. Check it:
       python data_scripts/mrbrains18.py --data-root {root}
"""


main = _common.registration_main(__doc__, "MRBrainS18", "MRBrainS18", "mrbrains", INSTRUCTIONS)

if __name__ == "__main__":
    _common.run(main)
