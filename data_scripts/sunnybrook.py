"""Sunnybrook Cardiac Data (2009 LV segmentation challenge): how to get it, then the check.

    python data_scripts/sunnybrook.py [--data-root DIR] [--verify-only] [--deep]

Instruction-only: the data are public (CC0 1.0) but have no stable direct download URL that a
script could pin with a checksum: the Cardiac Atlas Project page links its own, changing
downloads, and the original challenge site asked for a registration. So this script prints the
steps and then checks the layout with ``cmrlab.data.sunnybrook.check_dataset``.
"""
from __future__ import annotations

import _common

INSTRUCTIONS = """
Sunnybrook Cardiac Data: 45 cine short-axis studies (1.5 T GE, 20 phases, 256x256, 8 mm slices)
with expert endocardial/epicardial contours at ED and ES. Licence: CC0 1.0 (public domain).
Please cite: Radau P, Lu Y, Connelly K, Paul G, Dick AJ, Wright GA. "Evaluation Framework for
Algorithms Segmenting Short Axis Cardiac MRI." The MIDAS Journal - Cardiac MR Left Ventricle
Segmentation Challenge, 2009, http://hdl.handle.net/10380/3070

1. Open the Cardiac Atlas Project page of the data set:
       http://cardiacatlas.org/standards/sunnybrook-cardiac-data
   (the original challenge page, http://smial.sri.utoronto.ca/LV_Challenge/Data.html, is the
   older source).
2. Download the DICOM images (the SCD_IMAGES_01 ... SCD_IMAGES_05 archives) and the manual
   contours (SCD_ManualContours, with the spreadsheet that maps the SC-* contour folders to the
   SCD* image folders).
3. Unpack everything into one folder:
       {folder}/
         SCD_IMAGES_01/SCD0000101/CINESAX_300/IM-0003-0001.dcm ...
         ...
         SCD_ManualContours/SC-HF-I-01/contours-manual/IRCCI-expert/IM-0001-0048-icontour-manual.txt ...
         scd_patientdata.csv   (the spreadsheet mapping SCD00001xx to SC-*, saved as csv)
   If you have the older challenge release ("Sunnybrook Cardiac MR Database ContoursPart1-3"
   and "DICOMPart1-3"), put its folders there instead.
4. Check it:
       python data_scripts/sunnybrook.py --data-root {root}
"""


main = _common.registration_main(__doc__, "Sunnybrook", "Sunnybrook", "sunnybrook", INSTRUCTIONS)

if __name__ == "__main__":
    _common.run(main)
