"""Pure crowd-labelling logic (no database, no HTTP).

``spec``: field specs and value validation; ``confidence``: worker accuracy, Bayes
confidence and the dynamic-overlap decision; ``aggregation``: majority vote, Dawid-Skene and
skill-weighted aggregation of answers. The stateful parts live in ``taskloom.services.crowd``.
"""
