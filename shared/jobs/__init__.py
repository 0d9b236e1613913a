"""The queue contract between ingress and workers, and every piece of job state kept in Redis."""
