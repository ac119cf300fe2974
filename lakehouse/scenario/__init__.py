"""Seeded generators of the photo-sharing scenario the lecture motivates the platform with."""
