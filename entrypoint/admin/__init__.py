"""The admin step: the superuser seed (config) and making sure it exists (ensure)."""
