"""M&Ms (Multi-Centre, Multi-Vendor & Multi-Disease Cardiac Segmentation, 2020): steps, then check.

    python data_scripts/mnms.py [--data-root DIR] [--verify-only] [--deep]

Registration-only: the data come through a request form, so this script prints the steps and,
once the files are in place, checks them with ``cmrlab.data.mnms.check_dataset``.
"""
from __future__ import annotations

import _common

INSTRUCTIONS = """
M&Ms (2020): 375 subjects (345 without restriction) from 4 scanner vendors and 6 centres;
short-axis cine with LV, myocardium and RV labelled at ED and ES. Terms: those of the data
request form on the challenge site (read them there).

1. Open https://www.ub.edu/mnms/ and fill in the data request form (name, institution,
   acceptance of the terms of use). The download link arrives by e-mail.
2. Download the "OpenDataset" archive and unpack it.
3. Move the OpenDataset folder so that these paths exist:
       {folder}/OpenDataset/Training/Labeled/<ID>/<ID>_sa.nii.gz
       {folder}/OpenDataset/Training/Labeled/<ID>/<ID>_sa_gt.nii.gz
       {folder}/OpenDataset/Training/Unlabeled/   {folder}/OpenDataset/Validation/
       {folder}/OpenDataset/Testing/
       {folder}/OpenDataset/211230_M&Ms_Dataset_information_diagnosis_opendataset.csv
   (the csv gives each subject's vendor, centre, pathology and ED/ES frames).
4. Check it:
       python data_scripts/mnms.py --data-root {root}
"""


main = _common.registration_main(__doc__, "M&Ms", "MnM", "mnms", INSTRUCTIONS)

if __name__ == "__main__":
    _common.run(main)
