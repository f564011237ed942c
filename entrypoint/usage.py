"""The text of ``django-entrypoint --help`` after the options: every variable, every exit code."""

HELP_EPILOG = """\
environment variables:
  DJANGO_SETTINGS_MODULE           settings module (required unless --settings is given)
  ENTRYPOINT_STEPS                 wait,migrate,admin,manage,hooks
                                                       comma list; 'none' or empty: no steps
  ENTRYPOINT_DATABASES             default              comma list of aliases, or 'all'
  ENTRYPOINT_WAIT_TIMEOUT          180                  seconds before giving up (> 0)
  ENTRYPOINT_WAIT_STABLE           5                    seconds each must keep answering once
                                                       seen down (up at once: a 2nd check)
  ENTRYPOINT_WAIT_INTERVAL         1                    seconds between checks (> 0)
                                   (seconds: ASCII digits, optional decimals, at most 31536000)
  ENTRYPOINT_WAIT_FOR              connection           or 'migrations': also wait for no pending
  ENTRYPOINT_WAIT_SERVICES         (empty)              URLs to wait for, comma or newline list:
                                                       tcp:// http(s):// redis(s):// amqp(s):// file://
  ENTRYPOINT_LOG_FORMAT            auto                 auto (JSON unless a TTY), json, console
  ENTRYPOINT_LOG_LEVEL             info                 debug, info, warning, error
  ENTRYPOINT_MIGRATE_TARGETS       (empty)              'app [migration]' per line or comma
  ENTRYPOINT_MIGRATE_LOCK_ID       (fixed hash)         advisory lock key (signed 64-bit)
  ENTRYPOINT_MIGRATE_LOCK_TIMEOUT  600                  seconds to wait for the lock (0: no wait)
  ENTRYPOINT_MIGRATE_LOCK_MODE     auto                 auto, session, none
  ENTRYPOINT_MIGRATE_DATABASE_URL  (empty)              direct DSN for lock and migrations
  ENTRYPOINT_MIGRATE_TABLE_LOCK_TIMEOUT  2              seconds a migration's statement waits
                                                       for a table lock, then retried (0: no limit)
  ENTRYPOINT_MIGRATE_RETRY_TIMEOUT 600                  seconds of such retries, then exit 75
  ENTRYPOINT_MIGRATE_PHASE         post                 pre: only what django-safemigrate
                                                       allows before the deploy; post: all
  ENTRYPOINT_MIGRATE_MAX_BLOCKING_ROWS  (unset)        refuse (78) a plan whose operation blocks
                                                       a table of more rows while it rewrites or
                                                       scans it (PostgreSQL)
  ENTRYPOINT_SCHEMA_CHECK          warn                 once migrated: warn, refuse (78) or off
                                                       when the live schema does not serve the
                                                       models (missing, unfillable, retyped)
  DJANGO_ADMIN_USERNAME / _PASSWORD / _EMAIL           the superuser to ensure (each also as
                                                       NAME_FILE: path of a mounted secret, a
                                                       regular file of at most 64 KiB); read
                                                       only when the admin step runs
  DJANGO_ADMIN_<FIELD>                                 another field of the user model
  DJANGO_SUPERUSER_USERNAME / _PASSWORD / _EMAIL       Django's own names, used as fallbacks
  ENTRYPOINT_ADMIN_UPDATE          false                true: bring an existing admin in line
  ENTRYPOINT_MANAGE                (empty)              management commands, one per line
  ENTRYPOINT_MANAGE_LOCKED         false                true: run them under the migration lock
  ENTRYPOINT_HOOKS_DIR             /etc/django-entrypoint/hooks.d
                                                       executables run in version order
  ENTRYPOINT_HOOK_TIMEOUT          300                  seconds each hook may run (> 0)
  ENTRYPOINT_HOOK                  (set for each hook)  in a hook's environment: its path (a
                                                       script's $0 is /proc/self/fd/N)
  ENTRYPOINT_HEARTBEAT_INTERVAL    30                   seconds between *_running events (0: off)
  ENTRYPOINT_DB_NETWORK_TIMEOUT    10                   seconds a silent database peer may take

exit codes:
  0 success, 2 usage, 69 database or service unavailable (wait timed out; a
  read-only server, a standby?, where migrations are pending),
  70 a step failed (migration, management command, hook),
  75 migration lock (or, after the retries, a table lock; or a connection slot, on a
  full server) not acquired in time,
  78 configuration error or a plan that cannot be carried out (irreversible
  rollback, blocked pre phase), or a live schema the code cannot serve,
  126 COMMAND not executable, 127 COMMAND not found, 128+N stopped by signal N (143
  SIGTERM): nothing commits or runs after it; stuck code ends 10 s later

COMMAND is exec'd with default signal dispositions; neither it nor the hooks get
DJANGO_ADMIN_PASSWORD, DJANGO_SUPERUSER_PASSWORD and ENTRYPOINT_MIGRATE_DATABASE_URL.
"""
