"""Fixtures of the beyond-one-machine tests (issue 17): the app on the S3 store (moto server mode)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from appeals import runtime


@pytest.fixture
def s3_settings(settings, moto_s3):
    """The test settings with the release store in a fresh bucket of the moto server."""
    return runtime.bootstrap(replace(settings, store_url=moto_s3.new_bucket(), s3_endpoint_url=moto_s3.endpoint))


@pytest.fixture
def s3_corpus(s3_settings, synth_source):
    """The first synthetic dataset published (release 1) in the bucket."""
    dataset = synth_source[0]
    runtime.engine().import_dataset(dataset.dir, dataset.name)
    return dataset
