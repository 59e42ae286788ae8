"""Skydeck images: the data release build, the Butler repository, ingest and cutouts."""
