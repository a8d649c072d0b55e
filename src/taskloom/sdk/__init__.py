"""The native Python client. ``from taskloom import Client``."""
