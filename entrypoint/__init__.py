"""Start a Django app in a container: wait for the database, migrate under a lock,
ensure an admin, then exec the app server."""

__version__ = "0.2.0"
