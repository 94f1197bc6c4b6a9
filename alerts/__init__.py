"""Alert engine: threshold and feed-silence rules from the catalog (run as ``ioc alerts``)."""
