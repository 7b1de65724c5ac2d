"""The local Step Functions engine: a pure ASL interpreter and the durable service around it."""
