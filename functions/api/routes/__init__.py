"""Routers of the firm API, one per resource."""
