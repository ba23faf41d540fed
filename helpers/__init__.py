"""helpers: the package the workbook's notebooks import.

Modules by concern, one idea each. Shared machinery: ``config`` (paths and run profiles), ``data``
(MRPC), ``models`` (which BERT, and loading it), ``settings`` (typed run settings), ``runinfo``
(environment, git commit, precision, folder locks), ``results`` (run results, their JSON, tables
and sweeps), ``stats`` (intervals and paired tests), ``curves`` (live training curves),
``bottleneck`` (building bottleneck adapters), ``llm`` (LLM backends), ``notebooks`` (executing
and checking the notebooks), ``callbacks`` (Trainer callbacks: the per-epoch log line),
``checkpoints`` (checkpoints that are whole or absent; resuming from them), ``llama_build`` (a
portable llama-cpp-python build and its check), ``doctor`` (what a TA asks for when something
breaks). One module per question: ``ptuning`` (Q1: P-Tuning v1/v2 and every training run,
sweeps), ``adapter_dims`` (Q2: the adapter's hidden size, explained), ``stories`` (Q3: prompts,
the story checker, diversity). ``bench`` benchmarks them. No question's module imports another's.
``python -m helpers --help`` lists the commands.
"""
__version__ = "0.1.0"
