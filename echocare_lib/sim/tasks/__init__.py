"""Scene generators for the downstream applications (registry filled in below)."""
