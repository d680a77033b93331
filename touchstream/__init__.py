"""Touchstream: an event-sourced backbone for customer interactions."""

__version__ = "0.1.0"

__all__ = ["Client", "__version__"]


def __getattr__(name: str):
    """``touchstream.Client`` without importing httpx for every ``touchstream.*`` import."""
    if name == "Client":
        from touchstream.client import Client

        return Client
    raise AttributeError(f"module 'touchstream' has no attribute {name!r}")
