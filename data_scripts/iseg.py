"""iSeg-2017 (6-month infant brain MRI segmentation): steps, then check.

    python data_scripts/iseg.py [--data-root DIR] [--verify-only] [--deep]

Registration-only: the challenge hands out the data after a registration, so this script prints
the steps and, once the files are in place, checks them with ``cmrlab.data.iseg.check_dataset``.
"""
from __future__ import annotations

import _common

INSTRUCTIONS = """
iSeg-2017: 10 labelled training subjects and a test set, infants scanned at about 6 months (the
"isointense" phase with low grey/white contrast); T1 and T2 volumes, 144x192x256, in Analyze
format (.hdr/.img); labels 0 background, 10 CSF, 150 grey matter, 250 white matter.
Terms: those of the challenge (registration); cite Wang et al., IEEE TMI 2019 (the iSeg-2017 benchmark paper).

1. Open http://iseg2017.web.unc.edu, go to its registration/download page and register.
2. Download the training data archive (iSeg-2017-Training) and, if you want, the testing one.
3. Unpack them into {folder} so that these paths exist:
       {folder}/iSeg-2017-Training/subject-1-T1.hdr   (and .img)
       {folder}/iSeg-2017-Training/subject-1-T2.hdr   (and .img)
       {folder}/iSeg-2017-Training/subject-1-label.hdr (and .img)
       ... subject-2 to subject-10
       {folder}/iSeg-2017-Testing/... (the test subjects, without labels; optional)
4. Check it:
       python data_scripts/iseg.py --data-root {root}
"""


main = _common.registration_main(__doc__, "iSeg-2017", "iSeg-2017", "iseg", INSTRUCTIONS)

if __name__ == "__main__":
    _common.run(main)
