"""The generic training machinery every method uses: the loop (:mod:`.loop`, :class:`~lmnet.train.loop.Trainer`),
what a method is (:mod:`.method`), datasets and loaders (:mod:`.data`), precision, resume, runtime
(devices, seeding, DDP), the optimiser step and weight-decay parameter groups.

It knows no method by name: the methods live in ``lmnet/methods/<name>/`` and
:func:`lmnet.registry.train` dispatches to them.
"""
