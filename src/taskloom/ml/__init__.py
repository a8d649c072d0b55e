"""Pure algorithms (no database, no HTTP), following scikit-learn's conventions:
hyper-parameters are keyword arguments of ``__init__``, ``fit`` returns ``self``, fitted
state ends in ``_`` and is saved as JSON (never pickle)."""
