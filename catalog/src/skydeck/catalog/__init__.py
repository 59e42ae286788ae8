"""Skydeck catalogs: HATS building, the catalog registry and schemas, and the TAP service."""
