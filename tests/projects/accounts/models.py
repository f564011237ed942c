from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models


class UserManager(BaseUserManager["User"]):
    # The signature most custom managers have: no username argument, email first.
    def create_superuser(self, email: str, password: str, **extra: Any) -> User:
        user = self.model(
            email=self.normalize_email(email), is_staff=True, is_superuser=True, **extra
        )
        user.set_password(password)
        user.save(using=self._db)
        return user


class User(AbstractBaseUser, PermissionsMixin):
    """No EMAIL_FIELD attribute and no username field: the email is the login name."""

    email = models.EmailField(unique=True)
    display_name = models.CharField(max_length=50)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = ["display_name"]

    objects = UserManager()
