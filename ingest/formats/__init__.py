"""Payload parsers: our JSON, SenML, The Things Stack v3 and ChirpStack v4 uplinks."""
