"""Nightly ingestion: hostile-input parsing, safe fetching, image normalisation, and the pipeline on top."""
