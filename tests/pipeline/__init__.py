"""Tests of the correction pipeline: jobs, locks, sweep, worker, commands and demo."""
