from django.db import models
from django.db.models.functions import Now


class OutboxEntry(models.Model):
    """A job recorded in the caller's transaction, waiting to reach Redis.

    ``enqueue_on_commit`` writes one; it is deleted once Redis has the job.
    Rows left behind (Redis was down at commit) are re-delivered by the worker. A row that
    cannot become a job (its queue left the settings, or its payload no longer fits SAQ's Job)
    is set aside: ``last_error`` says why, and the drain leaves it until ``retry_at``.
    """

    job_key = models.CharField(max_length=255)
    queue = models.CharField(max_length=100)
    payload = models.JSONField(help_text="The SAQ job, as Job.to_dict().")
    # The database's clock, as every comparison with it (the drain's grace, ``retry_at``): the web
    # process that writes a row and the worker that drains it may disagree about the time.
    created = models.DateTimeField(db_default=Now(), db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    retry_at = models.DateTimeField(
        null=True, blank=True, help_text="Set aside until then: it could not be turned into a job (see last error)."
    )

    class Meta:
        verbose_name = "outbox entry"
        verbose_name_plural = "outbox entries"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.payload.get('function')} [{self.job_key}]"


class TaskQueue(models.Model):
    """No table: it carries the queue dashboard's permissions and its place in the admin.

    ``view_dashboard`` shows queues, workers and jobs; ``manage_jobs`` allows the
    retry, abort and enqueue actions.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_dashboard", "Can view the task queue dashboard"),
            ("manage_jobs", "Can retry, abort and enqueue jobs, act on many, and pause queues from the dashboard"),
        ]
        verbose_name = "task queue"
        verbose_name_plural = "task queues"

    def __str__(self) -> str:
        return "Task queues"
