"""Vendor configuration files: per-phone cfg.xml rendered for a push, served to that phone
only, and configuration backups read back with Upload (docs/files.md)."""

from acs_security.files.render import FILE_NAME, DeviceFile, known_elements, render_device_file

__all__ = ["DeviceFile", "FILE_NAME", "known_elements", "render_device_file"]
