"""The background tier: RQ jobs, queues, locks, the worker process and the dataset engine (no Flask)."""
