"""resolution package."""
