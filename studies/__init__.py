"""lmnet studies: training experiments of tens of minutes that measure what the methods learn.

Unlike ``benchmarks/`` (speed and memory, measured side by side in seconds), each study trains
networks and writes its findings to ``studies/results/``. Run one with ``python -m studies.<name>``;
``studies/README.md`` says what each measures, its exact command and how long it took.
"""
