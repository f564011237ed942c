# Model._meta and _default_manager are Django's documented model API, not private members.
# ruff: noqa: SLF001
"""ensureadmin: make sure one superuser exists, on every replica, without ever leaking its password.

Idempotent (an existing user is left alone unless ENTRYPOINT_ADMIN_UPDATE=true), safe when many
replicas run at once (the unique-constraint race is caught and the winner's row re-read), and
correct for custom user models (USERNAME_FIELD, REQUIRED_FIELDS, the manager's create_superuser).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from django.db import DatabaseError, IntegrityError, connections, router, transaction

from entrypoint import log
from entrypoint.admin.config import AdminSeed
from entrypoint.admin.seed import (
    FLAGS,
    check_seed,
    email_field,
    user_model,
    username_field,
    validate_password,
)
from entrypoint.errors import ConfigError, DatabaseUnavailable, StepFailed
from entrypoint.patience import Refusal, connect_patiently

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

Outcome = Literal["created", "exists", "updated"]


def run(seed: AdminSeed | None, aliases: Sequence[str], *, connect_within: float = 0.0) -> None:
    if seed is None:
        log.get().info("admin_skipped", reason="no_username", hint="set DJANGO_ADMIN_USERNAME")
        return
    ensure_admin(seed, database=auth_database(aliases), connect_within=connect_within)


def check(seed: AdminSeed, aliases: Sequence[str]) -> None:
    """What the step can check before the wait starts: its database and the seed (78 if bad)."""
    auth_database(aliases)
    check_seed(seed)


def auth_database(aliases: Sequence[str]) -> str:
    """The alias the routers send user writes to; it must be one the steps act on."""
    model = user_model()
    alias = router.db_for_write(model)
    if alias not in aliases:
        raise ConfigError(
            f"the user model {model._meta.label} is written to database {alias!r} (see "
            f"DATABASE_ROUTERS), which is not in ENTRYPOINT_DATABASES ({', '.join(aliases)}): "
            "add it there, or unset DJANGO_ADMIN_USERNAME"
        )
    return alias


def ensure_admin(seed: AdminSeed, *, database: str, connect_within: float = 0.0) -> Outcome:
    """Create the superuser if it is missing; bring it in line when ``seed.update`` is set.

    ``connect_within``: seconds a server refusing the connection for now (no slot free,
    starting up) is asked again (ENTRYPOINT_WAIT_TIMEOUT); then 69.
    """
    for variable in seed.marks_removed:
        log.get().warning(
            "secret_file_mark_removed",
            variable=variable,
            hint="the file began with a byte-order mark (U+FEFF, as Notepad saves UTF-8), "
            "which is no part of the value: save it as UTF-8 without one",
        )
    model = user_model()
    fields = check_seed(seed)  # before any query: a bad seed changes nothing
    username = fields[username_field(model)]  # as stored: the manager normalises it
    bound = log.get().bind(username=username, database=database, model=model._meta.label)
    if username != seed.username:
        bound.info("admin_username_normalised", configured=seed.username)
    connect_patiently(
        connections[database], within=connect_within, give_up=partial(_unavailable, database)
    )
    try:
        _check_table(model, database)
        manager = model._default_manager.db_manager(database)
        user = _find(model, username, database)
        raced = False
        if user is None:
            # Validators run only when a password is set: here, and on a rotation.
            validate_password(seed.password, model(**fields))
            try:
                with transaction.atomic(using=database):
                    manager.create_superuser(password=seed.password, **fields)  # type: ignore[attr-defined]
            except IntegrityError as exc:
                # Another replica inserted the same user between our read and our write.
                user = _find(model, username, database)
                if user is None:
                    raise StepFailed(f"creating the admin failed: {_summary(exc)}") from exc
                raced = True
            else:
                bound.info("admin_created")
                return "created"
        if not seed.update:
            bound.info("admin_exists", update=False, created_concurrently=raced)
            _warn_unless_superuser(model, user, bound)
            return "exists"
        changed = _bring_in_line(model, user, seed, fields, database)
    except DatabaseError as exc:
        raise StepFailed(
            f"database {database!r} failed while ensuring the admin: {_summary(exc)}"
        ) from exc
    if changed:
        bound.info("admin_updated", changed=changed)
        return "updated"
    bound.info("admin_exists", update=True, changed=[])
    return "exists"


def _warn_unless_superuser(
    model: type[AbstractBaseUser], user: AbstractBaseUser, bound: log.Logger
) -> None:
    """An existing user of the admin's name who cannot log in as a superuser is no success."""
    flags_false = _flags_false(model, user)
    if flags_false:
        bound.warning(
            "admin_not_active_superuser",
            flags_false=flags_false,
            hint="set ENTRYPOINT_ADMIN_UPDATE=true to make this user an active superuser again, "
            "or change DJANGO_ADMIN_USERNAME if the user is someone else",
        )


def _flags_false(model: type[AbstractBaseUser], user: AbstractBaseUser) -> list[str]:
    """Which of is_active, is_staff and is_superuser (those the model has) are not true."""
    concrete = {f.name for f in model._meta.concrete_fields}
    return [f for f in FLAGS if f in concrete and getattr(user, f) is not True]


def _unavailable(database: str, found: Refusal) -> DatabaseUnavailable:
    return DatabaseUnavailable(
        f"database {database!r} refused the admin step's connection ({found['reason']}: "
        f"{found['detail']}) for longer than ENTRYPOINT_WAIT_TIMEOUT: see "
        "docs/steps.md#connection-slots"
    )


def _summary(exc: Exception) -> str:
    # First line only: PostgreSQL's DETAIL can quote the failing row, password hash included.
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300] if lines else ''}"


def _check_table(model: type[AbstractBaseUser], database: str) -> None:
    connection = connections[database]
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
    if model._meta.db_table not in tables:
        raise StepFailed(
            f"table {model._meta.db_table!r} of the user model {model._meta.label} does not exist "
            f"in database {database!r}: run the migrations first (ENTRYPOINT_STEPS=migrate,admin)"
        )


def _find(model: type[AbstractBaseUser], username: str, database: str) -> AbstractBaseUser | None:
    # get_by_natural_key keeps a custom manager's lookup rules (e.g. case-insensitive emails).
    try:
        return model._default_manager.db_manager(database).get_by_natural_key(username)  # type: ignore[attr-defined,no-any-return]
    except model.DoesNotExist:
        return None


def _bring_in_line(
    model: type[AbstractBaseUser],
    user: AbstractBaseUser,
    seed: AdminSeed,
    fields: dict[str, Any],
    database: str,
) -> list[str]:
    """Restore the flags, the email and the password; return the names of what changed.

    ``fields`` are the seed's, already checked (check_seed): the email is written as cleaned.
    """
    email = email_field(model)
    with transaction.atomic(using=database):
        # Locked, so that replicas rotating at once see each other's work instead of racing.
        user = model._default_manager.db_manager(database).select_for_update().get(pk=user.pk)
        changed = _flags_false(model, user)
        for flag in changed:
            setattr(user, flag, True)
        if email and seed.email and getattr(user, email) != fields[email]:
            setattr(user, email, fields[email])
            changed.append(email)
        # Only a failing check sets the password: a new hash would end every session.
        if not user.check_password(seed.password):
            validate_password(seed.password, user)
            user.set_password(seed.password)
            changed.append("password")
        if changed:
            user.save(using=database, update_fields=changed)
    return changed
