"""Enqueueing: building and validating a job, putting it on Redis, and the transactional outbox."""
