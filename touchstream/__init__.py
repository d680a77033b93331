"""Touchstream: an event-sourced backbone for customer interactions."""

__version__ = "0.1.0"
