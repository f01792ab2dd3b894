"""What runs jobs: the Celery app, thin tasks, the upload and poll steps over one step
runner, the sweeper, and the filesystem-broker fix.

The only room that imports celery, kombu or billiard. May import every room below the
command: `intake`, `scheduling`, `messaging`, `models`, `config`, `api_client`.
"""

from __future__ import annotations
