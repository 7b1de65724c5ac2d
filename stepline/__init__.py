"""`stepline run`: a repository's pipeline on its working copy, on the embedded engine, on this machine."""
