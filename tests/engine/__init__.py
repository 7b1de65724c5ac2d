"""Tests of the local Step Functions engine."""
