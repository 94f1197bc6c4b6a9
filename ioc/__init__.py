"""IOC backend: MQTT ingest, InfluxDB storage and official indicators for operations centres."""

__version__ = "0.1.0"
