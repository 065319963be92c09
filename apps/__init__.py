"""Applications built only on visionkit's public API (installed as the ``visionkit_apps`` package)."""
