"""OMO: an omnichannel membership and loyalty system that a retailer runs on its own database."""

__version__ = "0.1.0"
