"""dripengine: email drip remarketing for leads that sales gave back."""

__version__ = "0.1.0"
