"""The wait step: each database and service answers steadily before anything else runs.

Promises: every check is a bounded probe (``probe``) on a new connection, so one absolute
deadline holds whatever the server does; a service counts as ready only as its clients would
find it (an AMQP broker once the URL's login completes, ``amqp``); the loop (``database``,
``service_wait``) exits 69 naming the last reason. Needs: Django set up, and its settings
(``config.WaitSettings``); what "migrated" means is handed in by the caller.
"""
