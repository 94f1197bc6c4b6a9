"""Grafana dashboards generated from the indicator catalog (run as ``ioc dashboards``)."""
