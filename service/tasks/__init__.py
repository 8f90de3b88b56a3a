"""Background storage jobs: the queue, the runner, and one module of job bodies per resource."""
from service.tasks.queue import configure, consumer, queued, submit

__all__ = ["configure", "consumer", "queued", "submit"]
