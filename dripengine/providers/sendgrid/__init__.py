"""Everything dripengine knows about SendGrid, in one package: :mod:`.provider` (mail/send through
the official library's payload helpers and :mod:`dripengine.providers.http_pool`, llhttp parsing every answer), :mod:`.events`
(Event Webhook items to :class:`~dripengine.engagement.IncomingEvent`), :mod:`.webhook` (the
signed Event Webhook: headers, timestamp, ECDSA signature), :mod:`.inbound` (Inbound Parse:
replies and auto-replies) and :mod:`.unknown` (settling messages a crash left ``unknown``)."""
