"""The identity process: resolves every raw event to a canonical customer id (see
``touchstream.processors.identity_resolution``); ``python -m touchstream.identity``."""
