"""The admin step: one superuser exists, from env vars and mounted secrets, idempotently.

Promises: the seed (``config``) is checked against the user model and the password validators
before any database work (``seed``, 78 when bad); ``ensure`` creates it once, safely under
races, and never logs its password. Needs: Django set up and the auth tables migrated.
"""
