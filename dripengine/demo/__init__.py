"""`drip demo`: the story (:mod:`.run`), its days and clock (:mod:`.timeline`), the sent emails as
a mail client reads them (:mod:`.mail`), `drip serve` in a thread (:mod:`.serving`) and the folder
it runs in (:mod:`.folder`)."""
