"""MQTT collectors: parse, validate and durably store readings (run as ``ioc ingest``)."""
