"""Small shared helpers: atomic file writing, devices, seeding."""
