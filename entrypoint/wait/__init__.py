"""The wait step: bounded probes (probe) of each database until it answers steadily (database),
and of the other services (services: their URLs, protocols: the checks, service_wait: the loop)."""
