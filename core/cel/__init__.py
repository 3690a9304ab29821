"""The CEL variables (``member``, ``now``, ``order``/``cart``, ``event``): one schema, one builder.

* :mod:`core.cel.types` — every variable's fields and CEL types, and which variables each kind
  of expression may use;
* :mod:`core.cel.history` — a batch of members' facts, fetched set-based into frozen dataclasses;
* :mod:`core.cel.sources` — the registry through which packages supply fields from their own
  tables (loyalty: ``tier``, ``tier_rank``, ``referrals``);
* :mod:`core.cel.variables` — pure functions building the variables as of a time (the table of
  what every field means is there, and in ``docs/cel.md``);
* :mod:`core.cel.parse` and :mod:`core.cel.typecheck` — the field and type check ``check`` runs;
* :mod:`core.cel.samples` — the sample members every expression is evaluated against at ``check``.
"""
