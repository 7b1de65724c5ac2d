"""Tests of `stepline run`: local runs of a working copy through real processes."""
