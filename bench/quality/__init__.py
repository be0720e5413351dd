"""Quality (``bench quality``): train each cell of a quality matrix for its fixed budget
(study.py: matrix, plan, the cell's training through rnnsuite's recipes); the page is
bench/report/quality.py."""
