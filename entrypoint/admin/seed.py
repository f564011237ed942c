# Model._meta is Django's documented model API, not a private member.
# ruff: noqa: SLF001
"""The admin seed checked against the user model and AUTH_PASSWORD_VALIDATORS, with no database.

Run before the wait step: a bad seed (an invalid username or email, a missing REQUIRED_FIELDS
value, a misspelled DJANGO_ADMIN_<NAME>, a weak password) exits 78 with nothing migrated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.db.models import EmailField

from entrypoint.admin.config import PREFIX, AdminSeed
from entrypoint.errors import ConfigError, StepFailed

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.db.models import Field

FLAGS = ("is_active", "is_staff", "is_superuser")
# Set by the entrypoint itself (create_superuser refuses is_superuser=False, say).
RESERVED = frozenset({"password", "last_login", *FLAGS})


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


def username_field(model: type[AbstractBaseUser]) -> str:
    # str(): django-stubs does not declare USERNAME_FIELD on AbstractBaseUser.
    return str(model.USERNAME_FIELD)


def email_field(model: type[AbstractBaseUser]) -> str | None:
    """The email field a seed email may be written to: None when there is none of its own."""
    name = model.get_email_field_name()
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    return None if name == username_field(model) else name


def check_seed(seed: AdminSeed) -> dict[str, Any]:
    """The fields to create the admin with, each normalised as the user model stores it and
    cleaned by the model's own field.

    The password is not checked here: the validators run only when it is set (``ensure``), so
    that tightening them cannot stop the pods of an admin that exists already.
    """
    return _creation_fields(user_model(), seed)


def stored_form(model: type[AbstractBaseUser], name: str, raw: str) -> str:
    """What the user model's manager makes of ``raw`` for field ``name`` when it creates a user:
    ``normalize_username`` (NFKC) for the login, ``normalize_email`` (lower-cased domain) for an
    email. Looking the admin up by the raw value would miss the row it created."""
    value = raw
    if name == username_field(model):
        value = model.normalize_username(value)
    field = model._meta.get_field(name)
    if isinstance(field, EmailField) or name == model.get_email_field_name():
        from django.contrib.auth.base_user import BaseUserManager  # noqa: PLC0415 - needs Django set up

        manager = model._default_manager
        value = getattr(manager, "normalize_email", BaseUserManager.normalize_email)(value)
    return str(value)


def validate_password(password: str, user: AbstractBaseUser) -> None:
    from django.contrib.auth.password_validation import (  # noqa: PLC0415
        validate_password as django_validate,
    )

    try:
        django_validate(password, user)
    except ValidationError as exc:
        # `from None`: nothing of the validator's frame (which holds the password) is chained.
        raise ConfigError(
            "the admin password is rejected by AUTH_PASSWORD_VALIDATORS: "
            f"{' '.join(exc.messages)} Choose another for DJANGO_ADMIN_PASSWORD(_FILE)"
        ) from None


def _creation_fields(model: type[AbstractBaseUser], seed: AdminSeed) -> dict[str, Any]:
    """USERNAME_FIELD, REQUIRED_FIELDS, the email and any other DJANGO_ADMIN_<FIELD>."""
    problems: list[str] = []
    fields = {username_field(model): _clean(model, username_field(model), seed.username, problems)}
    email = email_field(model)
    for name in model.REQUIRED_FIELDS:
        raw = seed.email if name == email else seed.extra.get(name.lower(), "")
        if raw or getattr(model._meta.get_field(name), "blank", False):
            fields.update(_cleaned(model, name, raw, problems))
        else:
            problems.append(
                f"{PREFIX}{name.upper()} is not set: the user model {model._meta.label} "
                f"requires {name!r} (REQUIRED_FIELDS); set it, or {PREFIX}{name.upper()}_FILE"
            )
    if email and seed.email and email not in fields:
        fields[email] = _clean(model, email, seed.email, problems)
    required = {n.lower() for n in model.REQUIRED_FIELDS}
    for key, raw in sorted(seed.extra.items()):
        if key not in required and _settable(model, key, problems):
            fields.update(_cleaned(model, key, raw, problems))
    if problems:
        raise ConfigError(*problems)
    return fields


def _settable(model: type[AbstractBaseUser], name: str, problems: list[str]) -> bool:
    variable = PREFIX + name.upper()
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        field = None
    if field is None or not field.concrete or field.many_to_many or field.primary_key:
        settable = sorted(
            f.name
            for f in model._meta.concrete_fields
            if not f.primary_key and f.name not in RESERVED
        )
        problems.append(
            f"{variable} is neither USERNAME, PASSWORD, EMAIL nor a field of the user model "
            f"{model._meta.label} ({', '.join(settable)}): check its spelling"
        )
        return False
    if name == username_field(model):
        problems.append(f"{variable} cannot be set: {name!r} comes from {PREFIX}USERNAME")
        return False
    if name in RESERVED:
        problems.append(f"{variable} cannot be set: the entrypoint sets {name!r} itself")
        return False
    return True


def _cleaned(
    model: type[AbstractBaseUser], name: str, raw: str, problems: list[str]
) -> dict[str, Any]:
    """``{name: value}``; for a foreign key ``{name_id: pk}``, checked without a query."""
    field: Field[Any, Any] = model._meta.get_field(name)  # type: ignore[assignment]
    if field.many_to_one or field.one_to_one:
        # The target's existence is the database's to check, on insert: no query before the wait.
        target = field.target_field  # type: ignore[attr-defined]
        return {field.attname: _run_clean(target, _variable(model, name), raw, problems)}
    return {name: _clean(model, name, raw, problems)}


def _clean(model: type[AbstractBaseUser], name: str, raw: str, problems: list[str]) -> Any:
    """The value as stored, checked by the field: the length limit applies to what is saved."""
    field: Field[Any, Any] = model._meta.get_field(name)  # type: ignore[assignment]
    return _run_clean(field, _variable(model, name), stored_form(model, name, raw), problems)


def _run_clean(field: Field[Any, Any], variable: str, raw: str, problems: list[str]) -> Any:
    try:
        return field.clean(raw, None)
    except ValidationError as exc:
        problems.append(f"{variable}={raw[:60]!r} is invalid: {' '.join(exc.messages)}")
        return raw


def _variable(model: type[AbstractBaseUser], name: str) -> str:
    return PREFIX + ("USERNAME" if name == username_field(model) else name.upper())
