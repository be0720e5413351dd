"""rnnsuite's benchmark: matrices of cells, measurement, results, reports, gate."""
