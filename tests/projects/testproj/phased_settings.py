"""testproj with django-safemigrate and apps whose migrations carry Safe markers.

PHASED_BLOCKED adds a before_deploy migration behind an after_deploy one; PHASED_DELAY an
after_deploy migration with a one-day delay; SAFEMIGRATE sets django-safemigrate's mode.
"""

import os

from testproj.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "django_safemigrate", "phased"]  # noqa: F405
if os.environ.get("PHASED_BLOCKED"):
    INSTALLED_APPS.append("phasedblock")
if os.environ.get("PHASED_DELAY"):
    INSTALLED_APPS.append("phaseddelay")
if os.environ.get("SAFEMIGRATE"):
    SAFEMIGRATE = os.environ["SAFEMIGRATE"]
