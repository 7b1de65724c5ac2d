"""Tests of the pipelines, the pipeline contract, deploy to AWS, and the cross-check on moto."""
