"""The wait step: bounded probes (probe) of each database until it answers steadily (database)."""
