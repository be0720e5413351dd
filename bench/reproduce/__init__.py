"""Reproduce (``bench reproduce``): run the documents' recipes per seed (study.py: matrix,
plan, run, the records and references); the page is bench/report/reproduction.py."""
