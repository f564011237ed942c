# Model._meta and _default_manager are Django's documented model API, not private members.
# ruff: noqa: SLF001
"""ensureadmin: make sure one superuser exists, on every replica, without ever leaking its password.

Idempotent (an existing user is left alone unless ENTRYPOINT_ADMIN_UPDATE=true), safe when many
replicas run at once (the unique-constraint race is caught and the winner's row re-read), and
correct for custom user models (USERNAME_FIELD, REQUIRED_FIELDS, the manager's create_superuser).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.db import DatabaseError, IntegrityError, connections, router, transaction

from entrypoint import log
from entrypoint.admin.config import PREFIX, AdminSeed
from entrypoint.config import Settings
from entrypoint.errors import ConfigError, StepFailed

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser

Outcome = Literal["created", "exists", "updated"]
FLAGS = ("is_active", "is_staff", "is_superuser")


def run(settings: Settings, aliases: Sequence[str]) -> None:
    if settings.admin is None:
        log.get().info("admin_skipped", reason="no_username", hint="set DJANGO_ADMIN_USERNAME")
        return
    ensure_admin(settings.admin, database=auth_database(aliases))


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


def user_model() -> type[AbstractBaseUser]:
    from django.apps import apps  # noqa: PLC0415 - Django must be set up first

    if not apps.is_installed("django.contrib.auth"):
        raise StepFailed(
            "django.contrib.auth is not in INSTALLED_APPS, so there is no user model: "
            "add it, or remove admin from ENTRYPOINT_STEPS"
        )
    # Importing auth models before the check above would fail with an obscure RuntimeError.
    from django.contrib.auth import get_user_model  # noqa: PLC0415

    try:
        return get_user_model()
    except ImproperlyConfigured as exc:
        raise StepFailed(f"the user model cannot be loaded: {exc}") from exc


def ensure_admin(seed: AdminSeed, *, database: str) -> Outcome:
    """Create the superuser if it is missing; bring it in line when ``seed.update`` is set."""
    model = user_model()
    bound = log.get().bind(username=seed.username, database=database, model=model._meta.label)
    try:
        _check_table(model, database)
        manager = model._default_manager.db_manager(database)
        user = _find(model, seed.username, database)
        raced = False
        if user is None:
            fields = _creation_fields(model, seed)
            _validate_password(seed.password, model(**fields))
            try:
                with transaction.atomic(using=database):
                    manager.create_superuser(password=seed.password, **fields)  # type: ignore[attr-defined]
            except IntegrityError as exc:
                # Another replica inserted the same user between our read and our write.
                user = _find(model, seed.username, database)
                if user is None:
                    raise StepFailed(f"creating the admin failed: {_summary(exc)}") from exc
                raced = True
            else:
                bound.info("admin_created")
                return "created"
        if not seed.update:
            bound.info("admin_exists", update=False, created_concurrently=raced)
            return "exists"
        changed = _bring_in_line(model, user, seed, database)
    except DatabaseError as exc:
        raise StepFailed(
            f"database {database!r} failed while ensuring the admin: {_summary(exc)}"
        ) from exc
    if changed:
        bound.info("admin_updated", changed=changed)
        return "updated"
    bound.info("admin_exists", update=True, changed=[])
    return "exists"


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


def _username_field(model: type[AbstractBaseUser]) -> str:
    # str(): django-stubs does not declare USERNAME_FIELD on AbstractBaseUser.
    return str(model.USERNAME_FIELD)


def _email_field(model: type[AbstractBaseUser]) -> str | None:
    """The email field a seed email may be written to: None when there is none of its own."""
    name = model.get_email_field_name()
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    return None if name == _username_field(model) else name


def _creation_fields(model: type[AbstractBaseUser], seed: AdminSeed) -> dict[str, Any]:
    """USERNAME_FIELD, REQUIRED_FIELDS and the email, cleaned by the model's own fields."""
    problems: list[str] = []
    fields = {
        _username_field(model): _clean(model, _username_field(model), seed.username, problems),
    }
    email_field = _email_field(model)
    for name in model.REQUIRED_FIELDS:
        raw = seed.email if name == email_field else seed.extra.get(name.lower(), "")
        if raw or getattr(model._meta.get_field(name), "blank", False):
            fields[name] = _clean(model, name, raw, problems)
        else:
            problems.append(
                f"{PREFIX}{name.upper()} is not set: the user model {model._meta.label} "
                f"requires {name!r} (REQUIRED_FIELDS); set it, or {PREFIX}{name.upper()}_FILE"
            )
    if email_field and seed.email and email_field not in fields:
        fields[email_field] = _clean(model, email_field, seed.email, problems)
    if problems:
        raise ConfigError(*problems)
    return fields


def _clean(model: type[AbstractBaseUser], name: str, raw: str, problems: list[str]) -> Any:
    field = model._meta.get_field(name)
    variable = PREFIX + ("USERNAME" if name == _username_field(model) else name.upper())
    try:
        return field.clean(raw, None)  # type: ignore[union-attr]
    except ValidationError as exc:
        problems.append(f"{variable}={raw[:60]!r} is invalid: {' '.join(exc.messages)}")
        return raw


def _validate_password(password: str, user: AbstractBaseUser) -> None:
    from django.contrib.auth.password_validation import validate_password  # noqa: PLC0415

    try:
        validate_password(password, user)
    except ValidationError as exc:
        # `from None`: nothing of the validator's frame (which holds the password) is chained.
        raise ConfigError(
            "the admin password is rejected by AUTH_PASSWORD_VALIDATORS: "
            f"{' '.join(exc.messages)} Choose another for DJANGO_ADMIN_PASSWORD(_FILE)"
        ) from None


def _bring_in_line(
    model: type[AbstractBaseUser], user: AbstractBaseUser, seed: AdminSeed, database: str
) -> list[str]:
    """Restore the flags, the email and the password; return the names of what changed."""
    concrete = {f.name for f in model._meta.concrete_fields}
    email_field = _email_field(model)
    with transaction.atomic(using=database):
        # Locked, so that replicas rotating at once see each other's work instead of racing.
        user = model._default_manager.db_manager(database).select_for_update().get(pk=user.pk)
        changed = [f for f in FLAGS if f in concrete and getattr(user, f) is not True]
        for flag in changed:
            setattr(user, flag, True)
        if email_field and seed.email and getattr(user, email_field) != seed.email:
            setattr(user, email_field, _clean(model, email_field, seed.email, []))
            changed.append(email_field)
        # Only a failing check sets the password: a new hash would end every session.
        if not user.check_password(seed.password):
            _validate_password(seed.password, user)
            user.set_password(seed.password)
            changed.append("password")
        if changed:
            user.save(using=database, update_fields=changed)
    return changed
