"""Packaging checks: how users' builds find the runtime, and what it exports."""
