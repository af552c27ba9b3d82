"""Sending: the outgoing message, the providers behind one interface (the dispatcher comes next)."""
