"""The email itself, as every provider takes it: :mod:`.message` (``OutgoingEmail`` and its RFC
5322 form) and :mod:`.headers` (every header value made and folded by us, encoded words decoded and
checked by us: lead data never becomes header syntax)."""
