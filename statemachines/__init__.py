"""Pipeline definitions, the input/output contract, deploy to AWS, and the local engine."""
