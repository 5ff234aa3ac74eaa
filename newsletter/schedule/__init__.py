"""``newsletter run``: APScheduler's jobs (``runner``) and the lease that lets one scheduler
run each role for a database (``lease``)."""
