"""The dashboards: Superset dashboards as code over the published extracts (see ``server`` and ``bundle``)."""
