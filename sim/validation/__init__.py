"""Validation against measured serving results: read a file in the measured-results format
(docs/VALIDATION.md), map each row to a simulated configuration, simulate it, and report the error per
metric and per group; optionally apply a calibration file of fitted framework/kernel constants."""
