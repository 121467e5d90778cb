"""Utilities with no model knowledge: where the shipped files are, reading user files,
name suggestions and argument checks. Every other layer may import this one."""
