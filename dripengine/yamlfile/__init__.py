"""A YAML file parsed with the line of every key, and pydantic errors explained against a model.

YAML is parsed into nodes first so each mapping key and sequence item keeps its line; pydantic's
error locations are then mapped back onto those lines (a missing field falls back to its parent).
The YAML dialect is YAML 1.1 without its traps: ``on``/``no``/``yes`` stay text (``exit.on``, the
country ``NO``) and ``17:00`` stays a time instead of becoming the number 1020.

Every problem comes out as one line, ``file:line: field: message``.

The pieces, one idea each: :mod:`~.parse` (text to a :class:`~.parse.YAMLDocument`, YAML errors in
our words), :mod:`~.dialect` (the loader: YAML 1.2 booleans and numbers), :mod:`~.aliases` (the
alias expansion budget), :mod:`~.locations` (the line of every key; duplicate keys),
:mod:`~.validation` (a document as a pydantic model) and :mod:`~.explain` (pydantic's errors as
sentences). Import from the module that owns a name; this package re-exports nothing.
"""
