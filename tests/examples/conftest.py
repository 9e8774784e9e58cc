"""The demo is run as a user runs it, from the installed package."""
